//! How case states and events are kept in the database: a compact binary form of the same serde data model the
//! API writes as JSON.
//!
//! Every case is a state and about eight events, and the log only grows, so the bytes per case decide both the
//! disk a city needs and how fast history can be loaded (SQLite's cost per row grows with its size). JSON
//! spends most of its bytes on field names, quotes and digits: a typical case took 4.2 KB. This form writes
//! each value behind one tag byte, numbers as varints and every field name and enum name the domain uses as
//! one byte from [`WORDS`], which takes the same case to about a third. Text (descriptions, addresses, notes)
//! is kept as UTF-8, unchanged.
//!
//! A stored value starts with [`FORMAT_1`]. Rows written before this form are JSON and start with `{`;
//! [`decode`] reads both, so no data is migrated. Because the form is self-describing (like JSON, every value
//! says what it is), the domain's serde derives work unchanged, tagged enums and skipped fields included.
//!
//! Layout of a value, by its first byte:
//! - `0x00` null (also `None` and `()`), `0x01` false, `0x02` true;
//! - `0x03` unsigned varint, `0x04` negative integer n as the varint of `-1 - n`, `0x05` f64 (8 bytes, little
//!   endian), `0x10..=0x3F` the integers 0 to 47 in the tag itself;
//! - `0x06` text (varint length, UTF-8), `0x40..=0x7F` text of 0 to 63 bytes with the length in the tag,
//!   `0x80..=0xFF` the word `WORDS[tag - 0x80]`, `0x0A` the word `WORDS[varint]`, `0x07` bytes (varint length);
//! - `0x08` a sequence and `0x09` a map (keys and values alternating), each closed by `0x0B`.
//!
//! Enums are written as JSON writes them: a unit variant as its name, any other as a one-entry map from its
//! name to its content. Varints are LEB128.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The first byte of a value in this form (a JSON document never starts with it, and neither does UTF-8 text).
pub const FORMAT_1: u8 = 0xB1;

const NULL: u8 = 0x00;
const FALSE: u8 = 0x01;
const TRUE: u8 = 0x02;
const UINT: u8 = 0x03;
const NEGATIVE: u8 = 0x04;
const FLOAT: u8 = 0x05;
const TEXT: u8 = 0x06;
const BYTES: u8 = 0x07;
const SEQ: u8 = 0x08;
const MAP: u8 = 0x09;
const WORD: u8 = 0x0A;
const END: u8 = 0x0B;
const SMALL_UINT: u8 = 0x10;
const SMALL_UINT_COUNT: u64 = 0x30;
const SHORT_TEXT: u8 = 0x40;
const SHORT_TEXT_MAX: usize = 0x3F;
const SHORT_WORD: u8 = 0x80;
const SHORT_WORD_COUNT: usize = 0x80;

/// Field and enum names that get a code instead of their text, most frequent first. Only ever append to this
/// list: stored data names words by their position. A name not listed is simply written as text.
pub const WORDS: &[&str] = &[
    // The first 128 take one byte.
    "basis",
    "minutes",
    "user",
    "at",
    "kind",
    "role",
    "scope",
    "actor",
    "change",
    "type",
    "deadline",
    "due",
    "stage",
    "started",
    "yellow_at",
    "jurisdiction",
    "department",
    "matter",
    "priority",
    "limits",
    "register",
    "dispatch",
    "accept",
    "handle",
    "verify",
    "close",
    "code",
    "category",
    "channel",
    "description",
    "address",
    "location",
    "lon",
    "lat",
    "path",
    "owner",
    "reporter",
    "anonymous",
    "contact_sealed",
    "supervisions",
    "lead",
    "assisting",
    "tracking_code",
    "note",
    "score",
    "comment",
    "status",
    "accepted",
    "involved",
    "handlers",
    "resolved_on_spot",
    "suspension",
    "pending_extension",
    "rating",
    "merged_into",
    "counts",
    "returns",
    "reworks",
    "extensions",
    "escalations",
    "reopenings",
    "instructions",
    "overdues",
    "signalled",
    "escalation",
    "received_at",
    "updated_at",
    "ended_at",
    "version",
    "decide_by",
    "issued_at",
    "by",
    "settled",
    "into",
    "from",
    "to",
    "working",
    "natural",
    "operator",
    "department_handler",
    "grid_worker",
    "hotline_agent",
    "citizen",
    "mediator",
    "leader",
    "unbound",
    "normal",
    "high",
    "low",
    "urgent",
    "none",
    "yellow",
    "red",
    "received",
    "registered",
    "dispatched",
    "handling",
    "handled",
    "verified",
    "closed",
    "rejected",
    "merged",
    "voided",
    "reported_back",
    "verification_failed",
    "rated",
    "returned",
    "extension_requested",
    "extension_approved",
    "extension_denied",
    "supervised",
    "escalated",
    "suspended",
    "resumed",
    "reopened",
    "instructed",
    "warned",
    "overdue",
    "supervision_lapsed",
    "rescheduled",
    "extension_undecided",
    "hotline",
    "app",
    "mini_program",
    "grid_patrol",
    "sensor",
    "other",
    "system",
    // The rest take two.
    "requested_at",
    "rule",
    "id_number_sealed",
    "name",
    "attachments",
    "origin",
    "reason",
    "until",
    "working_minutes",
    "green",
    "paused",
    "off",
    "city",
    "county",
    "township",
    "community",
    "grid",
    "micro_grid",
    "reply",
];

/// The longest word, so that long text skips the word lookup.
const LONGEST_WORD: usize = 24;

/// Why a value could not be written or read in this form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        CodecError(message.to_string())
    }
}

impl de::Error for CodecError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        CodecError(message.to_string())
    }
}

type Result<T> = std::result::Result<T, CodecError>;

/// Writes `value` in this form.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Writes `value` in this form at the end of `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let mut encoder = Encoder { out: std::mem::take(out) };
    encoder.out.push(FORMAT_1);
    let written = value.serialize(&mut encoder);
    *out = encoder.out;
    written
}

/// Reads a stored value: this form, or JSON for rows written before it.
pub fn decode<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_1, rest)) => {
            let mut decoder = Decoder { input: rest };
            let value = T::deserialize(&mut decoder)?;
            if decoder.input.is_empty() {
                Ok(value)
            } else {
                Err(CodecError(format!("{} bytes left after the value", decoder.input.len())))
            }
        }
        _ => serde_json::from_slice(bytes).map_err(|e| CodecError(format!("json: {e}"))),
    }
}

/// The code of each word, looked up for every field name written.
fn word_codes() -> &'static HashMap<&'static str, usize, Fnv> {
    static CODES: OnceLock<HashMap<&'static str, usize, Fnv>> = OnceLock::new();
    CODES.get_or_init(|| WORDS.iter().enumerate().map(|(code, word)| (*word, code)).collect())
}

/// The stored values written back to back in `bytes`, each as [`decode`] takes it: how a row of the event log
/// holds the several events of one bulk-loaded history. A row written before this form is one JSON value.
pub fn split_values(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    if bytes.first() != Some(&FORMAT_1) {
        return Ok(vec![bytes]);
    }
    let mut values = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest[0] != FORMAT_1 {
            return Err(CodecError(format!("a stored value starts with {:#04x}", rest[0])));
        }
        let mut decoder = Decoder { input: &rest[1..] };
        decoder.skip()?;
        let (value, after) = rest.split_at(rest.len() - decoder.input.len());
        values.push(value);
        rest = after;
    }
    Ok(values)
}

/// Word codes of names by their address. Serde hands field and variant names over as `&'static str`, so an
/// address and a length name one text for the life of the process, and one load replaces hashing the name
/// for every value written. Each slot packs the address (47 bits), the length (5 bits) and the code (12 bits,
/// all ones for a name that is not a word) into one atomic, so racing writers can only lose an entry.
static NAME_SLOTS: [AtomicU64; NAME_SLOT_COUNT] = [const { AtomicU64::new(0) }; NAME_SLOT_COUNT];
const NAME_SLOT_COUNT: usize = 1024;
const NOT_A_WORD: u64 = 0xFFF;

/// `Some(code)` or `Some(None)` (not a word) for a name that fits a slot, `None` for one that does not.
fn remembered_word(name: &'static str) -> Option<Option<usize>> {
    let address = name.as_ptr() as u64;
    if name.len() >= 32 || address >= 1 << 47 || address == 0 {
        return None;
    }
    let key = (address << 17) | ((name.len() as u64) << 12);
    // Names lie next to each other byte by byte, so the low bits are kept: neighbours take neighbouring slots.
    let slot = &NAME_SLOTS[(address ^ (address >> 10)) as usize % NAME_SLOT_COUNT];
    let held = slot.load(Ordering::Relaxed);
    let code = if held & !NOT_A_WORD == key {
        held & NOT_A_WORD
    } else {
        let code = word_codes().get(name).map_or(NOT_A_WORD, |&code| code as u64);
        slot.store(key | code, Ordering::Relaxed);
        code
    };
    Some((code != NOT_A_WORD).then_some(code as usize))
}

/// FNV-1a: the keys are short names, for which SipHash's setup costs more than the hashing.
#[derive(Clone, Copy, Default)]
struct Fnv;

struct FnvHasher(u64);

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    fn unsigned(&mut self, value: u64) {
        if value < SMALL_UINT_COUNT {
            self.out.push(SMALL_UINT + value as u8);
        } else {
            self.out.push(UINT);
            self.varint(value);
        }
    }

    fn signed(&mut self, value: i64) {
        if value >= 0 {
            self.unsigned(value as u64);
        } else {
            self.out.push(NEGATIVE);
            self.varint((-1 - value) as u64);
        }
    }

    /// Opens an enum's content (a sequence or a map) inside the one-entry map that names its variant.
    fn variant_content(&mut self, variant: &'static str, container: u8) -> Compound<'_> {
        self.out.push(MAP);
        self.name(variant);
        self.out.push(container);
        Compound { encoder: self, ends: 2 }
    }

    fn word(&mut self, code: usize) {
        if code < SHORT_WORD_COUNT {
            self.out.push(SHORT_WORD + code as u8);
        } else {
            self.out.push(WORD);
            self.varint(code as u64);
        }
    }

    /// A field or variant name: written like any text, but its word code is remembered by the name's address.
    fn name(&mut self, name: &'static str) {
        match remembered_word(name) {
            Some(Some(code)) => self.word(code),
            Some(None) => self.plain_text(name),
            None => self.text(name),
        }
    }

    fn text(&mut self, text: &str) {
        if text.len() <= LONGEST_WORD {
            if let Some(&code) = word_codes().get(text) {
                self.word(code);
                return;
            }
        }
        self.plain_text(text);
    }

    fn plain_text(&mut self, text: &str) {
        if text.len() <= SHORT_TEXT_MAX {
            self.out.push(SHORT_TEXT + text.len() as u8);
        } else {
            self.out.push(TEXT);
            self.varint(text.len() as u64);
        }
        self.out.extend_from_slice(text.as_bytes());
    }
}

/// Narrow numbers are written as the widest of their kind.
macro_rules! widened {
    ($($method:ident: $narrow:ty => $wide:ident),*) => {$(
        fn $method(self, v: $narrow) -> Result<()> {
            self.$wide(v.into())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    widened! {
        serialize_i8: i8 => serialize_i64, serialize_i16: i16 => serialize_i64, serialize_i32: i32 => serialize_i64,
        serialize_u8: u8 => serialize_u64, serialize_u16: u16 => serialize_u64, serialize_u32: u32 => serialize_u64,
        serialize_f32: f32 => serialize_f64
    }

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.signed(v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.unsigned(v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.push(FLOAT);
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.text(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.text(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.out.push(BYTES);
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<()> {
        self.name(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.out.push(MAP);
        self.name(variant);
        value.serialize(&mut *self)?;
        self.out.push(END);
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.out.push(SEQ);
        Ok(Compound { encoder: self, ends: 1 })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        Ok(self.variant_content(variant, SEQ))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.out.push(MAP);
        Ok(Compound { encoder: self, ends: 1 })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        Ok(self.variant_content(variant, MAP))
    }
}

/// A sequence or map being written; `ends` is how many containers it closes (two for an enum's content).
struct Compound<'a> {
    encoder: &'a mut Encoder,
    ends: usize,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.encoder)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.encoder.name(key);
        value.serialize(&mut *self.encoder)
    }

    fn finish(self) -> Result<()> {
        for _ in 0..self.ends {
            self.encoder.out.push(END);
        }
        Ok(())
    }
}

/// The serde traits of the sequence-like compounds differ only in their names.
macro_rules! sequence_like {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = CodecError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.element(value)
            }
            fn end(self) -> Result<()> {
                self.finish()
            }
        }
    )*};
}

sequence_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.element(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// The same for the struct-like ones, whose fields are named.
macro_rules! struct_like {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = CodecError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
                self.field(key, value)
            }
            fn end(self) -> Result<()> {
                self.finish()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

struct Decoder<'de> {
    input: &'de [u8],
}

fn truncated() -> CodecError {
    CodecError("the value ends too early".into())
}

impl<'de> Decoder<'de> {
    fn peek(&self) -> Result<u8> {
        self.input.first().copied().ok_or_else(truncated)
    }

    fn byte(&mut self) -> Result<u8> {
        let (&first, rest) = self.input.split_first().ok_or_else(truncated)?;
        self.input = rest;
        Ok(first)
    }

    fn take(&mut self, len: usize) -> Result<&'de [u8]> {
        if len > self.input.len() {
            return Err(truncated());
        }
        let (taken, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(CodecError("a varint longer than 64 bits".into()))
    }

    fn length(&mut self) -> Result<usize> {
        usize::try_from(self.varint()?).map_err(|_| truncated())
    }

    fn word(code: usize) -> Result<&'static str> {
        WORDS.get(code).copied().ok_or_else(|| CodecError(format!("unknown word {code}")))
    }

    fn utf8(bytes: &'de [u8]) -> Result<&'de str> {
        std::str::from_utf8(bytes).map_err(|e| CodecError(format!("text is not UTF-8: {e}")))
    }

    /// The text that starts with `tag`, if it is text.
    fn text_after(&mut self, tag: u8) -> Result<Option<&'de str>> {
        Ok(Some(match tag {
            SHORT_WORD..=0xFF => Self::word(usize::from(tag - SHORT_WORD))?,
            WORD => {
                let code = self.length()?;
                Self::word(code)?
            }
            SHORT_TEXT..=0x7F => {
                let bytes = self.take(usize::from(tag - SHORT_TEXT))?;
                Self::utf8(bytes)?
            }
            TEXT => {
                let len = self.length()?;
                let bytes = self.take(len)?;
                Self::utf8(bytes)?
            }
            _ => return Ok(None),
        }))
    }

    /// Passes over one value without looking at it.
    fn skip(&mut self) -> Result<()> {
        let tag = self.byte()?;
        match tag {
            NULL | FALSE | TRUE | SMALL_UINT..=0x3F | SHORT_WORD..=0xFF => {}
            UINT | NEGATIVE | WORD => {
                self.varint()?;
            }
            FLOAT => {
                self.take(8)?;
            }
            SHORT_TEXT..=0x7F => {
                self.take(usize::from(tag - SHORT_TEXT))?;
            }
            TEXT | BYTES => {
                let len = self.length()?;
                self.take(len)?;
            }
            SEQ | MAP => {
                while self.peek()? != END {
                    self.skip()?;
                }
                self.byte()?;
            }
            other => return Err(CodecError(format!("unknown tag {other:#04x}"))),
        }
        Ok(())
    }

    fn expect_end(&mut self) -> Result<()> {
        match self.byte()? {
            END => Ok(()),
            other => Err(CodecError(format!("expected the end of a container, found tag {other:#04x}"))),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let tag = self.byte()?;
        if let Some(text) = self.text_after(tag)? {
            return visitor.visit_borrowed_str(text);
        }
        match tag {
            NULL => visitor.visit_unit(),
            FALSE => visitor.visit_bool(false),
            TRUE => visitor.visit_bool(true),
            SMALL_UINT..=0x3F => visitor.visit_u64(u64::from(tag - SMALL_UINT)),
            UINT => visitor.visit_u64(self.varint()?),
            NEGATIVE => {
                let magnitude = self.varint()?;
                let value =
                    i64::try_from(magnitude).map_err(|_| CodecError("integer out of range".into()))?;
                visitor.visit_i64(-1 - value)
            }
            FLOAT => {
                let bytes = self.take(8)?;
                let mut array = [0u8; 8];
                array.copy_from_slice(bytes);
                visitor.visit_f64(f64::from_le_bytes(array))
            }
            BYTES => {
                let len = self.length()?;
                visitor.visit_borrowed_bytes(self.take(len)?)
            }
            SEQ => {
                let value = visitor.visit_seq(Elements { decoder: self })?;
                self.expect_end()?;
                Ok(value)
            }
            MAP => {
                let value = visitor.visit_map(Elements { decoder: self })?;
                self.expect_end()?;
                Ok(value)
            }
            other => Err(CodecError(format!("unknown tag {other:#04x}"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek()? == NULL {
            self.byte()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let tag = self.byte()?;
        if let Some(variant) = self.text_after(tag)? {
            return visitor.visit_enum(variant.into_deserializer());
        }
        if tag != MAP {
            return Err(CodecError(format!("expected an enum, found tag {tag:#04x}")));
        }
        let value = visitor.visit_enum(Variant { decoder: &mut *self })?;
        self.expect_end()?;
        Ok(value)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        // The same data model as the JSON the API writes, so that a type reads the same from either.
        true
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        seq tuple tuple_struct map struct identifier
    }
}

/// The elements of a sequence, or the keys and values of a map, up to its end.
struct Elements<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = CodecError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.decoder.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.decoder).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = CodecError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.decoder.peek()? == END {
            return Ok(None);
        }
        seed.deserialize(&mut *self.decoder).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.decoder)
    }
}

/// An enum written as a one-entry map from the variant's name to its content.
struct Variant<'a, 'de> {
    decoder: &'a mut Decoder<'de>,
}

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = CodecError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let name = seed.deserialize(&mut *self.decoder)?;
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = CodecError;
    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(&mut *self.decoder)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(&mut *self.decoder)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(&mut *self.decoder, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_map(&mut *self.decoder, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, HashSet};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tagged {
        Plain,
        WithFields {
            number: i64,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            maybe: Option<String>,
        },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Outer {
        Unit,
        Newtype(u32),
        Tuple(i8, String),
        Struct { a: bool },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        small: u8,
        big: u64,
        negative: i64,
        smallest: i64,
        float: f64,
        text: String,
        long_text: String,
        word: String,
        empty: Vec<u32>,
        nested: Vec<Vec<i32>>,
        map: BTreeMap<String, Option<u16>>,
        numbered: BTreeMap<u32, bool>,
        tagged: Vec<Tagged>,
        outer: Vec<Outer>,
        unit: (),
        tuple: (u8, char),
        json: serde_json::Value,
    }

    fn sample() -> Everything {
        Everything {
            small: 47,
            big: u64::MAX,
            negative: -1,
            smallest: i64::MIN,
            float: 120.857_159_011_894_14,
            text: "兴仁村小区一楼住户".into(),
            long_text: "长".repeat(40),
            word: "handling".into(),
            empty: vec![],
            nested: vec![vec![1, -2, 300], vec![]],
            map: BTreeMap::from([("a".into(), Some(7)), ("basis".into(), None)]),
            numbered: BTreeMap::from([(3, true), (400, false)]),
            tagged: vec![
                Tagged::Plain,
                Tagged::WithFields { number: -5, maybe: None },
                Tagged::WithFields { number: 5, maybe: Some("x".into()) },
            ],
            outer: vec![
                Outer::Unit,
                Outer::Newtype(9),
                Outer::Tuple(-3, "t".into()),
                Outer::Struct { a: true },
            ],
            unit: (),
            tuple: (1, '网'),
            json: serde_json::json!({"k": [1, "two", null, 2.5, {"deep": false}]}),
        }
    }

    #[test]
    fn every_kind_of_value_comes_back_as_it_went_in() {
        let value = sample();
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes[0], FORMAT_1);
        assert_eq!(decode::<Everything>(&bytes).unwrap(), value);
    }

    #[test]
    fn json_rows_written_before_the_binary_form_still_read() {
        let value = sample();
        let json = serde_json::to_vec(&value).unwrap();
        assert_eq!(decode::<Everything>(&json).unwrap(), value);
    }

    #[test]
    fn a_value_is_much_smaller_than_its_json() {
        let value = sample();
        let binary = encode(&value).unwrap().len();
        let json = serde_json::to_vec(&value).unwrap().len();
        assert!(binary * 10 < json * 8, "{binary} bytes against {json} as JSON");
    }

    #[test]
    fn words_are_unique_and_short_enough_for_the_lookup() {
        let unique: HashSet<&str> = WORDS.iter().copied().collect();
        assert_eq!(unique.len(), WORDS.len());
        assert!(WORDS.iter().all(|w| w.len() <= LONGEST_WORD));
        assert!(WORDS.len() > SHORT_WORD_COUNT, "the two-byte words are exercised");
        assert_eq!(WORDS[SHORT_WORD_COUNT - 1], "system", "the comments in WORDS say where one byte ends");
        let rare = WORDS[WORDS.len() - 1];
        let bytes = encode(rare).unwrap();
        assert_eq!(bytes[1], WORD);
        assert_eq!(decode::<String>(&bytes).unwrap(), rare);
    }

    #[test]
    fn values_written_back_to_back_split_into_each() {
        let (first, second) = (encode(&sample()).unwrap(), encode("第二").unwrap());
        let both = [first.clone(), second.clone()].concat();
        assert_eq!(split_values(&both).unwrap(), vec![&first[..], &second[..]]);
        assert_eq!(split_values(&first).unwrap(), vec![&first[..]]);
        let json = br#"{"a":1}"#;
        assert_eq!(split_values(json).unwrap(), vec![&json[..]], "a JSON row is one value");
        assert!(split_values(&both[..both.len() - 1]).is_err(), "a cut value");
        assert!(split_values(&[&first[..], b"{}"].concat()).is_err(), "something that is not a value");
    }

    #[test]
    fn names_remembered_by_address_are_written_as_their_text_is() {
        assert!((WORDS.len() as u64) < NOT_A_WORD, "every code fits a slot");
        let names: Vec<&'static str> =
            WORDS.iter().copied().chain(["not_a_word", "类别", "", &"grid_id"[..4]]).collect();
        // Twice: the first pass fills the slots, the second reads them.
        for _ in 0..2 {
            for name in &names {
                let (mut by_name, mut by_text) = (Encoder { out: Vec::new() }, Encoder { out: Vec::new() });
                by_name.name(name);
                by_text.text(name);
                assert_eq!(by_name.out, by_text.out, "{name}");
            }
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let bytes = encode(&sample()).unwrap();
        for cut in 1..bytes.len() {
            assert!(decode::<Everything>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(NULL);
        assert!(decode::<Everything>(&extra).is_err());
        assert!(decode::<String>(&[FORMAT_1, 0x0C]).is_err());
        assert!(decode::<String>(&[FORMAT_1, WORD, 0xC8, 0x01]).is_err(), "word 200 is not in the list");
        assert!(decode::<String>(&[FORMAT_1, SHORT_TEXT + 2, 0xFF, 0xFE]).is_err());
        assert!(decode::<u64>(&[
            FORMAT_1, UINT, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1
        ])
        .is_err());
    }

    #[test]
    fn borrowed_text_is_not_copied() {
        #[derive(Deserialize)]
        struct Borrowing<'a> {
            #[serde(borrow)]
            text: std::borrow::Cow<'a, str>,
        }
        #[derive(Serialize)]
        struct Owned {
            text: String,
        }
        let bytes = encode(&Owned { text: "a description longer than any word".into() }).unwrap();
        let read: Borrowing<'_> = decode(&bytes).unwrap();
        assert!(matches!(read.text, std::borrow::Cow::Borrowed(_)));
    }
}
