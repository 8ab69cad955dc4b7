//! What the projection takes from one event: the change's kind, its time and the handful of fields the
//! columns hold. A rebuild reads every event of the log, so it decodes only these from the stored event,
//! borrowing the text and skipping descriptions, addresses, limits and notes, instead of building whole
//! domain `Event`s; events made in memory (the simulator, the benchmark) are brought to the same form with
//! `Fact::of`. The field names are those of `shiyu_domain::Change`'s serialisation, and a test checks that
//! both routes give the same fact for every kind of change.

use serde::Deserialize;
use shiyu_domain::{Change, Channel, Event, Priority};
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Fact<'a> {
    pub at: i64,
    #[serde(borrow)]
    pub change: Step<'a>,
}

/// The fields of a `Change` that the projection reads; which are set depends on `kind`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Step<'a> {
    /// `Change::kind()`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub channel: Option<Channel>,
    /// The jurisdiction chain, city first (received).
    pub path: Vec<i64>,
    pub owner: i64,
    #[serde(borrow)]
    pub matter: Option<Codes<'a>>,
    pub priority: Option<Priority>,
    /// The due time of the stage the change starts, when it starts one.
    pub deadline: Option<Due>,
    /// The lead department (dispatched).
    pub lead: i64,
    pub score: u8,
    /// The jurisdiction escalated to.
    pub to: i64,
    /// The case merged into.
    pub into: i64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Codes<'a> {
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    #[serde(borrow)]
    pub category: Cow<'a, str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub struct Due {
    pub due: i64,
}

impl<'a> Fact<'a> {
    /// Decodes the fact from a stored event (`shiyu_store::codec`: the binary form, or JSON for older rows).
    pub fn parse(stored: &'a [u8]) -> Result<Fact<'a>, shiyu_store::codec::CodecError> {
        shiyu_store::codec::decode(stored)
    }

    pub fn of(event: &'a Event) -> Fact<'a> {
        let mut step = Step { kind: Cow::Borrowed(event.change.kind()), ..Step::default() };
        let due = |deadline: &shiyu_domain::Deadline| Some(Due { due: deadline.due.0 });
        let codes = |matter: &'a shiyu_domain::MatterRef| Codes {
            code: Cow::Borrowed(matter.code.as_str()),
            category: Cow::Borrowed(matter.category.as_str()),
        };
        match &event.change {
            Change::Received { channel, path, owner, matter, priority, deadline, .. } => {
                step.channel = Some(*channel);
                step.path = path.iter().map(|j| j.0).collect();
                step.owner = owner.0;
                step.matter = matter.as_ref().map(codes);
                step.priority = Some(*priority);
                step.deadline = due(deadline);
            }
            Change::Registered { matter, priority, deadline, .. }
            | Change::ResolvedOnSpot { matter, priority, deadline, .. } => {
                step.matter = Some(codes(matter));
                step.priority = Some(*priority);
                step.deadline = due(deadline);
            }
            Change::Dispatched { lead, deadline, .. } => {
                step.lead = lead.0;
                step.deadline = due(deadline);
            }
            Change::Accepted { deadline, .. } => step.deadline = deadline.as_ref().and_then(due),
            Change::ReportedBack { deadline }
            | Change::Verified { deadline }
            | Change::VerificationFailed { deadline }
            | Change::Returned { deadline, .. }
            | Change::ExtensionApproved { deadline }
            | Change::Resumed { deadline }
            | Change::Reopened { deadline }
            | Change::Rescheduled { deadline } => step.deadline = due(deadline),
            Change::Rated { score, .. } => step.score = *score,
            Change::Escalated { to, deadline, .. } => {
                step.to = to.0;
                step.deadline = due(deadline);
            }
            Change::Merged { into } => step.into = into.0,
            Change::Rejected
            | Change::Closed
            | Change::ExtensionRequested { .. }
            | Change::ExtensionDenied
            | Change::Supervised { .. }
            | Change::Suspended { .. }
            | Change::Voided
            | Change::Instructed
            | Change::Warned { .. }
            | Change::Overdue { .. }
            | Change::SupervisionLapsed { .. }
            | Change::ExtensionUndecided { .. } => {}
        }
        Fact { at: event.at.0, change: step }
    }
}
