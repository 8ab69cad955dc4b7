//! Deadlines that enforce themselves, and telling people about it. Both halves are read models of the event
//! log (see docs/ARCHITECTURE.md):
//!
//! - [`Deadlines`] keeps every open case's next alarm in memory (a heap), rebuilt from the store's alarm
//!   index at start-up, and fires each alarm through `CaseService::fire_alarm` when it is due. It learns of
//!   new and changed cases by tailing the log; nothing scans the case table.
//! - [`Notifier`] follows the log from its stored position and turns events into in-app notifications (and
//!   webhook deliveries and SMS), written with its new position in one transaction.
//! - [`Deliverer`] sends the webhook deliveries the notifier queued: signed, retried with backoff, given up
//!   into a dead-letter list after the last attempt.

pub mod deadlines;
pub mod notifier;
pub mod settings;
pub mod sms;
pub mod webhooks;

pub use deadlines::Deadlines;
pub use notifier::Notifier;
pub use sms::{LogSms, SmsSender};
pub use webhooks::Deliverer;

/// What a department's webhook receives for one event: the event as the log has it, with the case's
/// current status; personal data never leaves (the reporter's contact and the command's network origin are
/// left out).
pub fn webhook_body(
    stored: &shiyu_store::StoredEvent,
    state: &shiyu_domain::CaseState,
    department: i64,
) -> String {
    let mut event = stored.event.clone();
    // Where a command came from is an address (a citizen's, for a public report): for the audit trail only.
    event.origin = None;
    if let shiyu_domain::Change::Received { reporter, .. } = &mut event.change {
        *reporter = shiyu_domain::Reporter { anonymous: reporter.anonymous, ..Default::default() };
    }
    serde_json::json!({
        "seq": stored.seq,
        "case_id": stored.case_id.0,
        "version": stored.version,
        "kind": event.change.kind(),
        "status": state.status.as_str(),
        "department": department,
        "event": event,
    })
    .to_string()
}
