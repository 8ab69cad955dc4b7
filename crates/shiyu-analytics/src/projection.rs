//! The projection: one row per case in columns (struct of arrays), folded from the event log one event at a
//! time. A row's index is its case id minus one (the store hands ids out densely), so no lookup table is kept.
//! Everything a dashboard or an evaluation asks is answered from these columns; see `query.rs`.

use crate::fact::{Fact, Step};
use shiyu_domain::{CaseId, Channel, Event, Priority, Stage, Status};
use shiyu_store::RawEvent;
use std::collections::HashMap;

/// The stages in column order; a stage's bit in `done` and `late` is its position here.
pub const STAGES: [Stage; 6] =
    [Stage::Register, Stage::Dispatch, Stage::Accept, Stage::Handle, Stage::Verify, Stage::Close];

pub fn stage_index(stage: Stage) -> usize {
    match stage {
        Stage::Register => 0,
        Stage::Dispatch => 1,
        Stage::Accept => 2,
        Stage::Handle => 3,
        Stage::Verify => 4,
        Stage::Close => 5,
    }
}

/// Rows per block of the time index (`Projection::block_min`, `block_max`).
pub const BLOCK: usize = 1024;

/// No stage running (ended, or not yet received).
pub const NO_STAGE: u8 = u8::MAX;
/// No matter or category.
pub const NONE16: u16 = u16::MAX;
pub const NONE8: u8 = u8::MAX;

pub fn channel_index(channel: Channel) -> u8 {
    Channel::ALL.iter().position(|c| *c == channel).map_or(NONE8, |i| i as u8)
}

pub fn status_index(status: Status) -> u8 {
    Status::ALL.iter().position(|s| *s == status).map_or(NONE8, |i| i as u8)
}

/// Codes of matters or categories, numbered in the order first seen.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    pub codes: Vec<String>,
    index: HashMap<String, u16>,
}

impl Dictionary {
    pub fn id(&mut self, code: &str) -> u16 {
        if let Some(id) = self.index.get(code) {
            return *id;
        }
        let id = self.codes.len().min(usize::from(NONE16) - 1) as u16;
        self.codes.push(code.to_string());
        self.index.insert(code.to_string(), id);
        id
    }

    pub fn find(&self, code: &str) -> Option<u16> {
        self.index.get(code).copied()
    }

    pub fn code(&self, id: u16) -> Option<&str> {
        self.codes.get(usize::from(id)).map(String::as_str)
    }
}

/// One dispatch of a case to a lead department: what response (签收) and return (退回) rates count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    pub row: u32,
    pub department: u32,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// 0: not accepted (yet); 1: accepted within the accept limit; 2: accepted late.
    pub accepted: u8,
    pub returned: bool,
}

/// The columns. Times are milliseconds since the epoch (`received_at`) or seconds after `received_at`
/// (`ended`, `dispatched`), 0 meaning "not yet".
#[derive(Clone, Debug, Default)]
pub struct Projection {
    /// The last event folded in.
    pub seq: i64,
    pub received_at: Vec<i64>,
    /// When each stage was first completed, in seconds after the report (0: not yet), by `STAGES` index.
    pub ended: Vec<[u32; 6]>,
    /// When the case was last dispatched (seconds after the report; 0: never).
    pub dispatched: Vec<u32>,
    /// Bit per stage: completed at least once.
    pub done: Vec<u8>,
    /// Bit per stage: completed late at least once.
    pub late: Vec<u8>,
    /// The running stage (`STAGES` index, or `NO_STAGE`) and its due time (`i64::MAX` while suspended).
    pub stage: Vec<u8>,
    pub due: Vec<i64>,
    pub matter: Vec<u16>,
    pub category: Vec<u16>,
    pub county: Vec<u32>,
    pub township: Vec<u32>,
    pub community: Vec<u32>,
    pub grid: Vec<u32>,
    /// The owning command center.
    pub owner: Vec<u32>,
    /// The lead department of the current or last dispatch (0: none).
    pub lead: Vec<u32>,
    pub channel: Vec<u8>,
    pub status: Vec<u8>,
    pub priority: Vec<u8>,
    /// 0: not rated; otherwise 1–5.
    pub rating: Vec<u8>,
    pub reworks: Vec<u8>,
    pub returns: Vec<u8>,
    pub extensions: Vec<u8>,
    pub escalations: Vec<u8>,
    pub supervisions: Vec<u8>,
    pub reopenings: Vec<u8>,
    /// Reports merged into this case as its duplicates.
    pub duplicates: Vec<u16>,
    pub dispatches: Vec<Dispatch>,
    /// The least and greatest row of each block of `BLOCK` dispatches, so that the dispatches of a range of
    /// cases are found without reading them all.
    pub dispatch_rows: Vec<(u32, u32)>,
    /// The open dispatch of each case, as an index into `dispatches`.
    pub open_dispatch: HashMap<u32, u32>,
    pub matters: Dictionary,
    pub categories: Dictionary,
    /// The time index: the earliest and latest `received_at` of each block of `BLOCK` rows (`i64::MAX` and
    /// `i64::MIN` while the block holds no case). A question over a time range skips the blocks outside it
    /// and checks times only in the blocks that straddle its ends; rows in id order are nearly in time order,
    /// but nothing here depends on it.
    pub block_min: Vec<i64>,
    pub block_max: Vec<i64>,
}

fn fit<T: Clone>(column: &mut Vec<T>, rows: usize, capacity: usize, fill: T) {
    if column.capacity() < rows {
        column.reserve_exact(capacity - column.len());
    }
    column.resize(rows, fill);
}

fn saturate(n: u8) -> u8 {
    n.saturating_add(1)
}

/// Seconds from `start` to `at`, at least 1, so that 0 can mean "not yet".
pub fn seconds_after(start: i64, at: i64) -> u32 {
    (((at - start).max(0) / 1000) as u32).max(1)
}

impl Projection {
    pub fn new() -> Projection {
        Projection::default()
    }

    /// How many cases it holds.
    pub fn len(&self) -> usize {
        self.received_at.iter().filter(|t| **t != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows, holes included (ids never used, or not yet seen).
    pub fn rows(&self) -> usize {
        self.received_at.len()
    }

    /// Bytes held by the columns, per case: what the memory target measures.
    pub fn bytes(&self) -> usize {
        let per_row = 8 + 24 + 4 + 1 + 1 + 1 + 8 + 2 + 2 + 4 * 6 + 1 + 1 + 1 + 1 + 6 + 2;
        self.received_at.capacity() * per_row
            + self.dispatches.capacity() * std::mem::size_of::<Dispatch>()
            + self.dispatch_rows.capacity() * 8
            + self.open_dispatch.capacity() * 12
            + (self.block_min.capacity() + self.block_max.capacity()) * 8
    }

    fn grow(&mut self, rows: usize) {
        if rows <= self.received_at.len() {
            return;
        }
        // Grow by an eighth rather than double: at ten million cases doubling leaves a third of the columns'
        // memory unused, and large reallocations are cheap (the allocator remaps the pages).
        let capacity = rows.max(self.received_at.len() + self.received_at.len() / 8).max(BLOCK);
        fit(&mut self.received_at, rows, capacity, 0);
        fit(&mut self.ended, rows, capacity, [0; 6]);
        fit(&mut self.dispatched, rows, capacity, 0);
        fit(&mut self.done, rows, capacity, 0);
        fit(&mut self.late, rows, capacity, 0);
        fit(&mut self.stage, rows, capacity, NO_STAGE);
        fit(&mut self.due, rows, capacity, i64::MAX);
        fit(&mut self.matter, rows, capacity, NONE16);
        fit(&mut self.category, rows, capacity, NONE16);
        fit(&mut self.county, rows, capacity, 0);
        fit(&mut self.township, rows, capacity, 0);
        fit(&mut self.community, rows, capacity, 0);
        fit(&mut self.grid, rows, capacity, 0);
        fit(&mut self.owner, rows, capacity, 0);
        fit(&mut self.lead, rows, capacity, 0);
        fit(&mut self.channel, rows, capacity, NONE8);
        fit(&mut self.status, rows, capacity, NONE8);
        fit(&mut self.priority, rows, capacity, NONE8);
        fit(&mut self.rating, rows, capacity, 0);
        fit(&mut self.reworks, rows, capacity, 0);
        fit(&mut self.returns, rows, capacity, 0);
        fit(&mut self.extensions, rows, capacity, 0);
        fit(&mut self.escalations, rows, capacity, 0);
        fit(&mut self.supervisions, rows, capacity, 0);
        fit(&mut self.reopenings, rows, capacity, 0);
        fit(&mut self.duplicates, rows, capacity, 0);
        let blocks = rows.div_ceil(BLOCK);
        self.block_min.resize(blocks, i64::MAX);
        self.block_max.resize(blocks, i64::MIN);
    }

    /// Folds one stored event in, decoding only what the columns need. Events must come in log order; an
    /// event already folded in (by `seq`) is ignored, so a page read twice changes nothing.
    pub fn apply_raw(&mut self, stored: &RawEvent) -> Result<(), shiyu_store::codec::CodecError> {
        if stored.seq <= self.seq {
            return Ok(());
        }
        let fact = Fact::parse(&stored.payload)?;
        self.seq = stored.seq;
        self.apply_fact(stored.case_id, &fact);
        Ok(())
    }

    fn set_stage(&mut self, row: usize, stage: Option<(Stage, i64)>) {
        match stage {
            Some((stage, due)) => {
                self.stage[row] = stage_index(stage) as u8;
                self.due[row] = due;
            }
            None => {
                self.stage[row] = NO_STAGE;
                self.due[row] = i64::MAX;
            }
        }
    }

    /// The running stage ends at `at` by completing: on time or late against its due time.
    fn complete(&mut self, row: usize, stage: Stage, at: i64) {
        let index = stage_index(stage);
        if self.stage[row] != index as u8 {
            return;
        }
        let bit = 1u8 << index;
        self.done[row] |= bit;
        if at > self.due[row] {
            self.late[row] |= bit;
        }
        if self.ended[row][index] == 0 {
            self.ended[row][index] = seconds_after(self.received_at[row], at);
        }
    }

    fn set_matter(&mut self, row: usize, code: &str, category: &str) {
        self.matter[row] = self.matters.id(code);
        self.category[row] = self.categories.id(category);
    }

    pub fn apply_event(&mut self, id: CaseId, event: &Event) {
        self.apply_fact(id, &Fact::of(event));
    }

    /// Folds one event in, as decoded from the log (`Fact::parse`) or taken from a domain event.
    pub fn apply_fact(&mut self, id: CaseId, fact: &Fact) {
        let Ok(row) = usize::try_from(id.0 - 1) else { return };
        let step = &fact.change;
        let kind = step.kind.as_ref();
        // A case's history starts with its report; anything else for a case not seen is not counted.
        if kind != "received" && self.received_at.get(row).is_none_or(|at| *at == 0) {
            return;
        }
        self.grow(row + 1);
        let at = fact.at;
        let due = step.deadline.map_or(i64::MAX, |d| d.due);
        let status = |s: Status| status_index(s);
        match kind {
            "received" => {
                self.received_at[row] = at;
                let block = row / BLOCK;
                self.block_min[block] = self.block_min[block].min(at);
                self.block_max[block] = self.block_max[block].max(at);
                let at_depth = |depth: usize| step.path.get(depth).map_or(0, |j| *j as u32);
                self.county[row] = at_depth(1);
                self.township[row] = at_depth(2);
                self.community[row] = at_depth(3);
                self.grid[row] = at_depth(4);
                self.owner[row] = step.owner as u32;
                self.channel[row] = step.channel.map_or(NONE8, channel_index);
                self.priority[row] = step.priority.map_or(NONE8, priority_index);
                self.status[row] = status(Status::Received);
                if let Some(m) = &step.matter {
                    self.set_matter(row, &m.code, &m.category);
                }
                self.set_stage(row, Some((Stage::Register, due)));
            }
            "registered" => {
                self.complete(row, Stage::Register, at);
                self.set_codes(row, step);
                self.status[row] = status(Status::Registered);
                self.set_stage(row, Some((Stage::Dispatch, due)));
            }
            "rejected" => {
                self.complete(row, Stage::Register, at);
                self.status[row] = status(Status::Rejected);
                self.set_stage(row, None);
            }
            "dispatched" => {
                self.complete(row, Stage::Dispatch, at);
                self.lead[row] = step.lead as u32;
                self.dispatched[row] = seconds_after(self.received_at[row], at);
                self.open_dispatch.insert(row as u32, self.dispatches.len() as u32);
                let block = self.dispatches.len() / BLOCK;
                if block == self.dispatch_rows.len() {
                    self.dispatch_rows.push((row as u32, row as u32));
                }
                let (least, greatest) = &mut self.dispatch_rows[block];
                (*least, *greatest) = ((*least).min(row as u32), (*greatest).max(row as u32));
                if self.dispatches.len() == self.dispatches.capacity() {
                    self.dispatches.reserve_exact((self.dispatches.len() / 8).max(BLOCK));
                }
                self.dispatches.push(Dispatch {
                    row: row as u32,
                    department: step.lead as u32,
                    at,
                    accepted: 0,
                    returned: false,
                });
                self.status[row] = status(Status::Dispatched);
                self.set_stage(row, Some((Stage::Accept, due)));
            }
            // Accepting again without a new deadline (a second department of a joint case) changes nothing.
            "accepted" if step.deadline.is_some() => {
                let on_time = at <= self.due[row];
                self.complete(row, Stage::Accept, at);
                if let Some(d) =
                    self.open_dispatch.get(&(row as u32)).and_then(|i| self.dispatches.get_mut(*i as usize))
                {
                    d.accepted = if on_time { 1 } else { 2 };
                }
                self.status[row] = status(Status::Handling);
                self.set_stage(row, Some((Stage::Handle, due)));
            }
            "reported_back" => {
                self.complete(row, Stage::Handle, at);
                self.status[row] = status(Status::Handled);
                self.set_stage(row, Some((Stage::Verify, due)));
            }
            "verified" => {
                self.complete(row, Stage::Verify, at);
                self.status[row] = status(Status::Verified);
                self.set_stage(row, Some((Stage::Close, due)));
            }
            "verification_failed" => {
                self.complete(row, Stage::Verify, at);
                self.reworks[row] = saturate(self.reworks[row]);
                let (next_status, next_stage) = if self.lead[row] != 0 {
                    (Status::Handling, Stage::Handle)
                } else {
                    (Status::Registered, Stage::Dispatch)
                };
                self.status[row] = status(next_status);
                self.set_stage(row, Some((next_stage, due)));
            }
            "closed" => {
                self.complete(row, Stage::Close, at);
                self.status[row] = status(Status::Closed);
                self.set_stage(row, None);
                self.open_dispatch.remove(&(row as u32));
            }
            "rated" => self.rating[row] = step.score,
            "resolved_on_spot" => {
                self.complete(row, Stage::Register, at);
                self.set_codes(row, step);
                self.status[row] = status(Status::Handled);
                self.set_stage(row, Some((Stage::Verify, due)));
            }
            "returned" => {
                self.returns[row] = saturate(self.returns[row]);
                if let Some(i) = self.open_dispatch.remove(&(row as u32)) {
                    if let Some(d) = self.dispatches.get_mut(i as usize) {
                        d.returned = true;
                    }
                }
                self.lead[row] = 0;
                self.status[row] = status(Status::Registered);
                self.set_stage(row, Some((Stage::Dispatch, due)));
            }
            "extension_approved" => {
                self.extensions[row] = saturate(self.extensions[row]);
                self.due[row] = due;
            }
            "supervised" => self.supervisions[row] = saturate(self.supervisions[row]),
            "escalated" => {
                self.escalations[row] = saturate(self.escalations[row]);
                self.owner[row] = step.to as u32;
                self.lead[row] = 0;
                self.open_dispatch.remove(&(row as u32));
                if self.status[row] == status(Status::Received) {
                    self.set_stage(row, Some((Stage::Register, due)));
                } else {
                    self.status[row] = status(Status::Registered);
                    self.set_stage(row, Some((Stage::Dispatch, due)));
                }
            }
            "merged" => {
                self.status[row] = status(Status::Merged);
                self.set_stage(row, None);
                self.open_dispatch.remove(&(row as u32));
                if let Some(target) =
                    usize::try_from(step.into - 1).ok().filter(|t| *t < self.duplicates.len())
                {
                    self.duplicates[target] = self.duplicates[target].saturating_add(1);
                }
            }
            "suspended" => self.due[row] = i64::MAX,
            "resumed" | "rescheduled" => self.due[row] = due,
            "voided" => {
                self.status[row] = status(Status::Voided);
                self.set_stage(row, None);
                self.open_dispatch.remove(&(row as u32));
            }
            "reopened" => {
                self.reopenings[row] = saturate(self.reopenings[row]);
                self.rating[row] = 0;
                self.lead[row] = 0;
                self.status[row] = status(Status::Registered);
                self.set_stage(row, Some((Stage::Dispatch, due)));
            }
            // Requests, denials, instructions and the clock's warnings change no column.
            _ => {}
        }
    }

    fn set_codes(&mut self, row: usize, step: &Step) {
        if let Some(m) = &step.matter {
            self.set_matter(row, &m.code, &m.category);
        }
        self.priority[row] = step.priority.map_or(NONE8, priority_index);
    }
}

pub fn priority_index(priority: Priority) -> u8 {
    match priority {
        Priority::Urgent => 0,
        Priority::High => 1,
        Priority::Normal => 2,
        Priority::Low => 3,
    }
}
