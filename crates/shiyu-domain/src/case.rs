//! The case aggregate: its events, its current state, and `apply`, which folds one event into the state.
//!
//! A case's history is append-only; the state is always what replaying its events gives.

use crate::calendar::Basis;
use crate::error::{DomainError, ErrorKind};
use crate::org::{DepartmentId, JurisdictionId, Priority, Role, Scope, Stage, StageLimits, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub i64);

/// Where a report came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 12345 热线
    Hotline,
    /// 市民 App
    App,
    /// 小程序
    MiniProgram,
    /// 网格员巡查
    GridPatrol,
    /// 摄像头、传感器
    Sensor,
    /// 其他
    Other,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Hotline,
        Channel::App,
        Channel::MiniProgram,
        Channel::GridPatrol,
        Channel::Sensor,
        Channel::Other,
    ];

    /// The channel's name on screen.
    pub fn label_zh(self) -> &'static str {
        match self {
            Channel::Hotline => "12345热线",
            Channel::App => "市民App",
            Channel::MiniProgram => "小程序",
            Channel::GridPatrol => "网格员巡查",
            Channel::Sensor => "感知设备",
            Channel::Other => "其他",
        }
    }
}

/// A point in CGCS2000 / WGS84 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lon: f64,
    pub lat: f64,
}

/// A file kept beside the case, named by its content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub sha256: String,
    pub name: String,
}

/// Who reported the case. Contact details arrive already sealed (encrypted) by the caller: the domain never
/// sees a phone number in clear.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reporter {
    pub user: Option<UserId>,
    pub anonymous: bool,
    /// The reporter's phone number, sealed.
    pub contact_sealed: Option<String>,
    /// The reporter's resident ID number, sealed, when the matter needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number_sealed: Option<String>,
    /// The code the reporter follows the case with (查询码); whoever holds it acts as `Actor::Reporter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_code: Option<String>,
}

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Actor {
    /// A signed-in user.
    User { user: UserId, role: Role, scope: Scope },
    /// Whoever holds the case's tracking code: the reporter, perhaps anonymous.
    Reporter,
    /// The platform itself: deadline rules, sensor gateways.
    System,
}

impl Actor {
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { user, .. } => Some(*user),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::User { role, .. } => Some(*role),
            _ => None,
        }
    }
}

/// The matter a case was classified as, fixed into its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatterRef {
    pub code: String,
    pub category: String,
}

/// The deadline of the stage a case is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub stage: Stage,
    pub basis: Basis,
    pub started: Timestamp,
    /// From this moment the stage is 临期 (yellow).
    pub yellow_at: Timestamp,
    /// From this moment the stage is 超期 (red).
    pub due: Timestamp,
}

/// How a deadline looks at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    Green,
    Yellow,
    Red,
    /// Suspended: the clock is stopped.
    Paused,
    /// No running stage (closed, rejected, merged, voided).
    Off,
}

impl Deadline {
    pub fn light(&self, now: Timestamp) -> Light {
        if now >= self.due {
            Light::Red
        } else if now >= self.yellow_at {
            Light::Yellow
        } else {
            Light::Green
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub since: Timestamp,
    pub stage: Stage,
    pub basis: Basis,
    /// Time left on the stage's deadline when the clock stopped, in minutes of its basis; negative when the
    /// stage was already late (yellow or red), and the resumed deadline is that late again.
    pub remaining_minutes: i64,
    pub remaining_to_yellow_minutes: i64,
    /// The warnings announced before the stop. A resumed stage that was already 临期 is not announced as
    /// such again; one that was 超期 is announced as overdue once more, which plans its escalation again.
    #[serde(default)]
    pub signalled: Signal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    pub requested_at: Timestamp,
    pub department: DepartmentId,
    pub minutes: u32,
    /// The center's own time limit for deciding.
    #[serde(default)]
    pub decide_by: Option<Timestamp>,
    /// The decision is late (announced once).
    #[serde(default)]
    pub late: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervision {
    pub issued_at: Timestamp,
    pub by: Actor,
    pub due: Timestamp,
    /// The stage the case was in when the order came: leaving it answers the order.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// Answered (the case left `stage` or ended) or lapsed; a settled order raises no alarm.
    #[serde(default)]
    pub settled: bool,
}

/// How far the current deadline's warnings have gone: each is announced once, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    #[default]
    None,
    /// 临期 announced.
    Yellow,
    /// 超期 announced.
    Red,
}

impl Signal {
    fn of(light: Light) -> Signal {
        match light {
            Light::Yellow => Signal::Yellow,
            Light::Red => Signal::Red,
            Light::Green | Light::Paused | Light::Off => Signal::None,
        }
    }
}

/// An automatic escalation planned when a case turned red: the rule that will fire, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedEscalation {
    pub at: Timestamp,
    pub rule: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub score: u8,
    pub comment: Option<String>,
    pub at: Timestamp,
}

/// The states of the closed loop, in order; the last three end a case for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 上报/受理
    Received,
    /// 立案
    Registered,
    /// 派遣
    Dispatched,
    /// 处置中
    Handling,
    /// 已反馈
    Handled,
    /// 已核查
    Verified,
    /// 结案
    Closed,
    /// 不予立案
    Rejected,
    /// 已合并
    Merged,
    /// 作废
    Voided,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Received,
        Status::Registered,
        Status::Dispatched,
        Status::Handling,
        Status::Handled,
        Status::Verified,
        Status::Closed,
        Status::Rejected,
        Status::Merged,
        Status::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Registered => "registered",
            Status::Dispatched => "dispatched",
            Status::Handling => "handling",
            Status::Handled => "handled",
            Status::Verified => "verified",
            Status::Closed => "closed",
            Status::Rejected => "rejected",
            Status::Merged => "merged",
            Status::Voided => "voided",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Received => "已受理",
            Status::Registered => "已立案",
            Status::Dispatched => "已派遣",
            Status::Handling => "处置中",
            Status::Handled => "已反馈",
            Status::Verified => "已核查",
            Status::Closed => "已结案",
            Status::Rejected => "不予立案",
            Status::Merged => "已合并",
            Status::Voided => "已作废",
        }
    }

    /// The stage whose clock runs in this state; `None` once the loop has ended.
    pub fn stage(self) -> Option<Stage> {
        match self {
            Status::Received => Some(Stage::Register),
            Status::Registered => Some(Stage::Dispatch),
            Status::Dispatched => Some(Stage::Accept),
            Status::Handling => Some(Stage::Handle),
            Status::Handled => Some(Stage::Verify),
            Status::Verified => Some(Stage::Close),
            Status::Closed | Status::Rejected | Status::Merged | Status::Voided => None,
        }
    }

    pub fn is_active(self) -> bool {
        self.stage().is_some()
    }

    /// Whether a duplicate may be merged into a case in this state: one still open, or closed (a late
    /// report of a solved problem joins its record); never one rejected, merged or voided.
    pub fn accepts_merges(self) -> bool {
        self.is_active() || self == Status::Closed
    }
}

/// How often each exceptional step happened; the evaluation reads these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub returns: u32,
    pub reworks: u32,
    pub extensions: u32,
    pub escalations: u32,
    pub supervisions: u32,
    pub reopenings: u32,
    pub instructions: u32,
    /// Stage deadlines that ran out (超期).
    pub overdues: u32,
}

/// What one event changed.
// The first event carries the whole report; events are handled one at a time, so the size difference
// between variants costs little and boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    Received {
        channel: Channel,
        description: String,
        address: Option<String>,
        location: Option<GeoPoint>,
        path: Vec<JurisdictionId>,
        owner: JurisdictionId,
        reporter: Reporter,
        matter: Option<MatterRef>,
        priority: Priority,
        limits: StageLimits,
        deadline: Deadline,
    },
    Registered {
        matter: MatterRef,
        priority: Priority,
        limits: StageLimits,
        deadline: Deadline,
    },
    Rejected,
    Dispatched {
        lead: DepartmentId,
        assisting: Vec<DepartmentId>,
        basis: Option<String>,
        deadline: Deadline,
    },
    Accepted {
        department: DepartmentId,
        deadline: Option<Deadline>,
    },
    ReportedBack {
        deadline: Deadline,
    },
    Verified {
        deadline: Deadline,
    },
    VerificationFailed {
        deadline: Deadline,
    },
    Closed,
    Rated {
        score: u8,
        comment: Option<String>,
    },
    ResolvedOnSpot {
        matter: MatterRef,
        priority: Priority,
        limits: StageLimits,
        deadline: Deadline,
    },
    Returned {
        department: DepartmentId,
        deadline: Deadline,
    },
    ExtensionRequested {
        department: DepartmentId,
        minutes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decide_by: Option<Timestamp>,
    },
    ExtensionApproved {
        deadline: Deadline,
    },
    ExtensionDenied,
    Supervised {
        due: Timestamp,
    },
    Escalated {
        from: JurisdictionId,
        to: JurisdictionId,
        deadline: Deadline,
        /// The escalation rule that fired, when the platform escalated by itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    Merged {
        into: CaseId,
    },
    Suspended {
        suspension: Suspension,
    },
    Resumed {
        deadline: Deadline,
    },
    Voided,
    Reopened {
        deadline: Deadline,
    },
    Instructed,
    /// 临期: the stage's deadline is near (the platform's clock).
    Warned {
        stage: Stage,
        due: Timestamp,
    },
    /// 超期: the stage's deadline has passed, with the escalation a rule plans for it.
    Overdue {
        stage: Stage,
        due: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        escalation: Option<PlannedEscalation>,
    },
    /// A supervision order (督办) passed its own deadline unanswered.
    SupervisionLapsed {
        issued_at: Timestamp,
    },
    /// The deadline was counted again, e.g. after the working calendar changed; the note says why.
    Rescheduled {
        deadline: Deadline,
    },
    /// An extension request was not decided within the center's own time limit.
    ExtensionUndecided {
        requested_at: Timestamp,
    },
}

impl Change {
    /// A stable name for the log's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Received { .. } => "received",
            Change::Registered { .. } => "registered",
            Change::Rejected => "rejected",
            Change::Dispatched { .. } => "dispatched",
            Change::Accepted { .. } => "accepted",
            Change::ReportedBack { .. } => "reported_back",
            Change::Verified { .. } => "verified",
            Change::VerificationFailed { .. } => "verification_failed",
            Change::Closed => "closed",
            Change::Rated { .. } => "rated",
            Change::ResolvedOnSpot { .. } => "resolved_on_spot",
            Change::Returned { .. } => "returned",
            Change::ExtensionRequested { .. } => "extension_requested",
            Change::ExtensionApproved { .. } => "extension_approved",
            Change::ExtensionDenied => "extension_denied",
            Change::Supervised { .. } => "supervised",
            Change::Escalated { .. } => "escalated",
            Change::Merged { .. } => "merged",
            Change::Suspended { .. } => "suspended",
            Change::Resumed { .. } => "resumed",
            Change::Voided => "voided",
            Change::Reopened { .. } => "reopened",
            Change::Instructed => "instructed",
            Change::Warned { .. } => "warned",
            Change::Overdue { .. } => "overdue",
            Change::SupervisionLapsed { .. } => "supervision_lapsed",
            Change::Rescheduled { .. } => "rescheduled",
            Change::ExtensionUndecided { .. } => "extension_undecided",
        }
    }
}

impl Change {
    /// The step's name as the command center says it.
    pub fn label_zh(&self) -> &'static str {
        match self {
            Change::Received { .. } => "受理",
            Change::Registered { .. } => "立案",
            Change::Rejected => "不予立案",
            Change::Dispatched { .. } => "派遣",
            Change::Accepted { .. } => "签收",
            Change::ReportedBack { .. } => "处置反馈",
            Change::Verified { .. } => "核查通过",
            Change::VerificationFailed { .. } => "核查不通过（返工）",
            Change::Closed => "结案",
            Change::Rated { .. } => "评价",
            Change::ResolvedOnSpot { .. } => "就地解决",
            Change::Returned { .. } => "退回",
            Change::ExtensionRequested { .. } => "申请延期",
            Change::ExtensionApproved { .. } => "同意延期",
            Change::ExtensionDenied => "不同意延期",
            Change::Supervised { .. } => "督办",
            Change::Escalated { .. } => "上报",
            Change::Merged { .. } => "合并",
            Change::Suspended { .. } => "挂起",
            Change::Resumed { .. } => "恢复",
            Change::Voided => "作废",
            Change::Reopened { .. } => "重新打开",
            Change::Instructed => "领导批示",
            Change::Warned { .. } => "临期预警",
            Change::Overdue { .. } => "超期",
            Change::SupervisionLapsed { .. } => "督办逾期",
            Change::Rescheduled { .. } => "期限重算",
            Change::ExtensionUndecided { .. } => "延期审批超时",
        }
    }
}

/// One entry of a case's history: who did what, when, why, with what evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// Where the command came from (a network address, a gateway's name), for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// 答复: what the reporter was told when the case ended here (public, unlike the note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    pub change: Change,
}

/// The current state of a case, derived from its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseState {
    pub status: Status,
    pub channel: Channel,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<GeoPoint>,
    /// The jurisdictions the case happened in, city first, down to its grid or micro-grid.
    pub path: Vec<JurisdictionId>,
    /// The command center now responsible for the case; always one of `path`.
    pub owner: JurisdictionId,
    pub reporter: Reporter,
    pub matter: Option<MatterRef>,
    pub priority: Priority,
    pub limits: StageLimits,
    pub lead: Option<DepartmentId>,
    pub assisting: Vec<DepartmentId>,
    /// Departments of the current dispatch that have accepted (报到).
    pub accepted: Vec<DepartmentId>,
    /// Every department the case was ever dispatched to: they may still read it.
    pub involved: Vec<DepartmentId>,
    /// Users who handled the current round of work; none of them may verify it.
    pub handlers: Vec<UserId>,
    pub resolved_on_spot: bool,
    pub deadline: Option<Deadline>,
    pub suspension: Option<Suspension>,
    pub pending_extension: Option<ExtensionRequest>,
    pub supervisions: Vec<Supervision>,
    pub rating: Option<Rating>,
    pub merged_into: Option<CaseId>,
    pub counts: Counts,
    /// The warnings already announced for `deadline`.
    #[serde(default)]
    pub signalled: Signal,
    /// Set while the case is red and a rule will escalate it.
    #[serde(default)]
    pub escalation: Option<PlannedEscalation>,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// How many events the case has; the store's expected version for the next append.
    pub version: u64,
}

impl CaseState {
    /// The deadline light at `now`.
    pub fn light(&self, now: Timestamp) -> Light {
        match (&self.suspension, &self.deadline) {
            (Some(_), _) => Light::Paused,
            (None, Some(deadline)) => deadline.light(now),
            (None, None) => Light::Off,
        }
    }

    /// Position of a jurisdiction in the case's chain, 0 being the city.
    pub fn depth_of(&self, jurisdiction: JurisdictionId) -> Option<usize> {
        self.path.iter().position(|j| *j == jurisdiction)
    }

    /// The rules no history may break. `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        let fail = |rule: &str| Err(format!("{rule} (status {:?})", self.status));
        if self.depth_of(self.owner).is_none() {
            return fail("the owner is in the case's chain of jurisdictions");
        }
        let running = self.deadline.map(|d| d.stage).or(self.suspension.map(|s| s.stage));
        if running != self.status.stage() {
            return fail("exactly the current stage's clock runs, or is stopped");
        }
        if self.deadline.is_some() && self.suspension.is_some() {
            return fail("a suspended case has no running deadline");
        }
        if self.status > Status::Received && self.status <= Status::Closed && self.matter.is_none() {
            return fail("a registered case has a matter");
        }
        let needs_lead = matches!(self.status, Status::Dispatched | Status::Handling);
        if needs_lead && self.lead.is_none() {
            return fail("a dispatched case has a lead department");
        }
        if self.status == Status::Registered && (self.lead.is_some() || !self.accepted.is_empty()) {
            return fail("a case waiting for dispatch has no department");
        }
        if let Some(lead) = self.lead {
            if self.assisting.contains(&lead) || !self.involved.contains(&lead) {
                return fail("the lead does not assist and is among the involved departments");
            }
        }
        if self.accepted.iter().any(|d| Some(*d) != self.lead && !self.assisting.contains(d)) {
            return fail("only dispatched departments accept");
        }
        if self.status == Status::Handling && self.lead.is_some_and(|lead| !self.accepted.contains(&lead)) {
            return fail("handling starts when the lead accepts");
        }
        if self.rating.is_some() && self.status != Status::Closed {
            return fail("only closed cases carry a rating");
        }
        if self.pending_extension.is_some() && self.status != Status::Handling {
            return fail("extensions are pending only while handling");
        }
        if self.merged_into.is_some() != (self.status == Status::Merged) {
            return fail("a merged case names its target, and only it");
        }
        if self.status.is_active() == self.ended_at.is_some() {
            return fail("an ended case has an end time, an active one has none");
        }
        if self.version == 0 {
            return fail("a case has at least one event");
        }
        Ok(())
    }
}

/// Folds one event into the state. The first event must be `Received`; every other must follow one.
pub fn apply(state: Option<CaseState>, event: &Event) -> Result<CaseState, DomainError> {
    let at = event.at;
    let out_of_order = || DomainError::with_detail(ErrorKind::EventOutOfOrder, event.change.kind());
    let mut case = match state {
        None => return first_state(event).ok_or_else(out_of_order),
        Some(_) if matches!(event.change, Change::Received { .. }) => return Err(out_of_order()),
        Some(case) => case,
    };
    case.version += 1;
    case.updated_at = at;
    let handler = event.actor.user_id();
    let (deadline_before, stage_before) = (case.deadline, case.status.stage());
    let mut resumed_after = None;
    match &event.change {
        Change::Received { .. } => {}
        Change::Registered { matter, priority, limits, deadline } => {
            case.status = Status::Registered;
            case.matter = Some(matter.clone());
            case.priority = *priority;
            case.limits = *limits;
            case.deadline = Some(*deadline);
        }
        Change::Rejected => end(&mut case, Status::Rejected, at),
        Change::Dispatched { lead, assisting, deadline, .. } => {
            case.status = Status::Dispatched;
            case.lead = Some(*lead);
            case.assisting = assisting.clone();
            case.accepted.clear();
            for department in std::iter::once(lead).chain(assisting) {
                if !case.involved.contains(department) {
                    case.involved.push(*department);
                }
            }
            case.deadline = Some(*deadline);
        }
        Change::Accepted { department, deadline } => {
            case.accepted.push(*department);
            if Some(*department) == case.lead {
                case.status = Status::Handling;
                case.deadline = *deadline;
                push_handler(&mut case, handler);
            }
        }
        Change::ReportedBack { deadline } => {
            case.status = Status::Handled;
            case.deadline = Some(*deadline);
            // The work is done: an extension still waiting for a decision has nothing left to extend.
            case.pending_extension = None;
            push_handler(&mut case, handler);
        }
        Change::Verified { deadline } => {
            case.status = Status::Verified;
            case.deadline = Some(*deadline);
        }
        Change::VerificationFailed { deadline } => {
            case.counts.reworks += 1;
            case.deadline = Some(*deadline);
            if case.lead.is_some() {
                case.status = Status::Handling;
            } else {
                // Resolved on the spot and found not done: it now needs a department.
                case.status = Status::Registered;
                case.resolved_on_spot = false;
                case.handlers.clear();
            }
        }
        Change::Closed => end(&mut case, Status::Closed, at),
        Change::Rated { score, comment } => {
            case.rating = Some(Rating { score: *score, comment: comment.clone(), at });
        }
        Change::ResolvedOnSpot { matter, priority, limits, deadline } => {
            case.status = Status::Handled;
            case.matter = Some(matter.clone());
            case.priority = *priority;
            case.limits = *limits;
            case.resolved_on_spot = true;
            case.deadline = Some(*deadline);
            push_handler(&mut case, handler);
        }
        Change::Returned { deadline, .. } => {
            case.counts.returns += 1;
            clear_dispatch(&mut case);
            case.status = Status::Registered;
            case.deadline = Some(*deadline);
        }
        Change::ExtensionRequested { department, minutes, decide_by } => {
            case.pending_extension = Some(ExtensionRequest {
                requested_at: at,
                department: *department,
                minutes: *minutes,
                decide_by: *decide_by,
                late: false,
            });
        }
        Change::ExtensionApproved { deadline } => {
            case.pending_extension = None;
            case.counts.extensions += 1;
            case.deadline = Some(*deadline);
        }
        Change::ExtensionDenied => case.pending_extension = None,
        Change::Supervised { due } => {
            case.counts.supervisions += 1;
            case.supervisions.push(Supervision {
                issued_at: at,
                by: event.actor,
                due: *due,
                stage: case.status.stage(),
                settled: false,
            });
        }
        Change::Escalated { to, deadline, .. } => {
            case.counts.escalations += 1;
            case.owner = *to;
            clear_dispatch(&mut case);
            if case.status != Status::Received {
                case.status = Status::Registered;
            }
            case.deadline = Some(*deadline);
        }
        Change::Merged { into } => {
            case.merged_into = Some(*into);
            end(&mut case, Status::Merged, at);
        }
        Change::Suspended { suspension } => {
            case.suspension = Some(*suspension);
            case.deadline = None;
        }
        Change::Resumed { deadline } => {
            resumed_after = case.suspension.map(|stopped| stopped.signalled.min(Signal::Yellow));
            case.suspension = None;
            case.deadline = Some(*deadline);
        }
        Change::Voided => end(&mut case, Status::Voided, at),
        Change::Reopened { deadline } => {
            case.counts.reopenings += 1;
            case.rating = None;
            case.ended_at = None;
            case.resolved_on_spot = false;
            clear_dispatch(&mut case);
            case.status = Status::Registered;
            case.deadline = Some(*deadline);
        }
        Change::Instructed => case.counts.instructions += 1,
        Change::Warned { .. } => case.signalled = Signal::Yellow,
        Change::Overdue { escalation, .. } => {
            case.signalled = Signal::Red;
            case.counts.overdues += 1;
            case.escalation = escalation.clone();
        }
        Change::SupervisionLapsed { issued_at } => {
            for order in case.supervisions.iter_mut().filter(|s| s.issued_at == *issued_at) {
                order.settled = true;
            }
        }
        Change::Rescheduled { deadline } => case.deadline = Some(*deadline),
        Change::ExtensionUndecided { requested_at } => {
            if let Some(request) = case.pending_extension.as_mut().filter(|r| r.requested_at == *requested_at)
            {
                request.late = true;
            }
        }
    }
    follow_deadline(&mut case, deadline_before, at);
    if let (Some(announced), Some(deadline)) = (resumed_after, case.deadline) {
        case.signalled = announced.min(Signal::of(deadline.light(at)));
    }
    if case.status.stage() != stage_before {
        for order in &mut case.supervisions {
            order.settled = true;
        }
    }
    Ok(case)
}

/// Keeps the announced warnings true to the deadline now running: a new stage starts unannounced; a moved
/// deadline of the same stage (extension, new calendar) keeps only the warnings that still hold.
fn follow_deadline(case: &mut CaseState, before: Option<Deadline>, at: Timestamp) {
    if case.deadline == before {
        return;
    }
    case.signalled = match (before, case.deadline) {
        (Some(old), Some(new)) if old.stage == new.stage && old.started == new.started => {
            case.signalled.min(Signal::of(new.light(at)))
        }
        _ => Signal::None,
    };
    if case.signalled != Signal::Red {
        case.escalation = None;
    }
}

/// Replays a whole history.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Option<CaseState>, DomainError> {
    let mut state = None;
    for event in events {
        state = Some(apply(state, event)?);
    }
    Ok(state)
}

fn first_state(event: &Event) -> Option<CaseState> {
    let Change::Received {
        channel,
        description,
        address,
        location,
        path,
        owner,
        reporter,
        matter,
        priority,
        limits,
        deadline,
    } = &event.change
    else {
        return None;
    };
    Some(CaseState {
        status: Status::Received,
        channel: *channel,
        description: description.clone(),
        address: address.clone(),
        location: *location,
        path: path.clone(),
        owner: *owner,
        reporter: reporter.clone(),
        matter: matter.clone(),
        priority: *priority,
        limits: *limits,
        lead: None,
        assisting: Vec::new(),
        accepted: Vec::new(),
        involved: Vec::new(),
        handlers: Vec::new(),
        resolved_on_spot: false,
        deadline: Some(*deadline),
        suspension: None,
        pending_extension: None,
        supervisions: Vec::new(),
        rating: None,
        merged_into: None,
        counts: Counts::default(),
        signalled: Signal::None,
        escalation: None,
        received_at: event.at,
        updated_at: event.at,
        ended_at: None,
        version: 1,
    })
}

fn end(case: &mut CaseState, status: Status, at: Timestamp) {
    case.status = status;
    case.deadline = None;
    case.suspension = None;
    case.pending_extension = None;
    case.ended_at = Some(at);
}

fn clear_dispatch(case: &mut CaseState) {
    case.lead = None;
    case.assisting.clear();
    case.accepted.clear();
    case.handlers.clear();
    case.pending_extension = None;
}

fn push_handler(case: &mut CaseState, handler: Option<UserId>) {
    if let Some(user) = handler {
        if !case.handlers.contains(&user) {
            case.handlers.push(user);
        }
    }
}
