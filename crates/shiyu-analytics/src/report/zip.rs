//! A zip archive of stored (uncompressed) entries, enough for an .xlsx: a report's workbook is some tens of
//! kilobytes, and writing it by hand spares the build a zip crate and a deflate implementation.
//! Layout per APPNOTE.TXT: local header + data for each entry, then the central directory, then its end record.

use super::ReportError;

/// The CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) that zip stores for each entry.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// 1980-01-01 00:00, the earliest MS-DOS date: a fixed time keeps the output a pure function of the report.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
/// Version 2.0 of the format, the one that readers of stored entries expect.
const VERSION: u16 = 20;

/// `(name, content)` pairs as a zip archive, in the given order.
pub(super) fn store(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).map_err(|_| ReportError::TooLarge)?;
        let size = u32::try_from(data.len()).map_err(|_| ReportError::TooLarge)?;
        let name_len = u16::try_from(name.len()).map_err(|_| ReportError::TooLarge)?;
        let crc = crc32(data);
        // Fields shared by the local header and the central directory, from "version needed" to "extra length".
        let mut common = Vec::with_capacity(26);
        for half in [VERSION, 0, 0, DOS_TIME, DOS_DATE] {
            common.extend_from_slice(&half.to_le_bytes());
        }
        for word in [crc, size, size] {
            common.extend_from_slice(&word.to_le_bytes());
        }
        common.extend_from_slice(&name_len.to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes());

        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&VERSION.to_le_bytes()); // made by
        central.extend_from_slice(&common);
        // comment length, disk number, internal attributes (u16 each), external attributes (u32)
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(entries.len()).map_err(|_| ReportError::TooLarge)?;
    let central_offset = u32::try_from(out.len()).map_err(|_| ReportError::TooLarge)?;
    let central_size = u32::try_from(central.len()).map_err(|_| ReportError::TooLarge)?;
    central_offset.checked_add(central_size).ok_or(ReportError::TooLarge)?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // this disk, disk of the central directory
    out.extend_from_slice(&count.to_le_bytes()); // entries on this disk
    out.extend_from_slice(&count.to_le_bytes()); // entries in all
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}
