//! Commands and `decide`: whether a command may happen to a case now, and which events it produces.

use crate::calendar::{Basis, TimeLimit, WorkCalendar};
use crate::case::{
    Actor, AttachmentRef, CaseId, CaseState, Change, Channel, Deadline, Event, GeoPoint, MatterRef, Reporter,
    Status, Suspension,
};
use crate::error::{DomainError, ErrorKind};
use crate::org::{DepartmentId, JurisdictionId, Matter, Priority, Stage, StageLimits};
use crate::permissions::authorize;
use crate::time::Timestamp;

pub const MAX_DESCRIPTION_CHARS: usize = 4000;
pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_SHORT_TEXT_CHARS: usize = 500;
pub const MAX_ATTACHMENTS: usize = 20;
pub const MAX_ASSISTING: usize = 10;
/// The longest extension one request may ask for: 30 days.
pub const MAX_EXTENSION_MINUTES: u32 = 30 * 24 * 60;
/// The furthest a supervision (督办) order may set its due date: a supervised case is urgent by definition.
pub const MAX_SUPERVISION_DAYS: i64 = 90;

/// What someone asks to happen to a case, with their reason and evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub action: Action,
    pub note: Option<String>,
    pub attachments: Vec<AttachmentRef>,
    /// Where the command came from, recorded with its events.
    pub origin: Option<String>,
    /// 答复: what the reporter is told when their case ends (see [`Action::takes_reply`]). The note stays
    /// inside; this is public.
    pub reply: Option<String>,
}

impl Command {
    pub fn new(action: Action) -> Command {
        Command { action, note: None, attachments: Vec::new(), origin: None, reply: None }
    }

    pub fn with_note(action: Action, note: impl Into<String>) -> Command {
        Command { note: Some(note.into()), ..Command::new(action) }
    }

    /// The reply as it is kept: without the blanks around it, and none when only blanks were sent.
    pub fn reply_text(&self) -> Option<&str> {
        self.reply.as_deref().map(str::trim).filter(|reply| !reply.is_empty())
    }
}

/// A new report, as the intake knows it. The chain of jurisdictions and the owning command center come from
/// routing, outside the domain.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCase {
    pub channel: Channel,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    pub path: Vec<JurisdictionId>,
    pub owner: JurisdictionId,
    pub reporter: Reporter,
    /// The reporter's or agent's classification, if any; the operator confirms it when registering.
    pub matter: Option<Matter>,
    pub priority: Option<Priority>,
}

/// Every action of the closed loop.
// A command is built, decided and dropped; the new report's size does not matter enough to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// 受理: a report enters the platform.
    Receive(NewCase),
    /// 立案, confirming or correcting the matter.
    Register { matter: Matter, priority: Option<Priority> },
    /// 不予立案
    Reject,
    /// 派遣 to one lead department and any assisting ones (联办), with the basis (派遣依据).
    Dispatch { lead: DepartmentId, assisting: Vec<DepartmentId>, basis: Option<String> },
    /// 签收 / 部门报到
    Accept,
    /// 处置反馈 with evidence.
    ReportBack,
    /// 核查: passed, or failed and sent back (返工).
    Verify { passed: bool },
    /// 结案
    Close,
    /// 评价
    Rate { score: u8, comment: Option<String> },
    /// 就地解决 by a grid worker, still verified by someone else.
    ResolveOnSpot { matter: Matter },
    /// 退回 a wrongly dispatched case.
    Return,
    /// 延期申请
    RequestExtension { minutes: u32 },
    /// 延期审批
    DecideExtension { approve: bool },
    /// 督办 from an upper level, with its own deadline.
    Supervise { due: Timestamp },
    /// 上报 to the command center one level up.
    Escalate,
    /// 合并 into another case as its duplicate.
    Merge { into: CaseId },
    /// 挂起: the clock stops.
    Suspend,
    /// 恢复
    Resume,
    /// 作废
    Void,
    /// 重新打开
    Reopen,
    /// 领导批示
    Instruct,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Receive(_) => "receive",
            Action::Register { .. } => "register",
            Action::Reject => "reject",
            Action::Dispatch { .. } => "dispatch",
            Action::Accept => "accept",
            Action::ReportBack => "report_back",
            Action::Verify { .. } => "verify",
            Action::Close => "close",
            Action::Rate { .. } => "rate",
            Action::ResolveOnSpot { .. } => "resolve_on_spot",
            Action::Return => "return",
            Action::RequestExtension { .. } => "request_extension",
            Action::DecideExtension { .. } => "decide_extension",
            Action::Supervise { .. } => "supervise",
            Action::Escalate => "escalate",
            Action::Merge { .. } => "merge",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Void => "void",
            Action::Reopen => "reopen",
            Action::Instruct => "instruct",
        }
    }

    pub fn label_zh(&self) -> &'static str {
        match self {
            Action::Receive(_) => "受理",
            Action::Register { .. } => "立案",
            Action::Reject => "不予立案",
            Action::Dispatch { .. } => "派遣",
            Action::Accept => "签收",
            Action::ReportBack => "处置反馈",
            Action::Verify { .. } => "核查",
            Action::Close => "结案",
            Action::Rate { .. } => "评价",
            Action::ResolveOnSpot { .. } => "就地解决",
            Action::Return => "退回",
            Action::RequestExtension { .. } => "延期申请",
            Action::DecideExtension { .. } => "延期审批",
            Action::Supervise { .. } => "督办",
            Action::Escalate => "上报",
            Action::Merge { .. } => "合并",
            Action::Suspend => "挂起",
            Action::Resume => "恢复",
            Action::Void => "作废",
            Action::Reopen => "重新打开",
            Action::Instruct => "领导批示",
        }
    }

    /// Actions that end a case for its reporter, and so may carry a public answer to them.
    pub fn takes_reply(&self) -> bool {
        matches!(self, Action::Reject | Action::Close | Action::Void)
    }

    /// Actions that must say why (or, for reports and instructions, what).
    fn needs_note(&self) -> bool {
        matches!(
            self,
            Action::Reject
                | Action::ReportBack
                | Action::Verify { passed: false }
                | Action::ResolveOnSpot { .. }
                | Action::Return
                | Action::RequestExtension { .. }
                | Action::DecideExtension { approve: false }
                | Action::Supervise { .. }
                | Action::Escalate
                | Action::Suspend
                | Action::Void
                | Action::Reopen
                | Action::Instruct
        )
    }

    /// The states in which the action makes sense.
    fn allowed_in(&self, status: Status) -> bool {
        use Status::*;
        match self {
            Action::Receive(_) => false,
            Action::Register { .. } | Action::Reject | Action::ResolveOnSpot { .. } => status == Received,
            Action::Dispatch { .. } => status == Registered,
            Action::Accept | Action::Return => matches!(status, Dispatched | Handling),
            Action::ReportBack | Action::RequestExtension { .. } | Action::DecideExtension { .. } => {
                status == Handling
            }
            Action::Verify { .. } => status == Handled,
            Action::Close => status == Verified,
            Action::Rate { .. } | Action::Reopen => status == Closed,
            Action::Escalate | Action::Merge { .. } => {
                matches!(status, Received | Registered | Dispatched | Handling)
            }
            Action::Supervise { .. } | Action::Suspend | Action::Resume | Action::Void => status.is_active(),
            Action::Instruct => !matches!(status, Merged | Voided),
        }
    }

    /// What may still happen while the clock is stopped.
    fn allowed_while_suspended(&self) -> bool {
        matches!(self, Action::Resume | Action::Void | Action::Instruct | Action::Supervise { .. })
    }
}

/// The configuration `decide` needs beyond the case: the calendar deadlines run on, the limits of a case whose
/// matter is not yet known, and when a deadline turns yellow.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub calendar: WorkCalendar,
    pub intake_limits: StageLimits,
    /// A stage turns yellow (临期) when this share of its time, in thousandths, is left.
    pub yellow_permille: u32,
    /// What the platform does by itself when a case runs late.
    pub escalation: crate::sla::EscalationRules,
    /// Working minutes the center has to decide an extension request (default one working day).
    pub extension_decision_minutes: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            calendar: WorkCalendar::china(),
            intake_limits: StageLimits::default(),
            yellow_permille: 200,
            escalation: crate::sla::EscalationRules::default(),
            extension_decision_minutes: 7 * 60,
        }
    }
}

impl Rules {
    /// The deadline of a stage that starts at `start` with `limit`.
    pub fn deadline(
        &self,
        stage: Stage,
        start: Timestamp,
        limit: TimeLimit,
    ) -> Result<Deadline, DomainError> {
        let minutes = i64::from(limit.minutes);
        let green = minutes - minutes * i64::from(self.yellow_permille.min(1000)) / 1000;
        self.deadline_in(stage, start, limit.basis, minutes, green)
    }

    fn deadline_in(
        &self,
        stage: Stage,
        start: Timestamp,
        basis: Basis,
        minutes: i64,
        minutes_to_yellow: i64,
    ) -> Result<Deadline, DomainError> {
        let at = |m: i64| self.calendar.shift_minutes(start, m, basis).ok_or(ErrorKind::NoWorkingTime);
        Ok(Deadline { stage, basis, started: start, yellow_at: at(minutes_to_yellow)?, due: at(minutes)? })
    }
}

/// Decides a command against a case's current state (`None` before it exists). Returns the events to append,
/// or why the command is refused. Pure: the clock, ids and configuration come in as parameters.
pub fn decide(
    case: Option<&CaseState>,
    command: &Command,
    actor: &Actor,
    now: Timestamp,
    rules: &Rules,
) -> Result<Vec<Event>, DomainError> {
    let action = &command.action;
    // Permission first: someone who may not act learns nothing more about the case from a second error.
    authorize(case, action, actor)?;
    check_texts(command)?;
    let change = match (case, action) {
        (None, Action::Receive(new)) => receive(new, now, rules)?,
        (Some(_), Action::Receive(_)) => return Err(ErrorKind::CaseAlreadyExists.into()),
        (None, _) => return Err(ErrorKind::CaseNotReceived.into()),
        (Some(case), _) => {
            check_state(case, action)?;
            change_for(case, action, actor, now, rules)?
        }
    };
    Ok(vec![Event {
        at: now,
        actor: *actor,
        note: command.note.clone(),
        attachments: command.attachments.clone(),
        origin: command.origin.clone(),
        reply: command.reply_text().map(str::to_string),
        change,
    }])
}

/// Characters no report needs and that can mislead whoever reads it: control characters other than line
/// breaks and tabs (a NUL, an escape that recolours a terminal) and the marks that reverse the direction of
/// the text after them, which make `exe.txt` show as `txt.exe`.
fn hides_or_controls(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check_texts(command: &Command) -> Result<(), DomainError> {
    let note = command.note.as_deref().map(str::trim).unwrap_or("");
    if command.action.needs_note() && note.is_empty() {
        return Err(DomainError::with_detail(ErrorKind::ReasonRequired, command.action.name()));
    }
    // Each field is named as the API names it and as a user reads it.
    let too_long = |text: &str, max: usize, (field, field_zh): (&str, &str)| {
        if text.chars().count() > max {
            Err(DomainError::with_reason(
                ErrorKind::TextTooLong,
                crate::Reason::new(
                    format!("{field_zh}（{field}）最多 {max} 个字"),
                    format!("{field}: at most {max} characters"),
                ),
            ))
        } else if text.chars().any(hides_or_controls) {
            Err(DomainError::with_reason(
                ErrorKind::TextHasControlCharacters,
                crate::Reason::new(format!("{field_zh}（{field}）"), field),
            ))
        } else {
            Ok(())
        }
    };
    too_long(note, MAX_NOTE_CHARS, ("note", "说明"))?;
    let reply = command.reply_text().unwrap_or("");
    if !reply.is_empty() && !command.action.takes_reply() {
        let action = &command.action;
        return Err(DomainError::with_reason(
            ErrorKind::ReplyNotAllowed,
            crate::Reason::new(action.label_zh(), action.name()),
        ));
    }
    too_long(reply, MAX_NOTE_CHARS, ("reply", "答复"))?;
    too_long(command.origin.as_deref().unwrap_or(""), MAX_SHORT_TEXT_CHARS, ("origin", "来源"))?;
    if command.attachments.len() > MAX_ATTACHMENTS {
        return Err(DomainError::with_detail(
            ErrorKind::TooManyAttachments,
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    match &command.action {
        Action::Receive(new) => {
            if new.description.trim().is_empty() {
                return Err(ErrorKind::DescriptionEmpty.into());
            }
            too_long(&new.description, MAX_DESCRIPTION_CHARS, ("description", "问题描述"))?;
            too_long(new.address.as_deref().unwrap_or(""), MAX_SHORT_TEXT_CHARS, ("address", "地址"))
        }
        Action::Dispatch { basis, .. } => {
            too_long(basis.as_deref().unwrap_or(""), MAX_SHORT_TEXT_CHARS, ("basis", "派遣依据"))
        }
        Action::Rate { comment, .. } => {
            too_long(comment.as_deref().unwrap_or(""), MAX_SHORT_TEXT_CHARS, ("comment", "评价意见"))
        }
        _ => Ok(()),
    }
}

/// The deadline the case's pending extension request would give if approved: the stage's yellow and due
/// times moved on by the minutes asked for, on the stage's own basis (working or natural time). Shown to
/// whoever decides, so that they approve a date, not a number of minutes.
pub fn extended_deadline(case: &CaseState, rules: &Rules) -> Result<Deadline, ErrorKind> {
    let request = case.pending_extension.ok_or(ErrorKind::NoExtensionPending)?;
    let current = case.deadline.ok_or(ErrorKind::StateForbidsAction)?;
    let extend = |at: Timestamp| {
        rules
            .calendar
            .add_minutes(at, i64::from(request.minutes), current.basis)
            .ok_or(ErrorKind::NoWorkingTime)
    };
    Ok(Deadline { yellow_at: extend(current.yellow_at)?, due: extend(current.due)?, ..current })
}

fn check_state(case: &CaseState, action: &Action) -> Result<(), DomainError> {
    let refused = || {
        let status = case.status;
        DomainError::with_reason(
            ErrorKind::StateForbidsAction,
            crate::Reason::new(
                format!("事件{}时不能{}", status.label_zh(), action.label_zh()),
                format!("{} is not possible while the case is {}", action.name(), status.as_str()),
            ),
        )
    };
    if !action.allowed_in(case.status) {
        return Err(refused());
    }
    match (case.suspension.is_some(), action) {
        (true, action) if !action.allowed_while_suspended() => Err(ErrorKind::CaseSuspended.into()),
        (false, Action::Resume) => Err(refused()),
        _ => Ok(()),
    }
}

fn receive(new: &NewCase, now: Timestamp, rules: &Rules) -> Result<Change, DomainError> {
    let mut seen = new.path.clone();
    seen.sort();
    seen.dedup();
    if new.path.is_empty() || seen.len() != new.path.len() || !new.path.contains(&new.owner) {
        return Err(ErrorKind::JurisdictionPathInvalid.into());
    }
    let limits = new.matter.as_ref().map_or(rules.intake_limits, |m| m.limits);
    let priority =
        new.priority.or(new.matter.as_ref().map(|m| m.default_priority)).unwrap_or(Priority::Normal);
    Ok(Change::Received {
        channel: new.channel,
        description: new.description.clone(),
        address: new.address.clone(),
        location: new.location,
        path: new.path.clone(),
        owner: new.owner,
        reporter: new.reporter.clone(),
        matter: new.matter.as_ref().map(matter_ref),
        priority,
        limits,
        deadline: rules.deadline(Stage::Register, now, limits.register)?,
    })
}

fn change_for(
    case: &CaseState,
    action: &Action,
    actor: &Actor,
    now: Timestamp,
    rules: &Rules,
) -> Result<Change, DomainError> {
    let stage_deadline = |stage: Stage| rules.deadline(stage, now, case.limits.of(stage));
    Ok(match action {
        Action::Receive(_) => return Err(ErrorKind::CaseAlreadyExists.into()),
        Action::Register { matter, priority } => Change::Registered {
            matter: matter_ref(matter),
            priority: priority.unwrap_or(matter.default_priority),
            limits: matter.limits,
            deadline: rules.deadline(Stage::Dispatch, now, matter.limits.dispatch)?,
        },
        Action::Reject => Change::Rejected,
        Action::Dispatch { lead, assisting, basis } => {
            let mut distinct = assisting.clone();
            distinct.sort();
            distinct.dedup();
            if assisting.contains(lead)
                || distinct.len() != assisting.len()
                || assisting.len() > MAX_ASSISTING
            {
                return Err(ErrorKind::DispatchDepartmentsInvalid.into());
            }
            Change::Dispatched {
                lead: *lead,
                assisting: assisting.clone(),
                basis: basis.clone(),
                deadline: stage_deadline(Stage::Accept)?,
            }
        }
        Action::Accept => {
            let Actor::User { scope: crate::org::Scope::Department(department), .. } = actor else {
                return Err(ErrorKind::DepartmentNotAssigned.into());
            };
            if case.accepted.contains(department) {
                return Err(ErrorKind::AlreadyAccepted.into());
            }
            let is_lead = case.lead == Some(*department);
            Change::Accepted {
                department: *department,
                deadline: if is_lead { Some(stage_deadline(Stage::Handle)?) } else { None },
            }
        }
        Action::ReportBack => Change::ReportedBack { deadline: stage_deadline(Stage::Verify)? },
        Action::Verify { passed: true } => Change::Verified { deadline: stage_deadline(Stage::Close)? },
        Action::Verify { passed: false } => {
            let back_to = if case.lead.is_some() { Stage::Handle } else { Stage::Dispatch };
            Change::VerificationFailed { deadline: stage_deadline(back_to)? }
        }
        Action::Close => Change::Closed,
        Action::Rate { score, comment } => {
            if !(1..=5).contains(score) {
                return Err(ErrorKind::RatingOutOfRange.into());
            }
            if case.rating.is_some() {
                return Err(ErrorKind::AlreadyRated.into());
            }
            Change::Rated { score: *score, comment: comment.clone() }
        }
        Action::ResolveOnSpot { matter } => Change::ResolvedOnSpot {
            matter: matter_ref(matter),
            priority: matter.default_priority,
            limits: matter.limits,
            deadline: rules.deadline(Stage::Verify, now, matter.limits.verify)?,
        },
        Action::Return => Change::Returned {
            department: case.lead.ok_or(ErrorKind::DepartmentNotAssigned)?,
            deadline: stage_deadline(Stage::Dispatch)?,
        },
        Action::RequestExtension { minutes } => {
            if case.pending_extension.is_some() {
                return Err(ErrorKind::ExtensionPending.into());
            }
            if *minutes == 0 || *minutes > MAX_EXTENSION_MINUTES {
                return Err(ErrorKind::ExtensionLengthInvalid.into());
            }
            Change::ExtensionRequested {
                department: case.lead.ok_or(ErrorKind::DepartmentNotAssigned)?,
                minutes: *minutes,
                decide_by: Some(
                    rules
                        .calendar
                        .add_minutes(now, i64::from(rules.extension_decision_minutes), Basis::Working)
                        .ok_or(ErrorKind::NoWorkingTime)?,
                ),
            }
        }
        Action::DecideExtension { approve } => {
            if case.pending_extension.is_none() {
                return Err(ErrorKind::NoExtensionPending.into());
            }
            if !approve {
                return Ok(Change::ExtensionDenied);
            }
            Change::ExtensionApproved { deadline: extended_deadline(case, rules)? }
        }
        Action::Supervise { due } => {
            if *due <= now {
                return Err(ErrorKind::DeadlineNotInFuture.into());
            }
            if due.0 - now.0 > MAX_SUPERVISION_DAYS * 86_400_000 {
                return Err(ErrorKind::DeadlineTooFar.into());
            }
            Change::Supervised { due: *due }
        }
        Action::Escalate => escalation(case, now, rules, None)?,
        Action::Merge { into } => Change::Merged { into: *into },
        Action::Suspend => {
            let deadline = case.deadline.ok_or(ErrorKind::StateForbidsAction)?;
            // Negative when already late: suspending must not wipe out lateness.
            let left = |until: Timestamp| rules.calendar.signed_minutes_between(now, until, deadline.basis);
            Change::Suspended {
                suspension: Suspension {
                    since: now,
                    stage: deadline.stage,
                    basis: deadline.basis,
                    remaining_minutes: left(deadline.due),
                    remaining_to_yellow_minutes: left(deadline.yellow_at),
                    signalled: case.signalled,
                },
            }
        }
        Action::Resume => {
            let stopped = case.suspension.ok_or(ErrorKind::StateForbidsAction)?;
            Change::Resumed {
                deadline: rules.deadline_in(
                    stopped.stage,
                    now,
                    stopped.basis,
                    stopped.remaining_minutes,
                    stopped.remaining_to_yellow_minutes,
                )?,
            }
        }
        Action::Void => Change::Voided,
        Action::Reopen => Change::Reopened { deadline: stage_deadline(Stage::Dispatch)? },
        Action::Instruct => Change::Instructed,
    })
}

/// 上报 to the command center one level above the owner; `rule` names the escalation rule when the platform
/// escalates by itself.
pub(crate) fn escalation(
    case: &CaseState,
    now: Timestamp,
    rules: &Rules,
    rule: Option<String>,
) -> Result<Change, DomainError> {
    let to = center_above(case).ok_or(ErrorKind::NoLevelAbove)?;
    let stage = if case.status == Status::Received { Stage::Register } else { Stage::Dispatch };
    let deadline = rules.deadline(stage, now, case.limits.of(stage))?;
    Ok(Change::Escalated { from: case.owner, to, deadline, rule })
}

/// The jurisdiction one level above the case's owner, if any.
pub(crate) fn center_above(case: &CaseState) -> Option<JurisdictionId> {
    let depth = case.depth_of(case.owner)?;
    depth.checked_sub(1).and_then(|d| case.path.get(d)).copied()
}

fn matter_ref(matter: &Matter) -> MatterRef {
    MatterRef { code: matter.code.clone(), category: matter.category.clone() }
}
