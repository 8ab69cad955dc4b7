//! The closed loop, table by table: who may take which action in which state, and the flows around it
//! (rework, return, extension, suspension, escalation, reopening, rating, merging, deadline lights, visibility).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use shiyu_domain::decide::MAX_EXTENSION_MINUTES;
use shiyu_domain::sla::{fire, reschedule};
use shiyu_domain::{
    apply, can_view, decide, next_alarm, Action, Actor, AlarmKind, Basis, Change, Command, ErrorKind as E,
    Event, Light, NewCase, Reporter, Role, Rules, Scope, Signal, Stage, Status, WorkCalendar, YearDays,
};
use std::collections::BTreeSet;

/// What a row expects: the kind of the one event produced, or the refusal.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expected {
    Ev(&'static str),
    No(E),
}
use Expected::{Ev, No};

type Row = (&'static str, Command, Actor, Expected);

/// The one helper every table goes through. Builds the named fixture state, decides `command` one step later
/// and compares with `expected`. An accepted command's events must record who acted, when and why, must apply,
/// must keep every invariant and must count one version each.
fn check(state_name: &str, command: Command, actor: Actor, expected: Expected) -> Result<(), String> {
    let story = story(state_name);
    let now = story.now.plus_minutes(STEP_MINUTES);
    let label = format!("{state_name} / {} / {}", command.action.name(), actor_name(&actor));
    let outcome = decide(story.state.as_ref(), &command, &actor, now, &story.rules);
    match (outcome, expected) {
        (Ok(events), Ev(kind)) => {
            let kinds: Vec<&str> = events.iter().map(|e| e.change.kind()).collect();
            if kinds != [kind] {
                return Err(format!("{label}: expected [{kind}], got {kinds:?}"));
            }
            let mut state = story.state.clone();
            let version = state.as_ref().map_or(0, |s| s.version);
            for event in &events {
                if event.at != now || event.actor != actor || event.note != command.note {
                    return Err(format!("{label}: the event does not record who, when and why: {event:?}"));
                }
                let reply = command.reply_text();
                if event.reply.as_deref() != reply {
                    return Err(format!("{label}: the event does not keep the reply {reply:?}: {event:?}"));
                }
                let next =
                    apply(state, event).map_err(|e| format!("{label}: apply refused its event: {e}"))?;
                next.check_invariants().map_err(|rule| format!("{label}: invariant broken: {rule}"))?;
                state = Some(next);
            }
            let after = state.map_or(0, |s| s.version);
            if after != version + events.len() as u64 {
                return Err(format!("{label}: version {version} → {after} for {} events", events.len()));
            }
            Ok(())
        }
        (Err(error), No(kind)) if error.kind == kind => Ok(()),
        (Ok(events), No(kind)) => Err(format!(
            "{label}: expected {}, got events {:?}",
            kind.code(),
            events.iter().map(|e| e.change.kind()).collect::<Vec<_>>()
        )),
        (Err(error), _) => Err(format!("{label}: expected {expected:?}, got {error}")),
    }
}

fn run(rows: Vec<Row>) {
    let failures: Vec<String> = rows
        .into_iter()
        .filter_map(|(state, command, actor, expected)| check(state, command, actor, expected).err())
        .collect();
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

/// The same person acting under another role: the verifier rule is about people, not accounts.
fn as_operator(actor: Actor) -> Actor {
    Actor::User { user: user_id(actor), role: Role::Operator, scope: Scope::Jurisdiction(OWNER) }
}

/// The command with an answer for the reporter.
fn replying(command: Command, reply: &str) -> Command {
    Command { reply: Some(reply.into()), ..command }
}

fn long(chars: usize) -> String {
    "长".repeat(chars)
}

fn new_case_with(edit: impl FnOnce(&mut NewCase)) -> Command {
    let mut new = new_case();
    edit(&mut new);
    receive_case(new)
}

// ---------------------------------------------------------------------------------------------------------
// Tables, one per part of the loop
// ---------------------------------------------------------------------------------------------------------

fn intake_table() -> Vec<Row> {
    vec![
        ("none", receive(), CITIZEN, Ev("received")),
        ("none", receive(), HOTLINE, Ev("received")),
        ("none", receive(), GRID_A, Ev("received")),
        ("none", receive(), OP_TOWNSHIP, Ev("received")),
        ("none", receive(), MEDIATOR, Ev("received")),
        ("none", receive(), SYSTEM, Ev("received")),
        ("none", receive(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("none", receive(), LEADER_CITY, No(E::RoleNotPermitted)),
        ("none", receive(), LEAD_A, No(E::RoleNotPermitted)),
        ("none", receive(), ADMIN, No(E::RoleNotPermitted)),
        // A citizen without an account reports as the holder of the tracking code the report will get.
        ("none", receive(), REPORTER, Ev("received")),
        ("received", receive(), CITIZEN, No(E::CaseAlreadyExists)),
        ("closed", receive(), HOTLINE, No(E::CaseAlreadyExists)),
        ("none", new_case_with(|n| n.description = long(10_000)), CITIZEN, No(E::TextTooLong)),
        ("none", new_case_with(|n| n.description = long(4_000)), CITIZEN, Ev("received")),
        ("none", new_case_with(|n| n.address = Some(long(501))), CITIZEN, No(E::TextTooLong)),
        (
            "none",
            new_case_with(|n| n.description = "井盖丢了\u{0}".into()),
            CITIZEN,
            No(E::TextHasControlCharacters),
        ),
        (
            "none",
            new_case_with(|n| n.address = Some("桃坞路\u{202E}号12".into())),
            CITIZEN,
            No(E::TextHasControlCharacters),
        ),
        ("none", new_case_with(|n| n.description = "井盖丢了\n第二行\t附注".into()), CITIZEN, Ev("received")),
        (
            "none",
            Command {
                attachments: vec![
                    shiyu_domain::AttachmentRef { sha256: "0".repeat(64), name: "p.jpg".into() };
                    shiyu_domain::decide::MAX_ATTACHMENTS + 1
                ],
                ..receive()
            },
            CITIZEN,
            No(E::TooManyAttachments),
        ),
        ("none", new_case_with(|n| n.description = " \n\t ".into()), CITIZEN, No(E::DescriptionEmpty)),
        ("none", new_case_with(|n| n.path.clear()), CITIZEN, No(E::JurisdictionPathInvalid)),
        (
            "none",
            new_case_with(|n| n.path = vec![CITY, COUNTY, COUNTY]),
            CITIZEN,
            No(E::JurisdictionPathInvalid),
        ),
        ("none", new_case_with(|n| n.owner = OTHER_COUNTY), CITIZEN, No(E::JurisdictionPathInvalid)),
        // Nothing but a report can come before the case exists.
        ("none", register(), OP_COUNTY, No(E::CaseNotReceived)),
        ("none", instruct(), LEADER_CITY, No(E::CaseNotReceived)),
        ("none", rate(5), REPORTER, No(E::CaseNotReceived)),
    ]
}

fn register_table() -> Vec<Row> {
    vec![
        ("received", register(), OP_COUNTY, Ev("registered")),
        ("received", register(), OP_CITY, Ev("registered")),
        ("received", register(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("received", register(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("received", register(), GRID_A, No(E::RoleNotPermitted)),
        ("received", register(), LEADER_COUNTY, No(E::RoleNotPermitted)),
        ("received", register(), LEAD_A, No(E::RoleNotPermitted)),
        ("registered", register(), OP_COUNTY, No(E::StateForbidsAction)),
        ("handling", register(), OP_COUNTY, No(E::StateForbidsAction)),
        ("received", reject(), OP_COUNTY, Ev("rejected")),
        ("received", bare(Action::Reject), OP_COUNTY, No(E::ReasonRequired)),
        ("received", Command::with_note(Action::Reject, long(2_001)), OP_COUNTY, No(E::TextTooLong)),
        ("received", replying(reject(), " 不属于受理范围，请向物业反映 "), OP_COUNTY, Ev("rejected")),
        ("received", replying(reject(), &long(2_001)), OP_COUNTY, No(E::TextTooLong)),
        ("received", replying(reject(), "请\u{202E}拨打"), OP_COUNTY, No(E::TextHasControlCharacters)),
        ("received", replying(register(), "已受理"), OP_COUNTY, No(E::ReplyNotAllowed)),
        ("received", replying(register(), "   "), OP_COUNTY, Ev("registered")),
        ("received", reject(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("received", reject(), HOTLINE, No(E::RoleNotPermitted)),
        ("registered", reject(), OP_COUNTY, No(E::StateForbidsAction)),
        ("received", resolve_on_spot(), GRID_A, Ev("resolved_on_spot")),
        ("received", resolve_on_spot(), OP_COUNTY, No(E::RoleNotPermitted)),
        ("received", bare(Action::ResolveOnSpot { matter: matter() }), GRID_A, No(E::ReasonRequired)),
        ("registered", resolve_on_spot(), GRID_A, No(E::StateForbidsAction)),
    ]
}

fn dispatch_table() -> Vec<Row> {
    let eleven: Vec<_> = (200..211).map(shiyu_domain::DepartmentId).collect();
    vec![
        ("registered", dispatch(), OP_COUNTY, Ev("dispatched")),
        ("registered", dispatch(), OP_CITY, Ev("dispatched")),
        ("registered", dispatch_to(UNRELATED_DEPT, &[]), OP_COUNTY, Ev("dispatched")),
        ("registered", dispatch(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("registered", dispatch(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("registered", dispatch(), LEADER_CITY, No(E::RoleNotPermitted)),
        ("registered", dispatch(), HOTLINE, No(E::RoleNotPermitted)),
        ("registered", dispatch_to(LEAD_DEPT, &[LEAD_DEPT]), OP_COUNTY, No(E::DispatchDepartmentsInvalid)),
        (
            "registered",
            dispatch_to(LEAD_DEPT, &[ASSIST_DEPT, ASSIST_DEPT]),
            OP_COUNTY,
            No(E::DispatchDepartmentsInvalid),
        ),
        ("registered", dispatch_to(LEAD_DEPT, &eleven), OP_COUNTY, No(E::DispatchDepartmentsInvalid)),
        ("registered", dispatch_to(LEAD_DEPT, &eleven[..10]), OP_COUNTY, Ev("dispatched")),
        (
            "registered",
            Command::new(Action::Dispatch { lead: LEAD_DEPT, assisting: vec![], basis: Some(long(501)) }),
            OP_COUNTY,
            No(E::TextTooLong),
        ),
        ("received", dispatch(), OP_COUNTY, No(E::StateForbidsAction)),
        ("dispatched", dispatch(), OP_COUNTY, No(E::StateForbidsAction)),
        // Escalated: the city owns the case now and the county may no longer dispatch it.
        ("escalated", dispatch(), OP_CITY, Ev("dispatched")),
        ("escalated", dispatch(), OP_COUNTY, No(E::OutOfJurisdiction)),
    ]
}

fn department_table() -> Vec<Row> {
    vec![
        ("dispatched", accept(), LEAD_A, Ev("accepted")),
        ("dispatched", accept(), ASSIST, Ev("accepted")),
        ("handling", accept(), ASSIST, Ev("accepted")),
        ("handling", accept(), LEAD_B, No(E::AlreadyAccepted)),
        ("dispatched", accept(), UNRELATED, No(E::DepartmentNotAssigned)),
        ("registered", accept(), LEAD_A, No(E::DepartmentNotAssigned)),
        ("dispatched", accept(), OP_COUNTY, No(E::RoleNotPermitted)),
        ("handled", accept(), ASSIST, No(E::StateForbidsAction)),
        ("handling", report_back(), LEAD_A, Ev("reported_back")),
        ("handling", report_back(), LEAD_B, Ev("reported_back")),
        ("handling", report_back(), ASSIST, No(E::NotLeadDepartment)),
        ("handling", report_back(), UNRELATED, No(E::DepartmentNotAssigned)),
        ("handling", bare(Action::ReportBack), LEAD_A, No(E::ReasonRequired)),
        ("handling", report_back(), GRID_A, No(E::RoleNotPermitted)),
        ("dispatched", report_back(), LEAD_A, No(E::StateForbidsAction)),
        // Reporting back settles a pending extension request: the work is done.
        ("extension_pending", report_back(), LEAD_A, Ev("reported_back")),
        ("dispatched", return_case(), LEAD_A, Ev("returned")),
        ("handling", return_case(), LEAD_B, Ev("returned")),
        ("extension_pending", return_case(), LEAD_A, Ev("returned")),
        ("handling", return_case(), ASSIST, No(E::NotLeadDepartment)),
        ("dispatched", return_case(), UNRELATED, No(E::DepartmentNotAssigned)),
        ("handling", bare(Action::Return), LEAD_A, No(E::ReasonRequired)),
        ("handling", return_case(), OP_COUNTY, No(E::RoleNotPermitted)),
        ("handled", return_case(), LEAD_A, No(E::StateForbidsAction)),
    ]
}

fn verification_table() -> Vec<Row> {
    vec![
        ("handled", verify(true), GRID_A, Ev("verified")),
        ("handled", verify(true), OP_COUNTY, Ev("verified")),
        ("handled", verify(true), OP_CITY, Ev("verified")),
        ("handled", verify(false), GRID_B, Ev("verification_failed")),
        ("handled", bare(Action::Verify { passed: false }), GRID_B, No(E::ReasonRequired)),
        ("handled", bare(Action::Verify { passed: true }), GRID_B, Ev("verified")),
        ("handled", verify(true), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("handled", verify(true), OP_OTHER, No(E::OutOfJurisdiction)),
        ("handled", verify(true), LEAD_A, No(E::RoleNotPermitted)),
        ("handled", verify(true), HOTLINE, No(E::RoleNotPermitted)),
        ("handled", verify(true), as_operator(LEAD_A), No(E::VerifierIsHandler)),
        ("handled", verify(false), as_operator(LEAD_A), No(E::VerifierIsHandler)),
        ("on_spot", verify(true), GRID_A, No(E::VerifierIsHandler)),
        ("on_spot", verify(true), GRID_B, Ev("verified")),
        ("on_spot", verify(false), OP_COUNTY, Ev("verification_failed")),
        ("handling", verify(true), GRID_A, No(E::StateForbidsAction)),
        ("verified", verify(true), GRID_A, No(E::StateForbidsAction)),
        ("verified", close(), OP_COUNTY, Ev("closed")),
        ("verified", replying(close(), "井盖已更换，感谢您的反映"), OP_COUNTY, Ev("closed")),
        ("handled", replying(verify(true), "已核查"), GRID_A, No(E::ReplyNotAllowed)),
        ("verified", close(), OP_CITY, Ev("closed")),
        ("verified", close(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("verified", close(), LEADER_CITY, No(E::RoleNotPermitted)),
        ("verified", close(), GRID_A, No(E::RoleNotPermitted)),
        ("handled", close(), OP_COUNTY, No(E::StateForbidsAction)),
        ("closed", close(), OP_COUNTY, No(E::StateForbidsAction)),
    ]
}

fn rating_table() -> Vec<Row> {
    let long_comment = Command::new(Action::Rate { score: 4, comment: Some(long(501)) });
    vec![
        ("closed", rate(5), CITIZEN, Ev("rated")),
        ("closed", rate(1), CITIZEN, Ev("rated")),
        ("closed", rate(4), REPORTER, Ev("rated")),
        ("closed", rate(3), HOTLINE, Ev("rated")),
        ("closed", rate(5), CITIZEN_OTHER, No(E::NotReporter)),
        ("closed", rate(5), OP_COUNTY, No(E::RoleNotPermitted)),
        ("closed", rate(5), SYSTEM, No(E::RoleNotPermitted)),
        ("closed", rate(0), CITIZEN, No(E::RatingOutOfRange)),
        ("closed", rate(6), REPORTER, No(E::RatingOutOfRange)),
        ("rated", rate(6), CITIZEN, No(E::RatingOutOfRange)),
        ("closed", long_comment, CITIZEN, No(E::TextTooLong)),
        ("rated", rate(5), CITIZEN, No(E::AlreadyRated)),
        ("rated", rate(2), HOTLINE, No(E::AlreadyRated)),
        ("handled", rate(5), CITIZEN, No(E::StateForbidsAction)),
        ("closed", reopen(), OP_COUNTY, Ev("reopened")),
        ("rated", reopen(), OP_CITY, Ev("reopened")),
        ("closed", bare(Action::Reopen), OP_COUNTY, No(E::ReasonRequired)),
        ("closed", reopen(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("closed", reopen(), CITIZEN, No(E::RoleNotPermitted)),
        ("verified", reopen(), OP_COUNTY, No(E::StateForbidsAction)),
        ("voided", reopen(), OP_COUNTY, No(E::StateForbidsAction)),
    ]
}

fn extension_table() -> Vec<Row> {
    vec![
        ("handling", request_extension(600), LEAD_A, Ev("extension_requested")),
        ("handling", request_extension(1), LEAD_B, Ev("extension_requested")),
        ("handling", request_extension(MAX_EXTENSION_MINUTES), LEAD_A, Ev("extension_requested")),
        ("handling", request_extension(0), LEAD_A, No(E::ExtensionLengthInvalid)),
        ("handling", request_extension(MAX_EXTENSION_MINUTES + 1), LEAD_A, No(E::ExtensionLengthInvalid)),
        ("handling", bare(Action::RequestExtension { minutes: 60 }), LEAD_A, No(E::ReasonRequired)),
        ("handling", request_extension(600), ASSIST, No(E::NotLeadDepartment)),
        ("handling", request_extension(600), UNRELATED, No(E::DepartmentNotAssigned)),
        ("handling", request_extension(600), GRID_A, No(E::RoleNotPermitted)),
        ("extension_pending", request_extension(60), LEAD_A, No(E::ExtensionPending)),
        ("dispatched", request_extension(600), LEAD_A, No(E::StateForbidsAction)),
        ("extension_pending", decide_extension(true), OP_COUNTY, Ev("extension_approved")),
        (
            "extension_pending",
            bare(Action::DecideExtension { approve: true }),
            OP_COUNTY,
            Ev("extension_approved"),
        ),
        ("extension_pending", decide_extension(false), OP_CITY, Ev("extension_denied")),
        (
            "extension_pending",
            bare(Action::DecideExtension { approve: false }),
            OP_COUNTY,
            No(E::ReasonRequired),
        ),
        ("extension_pending", decide_extension(true), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("extension_pending", decide_extension(true), OP_OTHER, No(E::OutOfJurisdiction)),
        ("extension_pending", decide_extension(true), LEADER_COUNTY, No(E::RoleNotPermitted)),
        ("extension_pending", decide_extension(true), LEAD_A, No(E::RoleNotPermitted)),
        ("handling", decide_extension(true), OP_COUNTY, No(E::NoExtensionPending)),
        ("handled", decide_extension(true), OP_COUNTY, No(E::StateForbidsAction)),
    ]
}

fn supervision_table() -> Vec<Row> {
    let past = supervise(t0().plus_minutes(-1));
    vec![
        ("handling", supervise_next_week(), OP_CITY, Ev("supervised")),
        ("received", supervise_next_week(), OP_CITY, Ev("supervised")),
        ("handling", supervise_next_week(), LEADER_COUNTY, Ev("supervised")),
        ("handling", supervise_next_week(), LEADER_CITY, Ev("supervised")),
        ("handling", supervise_next_week(), SYSTEM, Ev("supervised")),
        // Supervision comes from strictly above the owning center.
        ("handling", supervise_next_week(), OP_COUNTY, No(E::OutOfJurisdiction)),
        ("handling", supervise_next_week(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("handling", supervise_next_week(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("escalated", supervise_next_week(), OP_CITY, No(E::OutOfJurisdiction)),
        ("escalated", supervise_next_week(), LEADER_CITY, Ev("supervised")),
        ("handling", supervise_next_week(), LEADER_OTHER, No(E::OutOfJurisdiction)),
        ("handling", past, OP_CITY, No(E::DeadlineNotInFuture)),
        ("handling", supervise(t0().plus_minutes(91 * 24 * 60)), OP_CITY, No(E::DeadlineTooFar)),
        ("handling", supervise(t0().plus_minutes(89 * 24 * 60)), OP_CITY, Ev("supervised")),
        (
            "handling",
            bare(Action::Supervise { due: t0().plus_minutes(9_000) }),
            OP_CITY,
            No(E::ReasonRequired),
        ),
        ("handling", supervise_next_week(), GRID_A, No(E::RoleNotPermitted)),
        ("handling", supervise_next_week(), LEAD_A, No(E::RoleNotPermitted)),
        ("closed", supervise_next_week(), OP_CITY, No(E::StateForbidsAction)),
        ("handling", instruct(), LEADER_COUNTY, Ev("instructed")),
        ("closed", instruct(), LEADER_CITY, Ev("instructed")),
        ("rejected", instruct(), LEADER_COUNTY, Ev("instructed")),
        ("handling", instruct(), LEADER_OTHER, No(E::OutOfJurisdiction)),
        ("handling", instruct(), OP_CITY, No(E::RoleNotPermitted)),
        ("handling", instruct(), ADMIN, No(E::RoleNotPermitted)),
        ("handling", bare(Action::Instruct), LEADER_CITY, No(E::ReasonRequired)),
        ("merged", instruct(), LEADER_CITY, No(E::StateForbidsAction)),
        ("voided", instruct(), LEADER_CITY, No(E::StateForbidsAction)),
    ]
}

fn center_table() -> Vec<Row> {
    vec![
        ("received", escalate(), OP_COUNTY, Ev("escalated")),
        ("dispatched", escalate(), OP_COUNTY, Ev("escalated")),
        ("handling", escalate(), SYSTEM, Ev("escalated")),
        ("extension_pending", escalate(), OP_CITY, Ev("escalated")),
        ("escalated", escalate(), OP_CITY, No(E::NoLevelAbove)),
        ("escalated", escalate(), SYSTEM, No(E::NoLevelAbove)),
        ("received", escalate(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("received", escalate(), LEADER_CITY, No(E::RoleNotPermitted)),
        ("received", bare(Action::Escalate), OP_COUNTY, No(E::ReasonRequired)),
        ("handled", escalate(), OP_COUNTY, No(E::StateForbidsAction)),
        ("received", merge(), OP_COUNTY, Ev("merged")),
        ("handling", merge(), OP_CITY, Ev("merged")),
        ("received", merge(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("received", merge(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("received", merge(), HOTLINE, No(E::RoleNotPermitted)),
        ("verified", merge(), OP_COUNTY, No(E::StateForbidsAction)),
        ("handling", suspend(), OP_COUNTY, Ev("suspended")),
        ("received", suspend(), OP_COUNTY, Ev("suspended")),
        ("on_spot", suspend(), OP_CITY, Ev("suspended")),
        ("handling", bare(Action::Suspend), OP_COUNTY, No(E::ReasonRequired)),
        ("handling", suspend(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("handling", suspend(), LEAD_A, No(E::RoleNotPermitted)),
        ("closed", suspend(), OP_COUNTY, No(E::StateForbidsAction)),
        ("suspended", resume(), OP_COUNTY, Ev("resumed")),
        ("suspended", resume(), OP_CITY, Ev("resumed")),
        ("handling", resume(), OP_COUNTY, No(E::StateForbidsAction)),
        ("suspended", resume(), OP_OTHER, No(E::OutOfJurisdiction)),
        ("suspended", resume(), GRID_A, No(E::RoleNotPermitted)),
        ("closed", resume(), OP_COUNTY, No(E::StateForbidsAction)),
        ("registered", void(), OP_COUNTY, Ev("voided")),
        ("handled", void(), OP_CITY, Ev("voided")),
        ("registered", bare(Action::Void), OP_COUNTY, No(E::ReasonRequired)),
        ("registered", void(), OP_TOWNSHIP, No(E::OutOfJurisdiction)),
        ("registered", void(), ADMIN, No(E::RoleNotPermitted)),
        ("registered", void(), SYSTEM, No(E::RoleNotPermitted)),
        ("closed", void(), OP_COUNTY, No(E::StateForbidsAction)),
    ]
}

/// One command of every action with an actor the fixture authorizes for it on a case that went through
/// handling, so that what remains to refuse is the state.
fn one_authorized_per_action() -> Vec<(Command, Actor)> {
    let rows = vec![
        (receive(), CITIZEN),
        (register(), OP_COUNTY),
        (reject(), OP_COUNTY),
        (dispatch(), OP_COUNTY),
        (accept(), ASSIST),
        (report_back(), LEAD_A),
        (verify(true), GRID_B),
        (close(), OP_COUNTY),
        (rate(5), CITIZEN),
        (resolve_on_spot(), GRID_B),
        (return_case(), LEAD_A),
        (request_extension(60), LEAD_A),
        (decide_extension(true), OP_COUNTY),
        (supervise_next_week(), OP_CITY),
        (escalate(), OP_COUNTY),
        (merge(), OP_COUNTY),
        (suspend(), OP_COUNTY),
        (resume(), OP_COUNTY),
        (void(), OP_COUNTY),
        (reopen(), OP_COUNTY),
        (instruct(), LEADER_CITY),
    ];
    let names: BTreeSet<&str> = rows.iter().map(|(c, _)| c.action.name()).collect();
    assert_eq!(names, every_action().iter().map(Action::name).collect());
    rows
}

/// Closed cases only accept rate, reopen and instruct; rejected cases only instruct; merged and voided cases
/// nothing at all; a suspended case only resume, void, instruct and supervise.
fn state_table() -> Vec<Row> {
    let mut rows = Vec::new();
    for (command, actor) in one_authorized_per_action() {
        let name = command.action.name();
        let department = actor.role() == Some(Role::DepartmentHandler);
        let refused = if name == "receive" { E::CaseAlreadyExists } else { E::StateForbidsAction };
        let closed = match name {
            "rate" => Ev("rated"),
            "reopen" => Ev("reopened"),
            "instruct" => Ev("instructed"),
            _ => No(refused),
        };
        let rated = match name {
            "rate" => No(E::AlreadyRated),
            _ => closed,
        };
        // The rejected case never reached a department, which is what a department's command hears first.
        let rejected = match name {
            "instruct" => Ev("instructed"),
            _ if department => No(E::DepartmentNotAssigned),
            _ => No(refused),
        };
        let suspended = match name {
            "resume" => Ev("resumed"),
            "void" => Ev("voided"),
            "instruct" => Ev("instructed"),
            "supervise" => Ev("supervised"),
            "accept" | "report_back" | "return" | "request_extension" | "decide_extension" | "escalate"
            | "merge" | "suspend" => No(E::CaseSuspended),
            _ => No(refused),
        };
        rows.push(("closed", command.clone(), actor, closed));
        rows.push(("rated", command.clone(), actor, rated));
        rows.push(("rejected", command.clone(), actor, rejected));
        rows.push(("merged", command.clone(), actor, No(refused)));
        rows.push(("voided", command.clone(), actor, No(refused)));
        rows.push(("suspended", command, actor, suspended));
    }
    rows
}

fn all_tables() -> Vec<Row> {
    [
        intake_table(),
        register_table(),
        dispatch_table(),
        department_table(),
        verification_table(),
        rating_table(),
        extension_table(),
        supervision_table(),
        center_table(),
        state_table(),
    ]
    .concat()
}

/// One of every action. The match has no wildcard, so adding an action breaks the build here until the tables
/// cover it.
fn every_action() -> Vec<Action> {
    let all = vec![
        Action::Receive(new_case()),
        Action::Register { matter: matter(), priority: None },
        Action::Reject,
        Action::Dispatch { lead: LEAD_DEPT, assisting: vec![], basis: None },
        Action::Accept,
        Action::ReportBack,
        Action::Verify { passed: true },
        Action::Close,
        Action::Rate { score: 5, comment: None },
        Action::ResolveOnSpot { matter: matter() },
        Action::Return,
        Action::RequestExtension { minutes: 60 },
        Action::DecideExtension { approve: true },
        Action::Supervise { due: t0() },
        Action::Escalate,
        Action::Merge { into: MERGE_TARGET },
        Action::Suspend,
        Action::Resume,
        Action::Void,
        Action::Reopen,
        Action::Instruct,
    ];
    for action in &all {
        match action {
            Action::Receive(_)
            | Action::Register { .. }
            | Action::Reject
            | Action::Dispatch { .. }
            | Action::Accept
            | Action::ReportBack
            | Action::Verify { .. }
            | Action::Close
            | Action::Rate { .. }
            | Action::ResolveOnSpot { .. }
            | Action::Return
            | Action::RequestExtension { .. }
            | Action::DecideExtension { .. }
            | Action::Supervise { .. }
            | Action::Escalate
            | Action::Merge { .. }
            | Action::Suspend
            | Action::Resume
            | Action::Void
            | Action::Reopen
            | Action::Instruct => {}
        }
    }
    all
}

#[test]
fn intake() {
    run(intake_table());
}

#[test]
fn registration_rejection_and_resolution_on_the_spot() {
    run(register_table());
}

#[test]
fn dispatching() {
    run(dispatch_table());
}

#[test]
fn departments_accept_report_back_and_return() {
    run(department_table());
}

#[test]
fn verification_and_closing() {
    run(verification_table());
}

#[test]
fn rating_and_reopening() {
    run(rating_table());
}

#[test]
fn extensions() {
    run(extension_table());
}

#[test]
fn supervision_and_instructions() {
    run(supervision_table());
}

#[test]
fn escalation_merging_suspension_and_voiding() {
    run(center_table());
}

#[test]
fn ended_and_suspended_cases_refuse_what_their_state_forbids() {
    run(state_table());
}

#[test]
fn the_tables_allow_and_refuse_every_action_and_reach_every_refusal() {
    let rows = all_tables();
    let allowed: BTreeSet<&str> =
        rows.iter().filter(|r| matches!(r.3, Ev(_))).map(|r| r.1.action.name()).collect();
    let refused: BTreeSet<&str> =
        rows.iter().filter(|r| matches!(r.3, No(_))).map(|r| r.1.action.name()).collect();
    for action in every_action() {
        assert!(allowed.contains(action.name()), "no row allows {}", action.name());
        assert!(refused.contains(action.name()), "no row refuses {}", action.name());
    }
    for state in STATE_NAMES {
        assert!(rows.iter().any(|r| r.0 == *state), "no row starts from {state}");
    }
    let kinds: Vec<E> =
        rows.iter().filter_map(|r| if let No(kind) = r.3 { Some(kind) } else { None }).collect();
    // Tested on their own below: a calendar without working time, and events applied out of order. The domain
    // cannot see other cases, so whether a merge target is valid is for the store to judge. Routing, not
    // `decide`, finds that no department holds a matter (tested in `routing.rs`). Deadline alarms and
    // escalation rules are the deadline engine's, tested in `deadlines.rs`. Which departments lie over a
    // case's place needs the department list, which the API holds (`may_dispatch_to`, tested over HTTP).
    let elsewhere = [
        E::NoWorkingTime,
        E::EventOutOfOrder,
        E::MergeTargetInvalid,
        E::DepartmentOutsideCase,
        E::NoResponsibleDepartment,
        E::AlarmNotDue,
        E::EscalationRuleInvalid,
        E::CalendarInvalid,
    ];
    for kind in E::ALL {
        assert!(kinds.contains(kind) || elsewhere.contains(kind), "no row expects {}", kind.code());
    }
}

// ---------------------------------------------------------------------------------------------------------
// The fixture itself
// ---------------------------------------------------------------------------------------------------------

#[test]
fn the_fixture_world_is_consistent() {
    let tree = jurisdictions();
    for pair in PATH.windows(2) {
        let child = tree.iter().find(|j| j.id == pair[1]).unwrap();
        assert_eq!(child.parent, Some(pair[0]), "{} hangs under its predecessor", child.name);
    }
    let levels: Vec<_> = PATH.iter().map(|id| tree.iter().find(|j| j.id == *id).unwrap().level).collect();
    assert!(levels.windows(2).all(|l| l[0] < l[1]), "levels go down the chain: {levels:?}");
    assert!(tree.iter().any(|j| j.id == OTHER_COUNTY && j.parent == Some(CITY)));
    for user in users() {
        assert!(user.scope_fits_role(), "{} has a scope that fits their role", user.username);
    }
    let roles: BTreeSet<&str> = users().iter().map(|u| u.role.as_str()).collect();
    assert_eq!(roles.len(), Role::ALL.len(), "a user for every role");
    for department in departments() {
        assert!(matter().responsibilities.iter().all(|r| r.level == shiyu_domain::Level::County));
        assert_eq!(department.jurisdiction, COUNTY);
    }
    for name in STATE_NAMES {
        let story = story(name);
        assert_eq!(story.state.as_ref().map_or(0, |s| s.version), story.events.len() as u64, "{name}");
        if let Some(state) = &story.state {
            state.check_invariants().unwrap();
            assert_eq!(shiyu_domain::replay(&story.events).unwrap().as_ref(), Some(state), "{name}");
        }
    }
    let expected = [
        ("received", Status::Received),
        ("registered", Status::Registered),
        ("dispatched", Status::Dispatched),
        ("handling", Status::Handling),
        ("handled", Status::Handled),
        ("verified", Status::Verified),
        ("closed", Status::Closed),
        ("rated", Status::Closed),
        ("rejected", Status::Rejected),
        ("merged", Status::Merged),
        ("voided", Status::Voided),
        ("suspended", Status::Handling),
        ("extension_pending", Status::Handling),
        ("on_spot", Status::Handled),
        ("escalated", Status::Registered),
    ];
    for (name, status) in expected {
        assert_eq!(story(name).state().status, status, "{name}");
    }
    assert_eq!(received().state().owner, OWNER);
}

// ---------------------------------------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------------------------------------

fn kinds(story: &Story) -> Vec<&'static str> {
    story.events.iter().map(|e| e.change.kind()).collect()
}

#[test]
fn the_whole_loop_keeps_everything_on_the_record() {
    let story = rated();
    assert_eq!(
        kinds(&story),
        ["received", "registered", "dispatched", "accepted", "reported_back", "verified", "closed", "rated"]
    );
    let case = story.state();
    assert_eq!(case.version, 8);
    assert_eq!(case.matter.as_ref().unwrap().code, "street_vending");
    assert_eq!(case.lead, Some(LEAD_DEPT));
    assert_eq!(case.assisting, [ASSIST_DEPT]);
    assert_eq!(case.involved, [LEAD_DEPT, ASSIST_DEPT]);
    assert_eq!(case.handlers, [user_id(LEAD_A)]);
    assert_eq!(case.received_at, t0());
    assert_eq!(case.ended_at, Some(t0().plus_minutes(6 * STEP_MINUTES)));
    assert_eq!(case.updated_at, t0().plus_minutes(7 * STEP_MINUTES));
    assert_eq!(case.rating.as_ref().map(|r| r.score), Some(5));
    assert_eq!(case.counts, Default::default());
    assert_eq!(case.light(story.now), Light::Off);
    assert!(story.events.iter().all(|e| e.at >= t0()));
    assert_eq!(story.events[4].note.as_deref(), Some(NOTE));
    assert_eq!(story.events[4].actor, LEAD_A);
}

#[test]
fn failed_verification_sends_the_work_back_for_rework() {
    let mut story = handled();
    story.try_step(&verify(false), GRID_B).unwrap();
    let case = story.state();
    assert_eq!(case.status, Status::Handling);
    assert_eq!(case.counts.reworks, 1);
    assert_eq!(case.deadline.unwrap().stage, Stage::Handle);
    assert_eq!(case.deadline.unwrap().started, story.now);
    assert_eq!(case.lead, Some(LEAD_DEPT));
    // The department reports again; the grid worker who failed it may pass it now, no handler of either round.
    let story = story.step(report_back(), LEAD_B);
    assert_eq!(story.state().handlers, [user_id(LEAD_A), user_id(LEAD_B)]);
    for handler in [LEAD_A, LEAD_B] {
        let refused = story.clone().try_step(&verify(true), as_operator(handler)).unwrap_err();
        assert_eq!(refused.kind, E::VerifierIsHandler);
    }
    let mut story = story.step(verify(true), GRID_B);
    assert_eq!(story.state().status, Status::Verified);
    assert_eq!(story.state().counts.reworks, 1);
    story.try_step(&close(), OP_COUNTY).unwrap();
    assert_eq!(story.state().status, Status::Closed);
}

#[test]
fn work_failed_on_the_spot_goes_back_to_the_center_for_dispatch() {
    let story = on_spot();
    let case = story.state();
    assert!(case.resolved_on_spot);
    assert_eq!(case.handlers, [user_id(GRID_A)]);
    assert_eq!(case.deadline.unwrap().stage, Stage::Verify);
    let story = story.step(verify(false), OP_COUNTY);
    let case = story.state();
    assert_eq!(case.status, Status::Registered);
    assert_eq!(case.counts.reworks, 1);
    assert!(!case.resolved_on_spot);
    assert!(case.handlers.is_empty());
    assert_eq!(case.deadline.unwrap().stage, Stage::Dispatch);
    // A department takes it over; the grid worker's own work is no longer what is verified.
    let story = story.step(dispatch(), OP_COUNTY).step(accept(), LEAD_A).step(report_back(), LEAD_A);
    let story = story.step(verify(true), GRID_A);
    assert_eq!(story.state().status, Status::Verified);
}

#[test]
fn a_returned_case_waits_for_dispatch_again() {
    let mut story = handling().step(accept(), ASSIST).step(request_extension(60), LEAD_A);
    story.try_step(&return_case(), LEAD_B).unwrap();
    let Change::Returned { department, .. } = &story.events.last().unwrap().change else { panic!() };
    assert_eq!(*department, LEAD_DEPT);
    let case = story.state();
    assert_eq!(case.status, Status::Registered);
    assert_eq!(case.counts.returns, 1);
    assert_eq!((case.lead, case.assisting.len(), case.accepted.len()), (None, 0, 0));
    assert!(case.handlers.is_empty() && case.pending_extension.is_none());
    assert_eq!(case.deadline.unwrap().stage, Stage::Dispatch);
    assert_eq!(case.involved, [LEAD_DEPT, ASSIST_DEPT], "returned departments still see the case");
    // The first department may no longer act on it; the one it is re-dispatched to may.
    assert_eq!(story.clone().try_step(&accept(), LEAD_A).unwrap_err().kind, E::DepartmentNotAssigned);
    let story = story.step(dispatch_to(UNRELATED_DEPT, &[]), OP_COUNTY);
    assert_eq!(story.state().involved, [LEAD_DEPT, ASSIST_DEPT, UNRELATED_DEPT]);
    assert_eq!(story.clone().try_step(&accept(), LEAD_A).unwrap_err().kind, E::DepartmentNotAssigned);
    let story = story.step(accept(), UNRELATED);
    assert_eq!(story.state().status, Status::Handling);
    assert_eq!(story.state().lead, Some(UNRELATED_DEPT));
}

#[test]
fn an_approved_extension_moves_the_deadline_later_and_a_denied_one_leaves_it() {
    let pending = extension_pending();
    let before = pending.state().deadline.unwrap();
    let request = pending.state().pending_extension.unwrap();
    assert_eq!((request.department, request.minutes), (LEAD_DEPT, 600));
    assert_eq!(before.basis, Basis::Working);

    let approved = pending.clone().step(decide_extension(true), OP_COUNTY);
    let after = approved.state().deadline.unwrap();
    let calendar = &approved.rules.calendar;
    assert_eq!(Some(after.due), calendar.add_minutes(before.due, 600, Basis::Working));
    assert_eq!(Some(after.yellow_at), calendar.add_minutes(before.yellow_at, 600, Basis::Working));
    assert!(after.due > before.due);
    assert_eq!(calendar.minutes_between(before.due, after.due, Basis::Working), 600);
    assert_eq!((after.stage, after.started), (Stage::Handle, before.started));
    assert_eq!(approved.state().counts.extensions, 1);
    assert_eq!(approved.state().pending_extension, None);

    let denied = pending.step(decide_extension(false), OP_COUNTY);
    assert_eq!(denied.state().deadline, Some(before));
    assert_eq!(denied.state().counts.extensions, 0);
    assert_eq!(denied.state().pending_extension, None);
    // Once decided, the department may ask again.
    let again = denied.step(request_extension(120), LEAD_A);
    assert_eq!(again.state().pending_extension.map(|r| r.minutes), Some(120));
}

#[test]
fn reporting_back_settles_a_pending_extension() {
    let story = extension_pending().step(report_back(), LEAD_A);
    assert_eq!(story.state().status, Status::Handled);
    assert_eq!(story.state().pending_extension, None);
    story.state().check_invariants().unwrap();
    assert_eq!(story.state().counts.extensions, 0);
}

#[test]
fn suspension_stops_the_clock_and_resumption_keeps_the_time_left() {
    // Natural hours: the deadline moves by exactly the suspended span.
    let mut story =
        registered_as_gas_leak().step(dispatch_to(LEAD_DEPT, &[]), OP_COUNTY).step(accept(), LEAD_A);
    let running = story.state().deadline.unwrap();
    assert_eq!((running.stage, running.basis), (Stage::Handle, Basis::Natural));
    assert_eq!(running.due, running.started.plus_minutes(240));
    story.advance(30);
    story.try_now(&suspend(), OP_COUNTY).unwrap();
    let suspension = story.state().suspension.unwrap();
    assert_eq!((suspension.remaining_minutes, suspension.stage), (210, Stage::Handle));
    assert_eq!(story.state().deadline, None);
    assert_eq!(story.state().light(story.now.plus_minutes(100_000)), Light::Paused);
    let span = 3 * 24 * 60 + 17; // over a weekend: natural hours do not care
    story.advance(span);
    story.try_now(&resume(), OP_COUNTY).unwrap();
    let resumed = story.state().deadline.unwrap();
    assert_eq!(resumed.due, running.due.plus_minutes(span));
    assert_eq!(resumed.yellow_at, running.yellow_at.plus_minutes(span));
    assert_eq!((resumed.stage, resumed.started), (Stage::Handle, story.now));
    assert_eq!(story.state().suspension, None);
    assert_eq!(story.state().light(story.now), Light::Green);

    // Working hours: what is kept is the working time left, counted on from the resumption.
    let mut story = handling();
    let running = story.state().deadline.unwrap();
    story.advance(60);
    story.try_now(&suspend(), OP_COUNTY).unwrap();
    let left = story.state().suspension.unwrap().remaining_minutes;
    let calendar = story.rules.calendar.clone();
    assert_eq!(left, calendar.minutes_between(story.now, running.due, Basis::Working));
    story.advance(5 * 24 * 60);
    story.try_now(&resume(), OP_COUNTY).unwrap();
    let resumed = story.state().deadline.unwrap();
    assert_eq!(calendar.minutes_between(story.now, resumed.due, Basis::Working), left);
    assert!(resumed.due > running.due);
}

#[test]
fn a_case_suspended_when_already_late_resumes_as_late_as_it_was() {
    for (story, basis) in [
        (
            registered_as_gas_leak().step(dispatch_to(LEAD_DEPT, &[]), OP_COUNTY).step(accept(), LEAD_A),
            Basis::Natural,
        ),
        (handling(), Basis::Working),
    ] {
        let mut story = story;
        let running = story.state().deadline.unwrap();
        assert_eq!(running.basis, basis);
        let calendar = story.rules.calendar.clone();
        // Fourteen hours of the basis past the due (two working days, or fourteen clock hours), with the
        // 临期 and 超期 warnings announced.
        story.now = calendar.shift_minutes(running.due, 2 * 7 * 60, basis).unwrap();
        fire_due_warnings(&mut story);
        assert_eq!(story.state().signalled, Signal::Red);
        let late = calendar.minutes_between(running.due, story.now, basis);
        story.try_now(&suspend(), OP_COUNTY).unwrap();
        assert_eq!(story.state().suspension.unwrap().remaining_minutes, -late, "{basis:?}");
        story.advance(3 * 24 * 60);
        story.try_now(&resume(), OP_COUNTY).unwrap();
        let resumed = story.state().deadline.unwrap();
        assert_eq!(calendar.minutes_between(resumed.due, story.now, basis), late, "{basis:?}");
        assert_eq!(story.state().light(story.now), Light::Red, "{basis:?}");
        story.state().check_invariants().unwrap();
        // Not announced as 临期 again; 超期 once more, which plans its escalation again.
        let next = next_alarm(story.state()).unwrap();
        assert_eq!((next.kind, next.at), (AlarmKind::Red, resumed.due), "{basis:?}");
        // A new calendar keeps the lateness too (recounted from the resumption, it would be due at once).
        let before = story.rules.calendar.clone();
        story.rules.calendar = before.clone().with_year(2026, &YearDays::default()).unwrap();
        if let Some(event) = reschedule(story.state(), &before, &story.rules, story.now, "日历调整") {
            let Change::Rescheduled { deadline } = event.change else { panic!("{event:?}") };
            assert!(deadline.due < story.now, "{basis:?}: {deadline:?}");
        }
    }
}

/// Fires the stage's 临期 and 超期 alarms that are due now, as the deadline engine would.
fn fire_due_warnings(story: &mut Story) {
    while let Some(alarm) = next_alarm(story.state()).filter(|a| a.at <= story.now) {
        if !matches!(alarm.kind, AlarmKind::Yellow | AlarmKind::Red) {
            break;
        }
        for event in fire(story.state(), alarm, story.now, &story.rules).unwrap() {
            story.state = Some(apply(story.state.take(), &event).unwrap());
            story.events.push(event);
        }
    }
}

fn registered_as_gas_leak() -> Story {
    received().step(register_as(gas_leak()), OP_COUNTY)
}

#[test]
fn escalation_hands_the_case_to_the_parent_center_and_clears_the_dispatch() {
    let story = handling().step(accept(), ASSIST).step(escalate(), OP_COUNTY);
    let Change::Escalated { from, to, .. } = &story.events.last().unwrap().change else { panic!() };
    assert_eq!((*from, *to), (COUNTY, CITY));
    let case = story.state();
    assert_eq!(case.owner, CITY);
    assert_eq!(case.status, Status::Registered);
    assert_eq!((case.lead, case.assisting.len(), case.accepted.len()), (None, 0, 0));
    assert!(case.handlers.is_empty());
    assert_eq!(case.counts.escalations, 1);
    assert_eq!(case.deadline.unwrap().stage, Stage::Dispatch);
    assert!(can_view(case, &OP_COUNTY), "the county still sees what it escalated");

    // Escalated before registration, the case still waits to be registered, now by the city.
    let mut story = received().step(escalate(), OP_COUNTY);
    assert_eq!((story.state().status, story.state().owner), (Status::Received, CITY));
    assert_eq!(story.state().deadline.unwrap().stage, Stage::Register);
    assert_eq!(story.clone().try_step(&register(), OP_COUNTY).unwrap_err().kind, E::OutOfJurisdiction);
    story.try_step(&register(), OP_CITY).unwrap();
    assert_eq!(story.clone().try_step(&escalate(), OP_CITY).unwrap_err().kind, E::NoLevelAbove);
}

#[test]
fn a_bad_rating_can_be_reopened_and_rated_again_after_closing_again() {
    let mut story = closed().step(rate(1), CITIZEN);
    assert_eq!(story.clone().try_step(&rate(5), CITIZEN).unwrap_err().kind, E::AlreadyRated);
    story.try_step(&reopen(), OP_COUNTY).unwrap();
    let case = story.state();
    assert_eq!(case.status, Status::Registered);
    assert_eq!(case.rating, None);
    assert_eq!(case.ended_at, None);
    assert_eq!(case.counts.reopenings, 1);
    assert_eq!(case.lead, None);
    assert_eq!(case.deadline.unwrap().stage, Stage::Dispatch);
    let story = story
        .step(dispatch(), OP_COUNTY)
        .step(accept(), LEAD_B)
        .step(report_back(), LEAD_B)
        .step(verify(true), GRID_B)
        .step(close(), OP_COUNTY)
        .step(rate(5), CITIZEN);
    let rating = story.state().rating.clone().unwrap();
    assert_eq!((rating.score, rating.at), (5, story.now));
    assert_eq!(story.state().ended_at, Some(story.now.plus_minutes(-STEP_MINUTES)));
    assert_eq!(kinds(&story).iter().filter(|k| **k == "rated").count(), 2);
}

#[test]
fn an_anonymous_reporter_rates_through_the_tracking_code() {
    let anonymous = new_case_with(|n| n.reporter = Reporter { anonymous: true, ..Reporter::default() });
    let mut story = Story::empty();
    story.try_now(&anonymous, CITIZEN).unwrap();
    let story = story
        .step(register(), OP_COUNTY)
        .step(dispatch(), OP_COUNTY)
        .step(accept(), LEAD_A)
        .step(report_back(), LEAD_A)
        .step(verify(true), GRID_A)
        .step(close(), OP_COUNTY);
    assert_eq!(story.clone().try_step(&rate(4), CITIZEN).unwrap_err().kind, E::NotReporter);
    let story = story.step(rate(4), REPORTER);
    assert_eq!(story.state().rating.as_ref().map(|r| r.score), Some(4));
    assert_eq!(story.events.last().unwrap().actor, Actor::Reporter);
}

#[test]
fn the_hotline_records_the_rating_when_it_calls_back() {
    let story =
        closed().step(Command::new(Action::Rate { score: 2, comment: Some("回访：不满意".into()) }), HOTLINE);
    let rating = story.state().rating.clone().unwrap();
    assert_eq!((rating.score, rating.comment.as_deref()), (2, Some("回访：不满意")));
    assert_eq!(story.events.last().unwrap().actor, HOTLINE);
    assert_eq!(story.state().status, Status::Closed);
}

#[test]
fn a_leader_instructs_on_a_closed_case_without_reopening_it() {
    let closed = closed();
    let ended = closed.state().ended_at;
    let story = closed.step(instruct(), LEADER_CITY).step(instruct(), LEADER_COUNTY);
    assert_eq!(story.state().status, Status::Closed);
    assert_eq!(story.state().counts.instructions, 2);
    assert_eq!(story.state().ended_at, ended);
    assert_eq!(story.events.last().unwrap().note.as_deref(), Some(NOTE));
    // Instructing does not stand in for the reporter's rating.
    let story = story.step(rate(5), CITIZEN);
    assert_eq!(story.state().rating.as_ref().map(|r| r.score), Some(5));
}

#[test]
fn a_merged_duplicate_ends_and_names_its_target() {
    let story = merged();
    let case = story.state();
    assert_eq!(case.status, Status::Merged);
    assert_eq!(case.merged_into, Some(MERGE_TARGET));
    assert_eq!(case.ended_at, Some(story.now));
    assert_eq!((case.deadline, case.light(story.now)), (None, Light::Off));
    for (command, actor) in [(instruct(), LEADER_CITY), (void(), OP_COUNTY), (reopen(), OP_COUNTY)] {
        assert_eq!(story.clone().try_step(&command, actor).unwrap_err().kind, E::StateForbidsAction);
    }
}

#[test]
fn supervision_is_recorded_with_its_own_deadline() {
    let mut story = handling();
    let due = story.now.plus_minutes(STEP_MINUTES);
    // Due exactly now is not in the future.
    assert_eq!(story.clone().try_step(&supervise(due), OP_CITY).unwrap_err().kind, E::DeadlineNotInFuture);
    story.try_step(&supervise(due.plus_minutes(1)), OP_CITY).unwrap();
    let story = story.step(supervise(due.plus_minutes(60)), SYSTEM);
    let case = story.state();
    assert_eq!(case.counts.supervisions, 2);
    assert_eq!(case.supervisions[0].by, OP_CITY);
    assert_eq!(case.supervisions[0].due, due.plus_minutes(1));
    assert_eq!(case.supervisions[1].by, Actor::System);
    assert_eq!(case.status, Status::Handling);
}

#[test]
fn the_deadline_light_turns_yellow_then_red_and_pauses_while_suspended() {
    let story = received();
    let case = story.state();
    // Two working hours to register from 09:00, yellow when a fifth is left.
    let deadline = case.deadline.unwrap();
    assert_eq!(deadline.due, t0().plus_minutes(120));
    assert_eq!(deadline.yellow_at, t0().plus_minutes(96));
    let table =
        [(0, Light::Green), (95, Light::Green), (96, Light::Yellow), (119, Light::Yellow), (120, Light::Red)];
    for (minutes, light) in table {
        assert_eq!(case.light(t0().plus_minutes(minutes)), light, "{minutes} minutes in");
    }
    // Working hours: a stage started on Friday afternoon stays green over the weekend.
    let friday = t0().plus_minutes(4 * 24 * 60 + 7 * 60); // Friday 16:00
    let mut late = Story::empty();
    late.now = friday;
    late.try_now(&receive(), CITIZEN).unwrap();
    let light_at = |minutes: i64| late.state().light(friday.plus_minutes(minutes));
    // 90 minutes on Friday, the other 30 on Monday morning; yellow with 24 minutes left.
    let monday = 3 * 24 * 60 - 7 * 60;
    assert_eq!(light_at(24 * 60), Light::Green, "Saturday");
    assert_eq!(light_at(monday + 5), Light::Green, "Monday 09:05");
    assert_eq!(light_at(monday + 6), Light::Yellow, "Monday 09:06");
    assert_eq!(light_at(monday + 29), Light::Yellow, "Monday 09:29");
    assert_eq!(light_at(monday + 30), Light::Red, "Monday 09:30");

    let suspended = suspended();
    assert_eq!(suspended.state().light(suspended.now), Light::Paused);
    assert_eq!(suspended.state().light(suspended.now.plus_minutes(1_000_000)), Light::Paused);
    let story = suspended.step(resume(), OP_COUNTY);
    assert_eq!(story.state().light(story.now), Light::Green);
    assert_eq!(closed().state().light(t0()), Light::Off);
    assert_eq!(rejected().state().light(t0()), Light::Off);
}

#[test]
fn who_may_view_a_case() {
    let handling = handling();
    let handling = handling.state();
    let received = received();
    let received = received.state();
    let table: [(Actor, bool, bool); 20] = [
        // actor, sees the dispatched case, sees the case before dispatch
        (OP_CITY, true, true),
        (OP_COUNTY, true, true),
        (OP_TOWNSHIP, true, true),
        (OP_OTHER, false, false),
        (GRID_A, true, true),
        (GRID_B, true, true),
        (CITIZEN, true, true),
        (CITIZEN_OTHER, false, false),
        (LEAD_A, true, false),
        (LEAD_B, true, false),
        (ASSIST, true, false),
        (UNRELATED, false, false),
        (LEADER_CITY, true, true),
        (LEADER_COUNTY, true, true),
        (LEADER_OTHER, false, false),
        (HOTLINE, true, true),
        (MEDIATOR, true, true),
        (ADMIN, false, false),
        (REPORTER, true, true),
        (SYSTEM, true, true),
    ];
    assert_eq!(table.len(), ACTORS.len());
    for (actor, dispatched, before) in table {
        assert_eq!(can_view(handling, &actor), dispatched, "{} on the dispatched case", actor_name(&actor));
        assert_eq!(can_view(received, &actor), before, "{} before dispatch", actor_name(&actor));
    }
    // A department that returned the case keeps reading it; one it was never sent to does not.
    let returned = dispatched().step(return_case(), LEAD_A);
    assert!(can_view(returned.state(), &LEAD_A));
    assert!(!can_view(returned.state(), &UNRELATED));
    // A citizen account that did not report sees nothing of an anonymous report.
    let mut anonymous = Story::empty();
    let report = new_case_with(|n| n.reporter = Reporter { anonymous: true, ..Reporter::default() });
    anonymous.try_now(&report, CITIZEN).unwrap();
    assert!(!can_view(anonymous.state(), &CITIZEN));
    assert!(can_view(anonymous.state(), &REPORTER));
}

#[test]
fn a_calendar_without_working_time_gives_no_deadline() {
    // Every day a holiday for more than the ten years the calendar searches.
    let mut calendar = WorkCalendar::default();
    let mut text = String::new();
    for year in 2026..2038 {
        for month in 1..=12 {
            let first = shiyu_domain::Date::from_ymd(year, month, 1).unwrap();
            let last = (28..=31).rev().find_map(|d| shiyu_domain::Date::from_ymd(year, month, d)).unwrap();
            text.push_str(&format!("holiday {first} {last} 无工作日\n"));
        }
    }
    calendar.load(&text).unwrap();
    let rules = Rules { calendar, ..Rules::default() };
    let refused = decide(None, &receive(), &CITIZEN, t0(), &rules).unwrap_err();
    assert_eq!(refused.kind, E::NoWorkingTime);
    // Natural hours need no working time.
    let gas = new_case_with(|n| n.matter = Some(gas_leak()));
    let events = decide(None, &gas, &CITIZEN, t0(), &rules).unwrap();
    assert_eq!(events[0].change.kind(), "received");
}

#[test]
fn events_out_of_order_are_refused_by_apply() {
    let story = registered();
    let registered_event: &Event = &story.events[1];
    let error = apply(None, registered_event).unwrap_err();
    assert_eq!(error.kind, E::EventOutOfOrder);
    let received_event = &story.events[0];
    let error = apply(story.state.clone(), received_event).unwrap_err();
    assert_eq!(error.kind, E::EventOutOfOrder);
}

#[test]
fn a_case_classified_at_intake_takes_its_matters_limits_and_priority() {
    let gas = new_case_with(|n| n.matter = Some(gas_leak()));
    let mut story = Story::empty();
    story.try_now(&gas, HOTLINE).unwrap();
    let case = story.state();
    assert_eq!(case.priority, shiyu_domain::Priority::Urgent);
    assert_eq!(case.matter.as_ref().unwrap().code, "gas_leak");
    let deadline = case.deadline.unwrap();
    assert_eq!((deadline.stage, deadline.basis), (Stage::Register, Basis::Natural));
    assert_eq!(deadline.due, t0().plus_minutes(60));
}

/// A department's notices say what the case is and by when; an urgent case's dispatch is urgent (by SMS); a
/// supervision or an instruction reaches every department still on the case, not only the lead.
#[test]
fn notices_say_what_and_by_when_and_reach_every_department_on_the_case() {
    use shiyu_domain::sla::{notices, Audience};
    let urgent = received().step(register_as(gas_leak()), OP_COUNTY).step(dispatch(), OP_COUNTY);
    let last = urgent.events.last().unwrap();
    let told = notices(last, urgent.state(), 7);
    assert_eq!(told.len(), 2, "{told:?}");
    let due = urgent.state().deadline.unwrap().due;
    for notice in &told {
        assert!(notice.urgent, "a gas leak cannot wait for someone to open the app: {notice:?}");
        assert!(notice.title.contains("八仙城菜场门口有人占道经营"), "{}", notice.title);
        assert!(notice.title.ends_with(&format!("请于 {due} 前签收")), "{}", notice.title);
    }
    let ordinary = dispatched();
    assert!(notices(ordinary.events.last().unwrap(), ordinary.state(), 7).iter().all(|n| !n.urgent));

    for (story, kind) in [
        (handling().step(supervise_next_week(), OP_CITY), "supervised"),
        (handling().step(instruct(), LEADER_COUNTY), "instructed"),
    ] {
        let event = story.events.last().unwrap();
        let departments: Vec<_> = notices(event, story.state(), 7)
            .into_iter()
            .filter_map(|n| match n.audience {
                Audience::Department(d) => Some(d),
                Audience::Center(..) => None,
            })
            .collect();
        assert_eq!(departments, [LEAD_DEPT, ASSIST_DEPT], "{kind}");
    }
}

/// A notice's title leaves the platform (SMS, webhooks): numbers a caller put in their words are masked.
#[test]
fn a_notice_title_masks_the_numbers_in_a_report() {
    use shiyu_domain::sla::notices;
    let said =
        NewCase { description: "我电话13812345678，3号楼楼道堆满杂物".into(), ..new_case() };
    let mut story = Story::empty();
    story.try_now(&receive_case(said), HOTLINE).unwrap();
    let story = story.step(register(), OP_COUNTY).step(dispatch(), OP_COUNTY);
    let told = notices(story.events.last().unwrap(), story.state(), 7);
    assert!(told[0].title.contains("我电话***********，3号楼楼道堆满杂物"), "{}", told[0].title);
}
