//! Deadlines that enforce themselves: when a case's next alarm is due, which events the platform appends
//! for it, the escalation rules it follows, and who is told about each event.
//!
//! A case's state says which warnings were already announced (`signalled`), which escalation is planned
//! (`escalation`) and which supervision orders are still open, so [`next_alarm`] is a function of the state
//! alone. The server keeps every open case's next alarm in memory and calls [`fire`] when it is due; `fire`
//! refuses an alarm the state no longer expects, which is what makes each one happen exactly once even when
//! two nodes, or a restarted node, try it again.

use crate::case::{Actor, CaseState, Change, Event, PlannedEscalation, Signal};
use crate::decide::{center_above, escalation, Rules};
use crate::error::{DomainError, ErrorKind};
use crate::org::{DepartmentId, JurisdictionId, Level, Priority, Role, Stage};
use crate::time::Timestamp;
use crate::Basis;
use serde::{Deserialize, Serialize};

/// What is due for a case, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alarm {
    pub at: Timestamp,
    pub kind: AlarmKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlarmKind {
    /// The stage turns yellow (临期).
    Yellow,
    /// The stage's deadline passes (超期).
    Red,
    /// A rule planned to escalate the red case now.
    Escalate,
    /// The supervision order issued at this moment reaches its own deadline.
    SupervisionDue(Timestamp),
    /// The extension request made at this moment has waited for a decision past the center's time limit.
    ExtensionDecisionDue(Timestamp),
}

/// The earliest alarm the case is waiting for; `None` for a case that ended or is suspended.
pub fn next_alarm(case: &CaseState) -> Option<Alarm> {
    if !case.status.is_active() || case.suspension.is_some() {
        return None;
    }
    let deadline_alarm = case.deadline.and_then(|deadline| match case.signalled {
        Signal::None if deadline.yellow_at < deadline.due => {
            Some(Alarm { at: deadline.yellow_at, kind: AlarmKind::Yellow })
        }
        Signal::None | Signal::Yellow => Some(Alarm { at: deadline.due, kind: AlarmKind::Red }),
        Signal::Red => case.escalation.as_ref().map(|plan| Alarm { at: plan.at, kind: AlarmKind::Escalate }),
    });
    let supervision_alarm = case
        .supervisions
        .iter()
        .filter(|order| !order.settled && order.stage.is_some())
        .map(|order| Alarm { at: order.due, kind: AlarmKind::SupervisionDue(order.issued_at) })
        .min();
    let extension_alarm = case.pending_extension.filter(|request| !request.late).and_then(|request| {
        request.decide_by.map(|at| Alarm { at, kind: AlarmKind::ExtensionDecisionDue(request.requested_at) })
    });
    deadline_alarm.into_iter().chain(supervision_alarm).chain(extension_alarm).min()
}

/// The events the platform appends for `alarm`, which must be the case's next alarm and due at `now`.
pub fn fire(
    case: &CaseState,
    alarm: Alarm,
    now: Timestamp,
    rules: &Rules,
) -> Result<Vec<Event>, DomainError> {
    if next_alarm(case) != Some(alarm) || alarm.at > now {
        return Err(ErrorKind::AlarmNotDue.into());
    }
    let event = |change: Change, note: Option<String>| Event {
        at: now,
        actor: Actor::System,
        note,
        attachments: Vec::new(),
        origin: Some("sla".into()),
        reply: None,
        change,
    };
    let deadline = case.deadline;
    Ok(match alarm.kind {
        AlarmKind::Yellow => {
            let deadline = deadline.ok_or(ErrorKind::AlarmNotDue)?;
            vec![event(Change::Warned { stage: deadline.stage, due: deadline.due }, None)]
        }
        AlarmKind::Red => {
            let deadline = deadline.ok_or(ErrorKind::AlarmNotDue)?;
            let plan = rules.escalation.plan_overdue(case, deadline.due, rules);
            let note = plan.as_ref().map(|(_, rule)| format!("将按规则“{}”自动上报", rule.name));
            let escalation = plan.map(|(at, rule)| PlannedEscalation { at, rule: rule.code.clone() });
            vec![event(Change::Overdue { stage: deadline.stage, due: deadline.due, escalation }, note)]
        }
        AlarmKind::Escalate => {
            let plan = case.escalation.as_ref().ok_or(ErrorKind::AlarmNotDue)?;
            let note =
                rules.escalation.named(&plan.rule).map(|rule| format!("规则“{}”：{}", rule.code, rule.name));
            vec![event(escalation(case, now, rules, Some(plan.rule.clone()))?, note)]
        }
        AlarmKind::SupervisionDue(issued_at) => {
            let mut events = vec![event(Change::SupervisionLapsed { issued_at }, None)];
            let rule = rules.escalation.matching(case, owner_level(case), Trigger::SupervisionLapsed);
            if let Some(rule) = rule.filter(|_| center_above(case).is_some()) {
                let note = Some(format!("规则“{}”：{}", rule.code, rule.name));
                events.push(event(escalation(case, now, rules, Some(rule.code.clone()))?, note));
            }
            events
        }
        AlarmKind::ExtensionDecisionDue(requested_at) => {
            vec![event(Change::ExtensionUndecided { requested_at }, None)]
        }
    })
}

/// The level of the case's owning command center, read from its place in the case's chain (city first).
pub fn owner_level(case: &CaseState) -> Option<Level> {
    case.depth_of(case.owner).and_then(|depth| Level::ALL.get(depth).copied())
}

/// When an escalation rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// The case has been red (超期) for this many working minutes.
    Overdue { working_minutes: u32 },
    /// A supervision order (督办) passed its own deadline with the case still in the stage it was issued in.
    SupervisionLapsed,
}

impl Trigger {
    fn same_kind(&self, other: &Trigger) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// One escalation rule (自动升级规则): at which level of command center, for which categories of matter, on
/// which trigger the case goes up one level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    /// Stable, e.g. `township_overdue`; named in the history of every case it escalates.
    pub code: String,
    pub name: String,
    /// The level of the owning command center the rule watches.
    pub level: Level,
    /// Category codes the rule is limited to; empty for every category. A rule naming the case's category
    /// wins over a general one.
    #[serde(default)]
    pub categories: Vec<String>,
    pub trigger: Trigger,
}

/// The rule set, as stored and edited over the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EscalationRules(pub Vec<EscalationRule>);

/// Working minutes in a working day of the default calendar (09:00–12:00, 13:30–17:30).
const WORKING_DAY_MINUTES: u32 = 7 * 60;

impl Default for EscalationRules {
    /// Red for two working days at a township, or three at a county, goes up a level; an ignored supervision
    /// order goes up at once.
    fn default() -> Self {
        let rule = |code: &str, name: &str, level: Level, trigger: Trigger| EscalationRule {
            code: code.into(),
            name: name.into(),
            level,
            categories: Vec::new(),
            trigger,
        };
        EscalationRules(vec![
            rule(
                "township_overdue",
                "乡镇（街道）超期两个工作日，上报区县指挥中心",
                Level::Township,
                Trigger::Overdue { working_minutes: 2 * WORKING_DAY_MINUTES },
            ),
            rule(
                "county_overdue",
                "区县超期三个工作日，上报市指挥中心",
                Level::County,
                Trigger::Overdue { working_minutes: 3 * WORKING_DAY_MINUTES },
            ),
            rule(
                "township_supervision_lapsed",
                "乡镇（街道）督办逾期，再次上报并通知领导",
                Level::Township,
                Trigger::SupervisionLapsed,
            ),
            rule(
                "county_supervision_lapsed",
                "区县督办逾期，再次上报并通知领导",
                Level::County,
                Trigger::SupervisionLapsed,
            ),
        ])
    }
}

impl EscalationRules {
    /// Refuses a rule set with an empty or repeated code, an empty name, a level without a command center
    /// above it, or a rule that would fire at once.
    pub fn check(&self) -> Result<(), DomainError> {
        let invalid =
            |detail: String| Err(DomainError::with_detail(ErrorKind::EscalationRuleInvalid, detail));
        let mut codes = std::collections::BTreeSet::new();
        for rule in &self.0 {
            let code = rule.code.trim();
            if code.is_empty() || code.chars().count() > 64 || !codes.insert(code) {
                return invalid(format!("rule code `{}` is empty, too long or repeated", rule.code));
            }
            if rule.name.trim().is_empty() || rule.name.chars().count() > 200 {
                return invalid(format!("{code}: the name is empty or longer than 200 characters"));
            }
            if !rule.level.has_command_center() || rule.level == Level::City {
                return invalid(format!("{code}: only township and county centers have a level above"));
            }
            if matches!(rule.trigger, Trigger::Overdue { working_minutes: 0 }) {
                return invalid(format!("{code}: an overdue rule waits at least one working minute"));
            }
        }
        Ok(())
    }

    pub fn named(&self, code: &str) -> Option<&EscalationRule> {
        self.0.iter().find(|rule| rule.code == code)
    }

    /// The rule for this case's category and owner level and this kind of trigger: one naming the category
    /// first, then a general one.
    pub fn matching(
        &self,
        case: &CaseState,
        level: Option<Level>,
        trigger: Trigger,
    ) -> Option<&EscalationRule> {
        let level = level?;
        let category = case.matter.as_ref().map(|m| m.category.as_str());
        let candidates = || self.0.iter().filter(|r| r.level == level && r.trigger.same_kind(&trigger));
        candidates()
            .find(|r| category.is_some_and(|c| r.categories.iter().any(|rc| rc == c)))
            .or_else(|| candidates().find(|r| r.categories.is_empty()))
    }

    /// When a case that went red at `due` will be escalated, and by which rule; `None` when no rule applies
    /// or there is no level above.
    fn plan_overdue(
        &self,
        case: &CaseState,
        due: Timestamp,
        rules: &Rules,
    ) -> Option<(Timestamp, &EscalationRule)> {
        center_above(case)?;
        let probe = Trigger::Overdue { working_minutes: 0 };
        let rule = self.matching(case, owner_level(case), probe)?;
        let Trigger::Overdue { working_minutes } = rule.trigger else { return None };
        let at = rules.calendar.add_minutes(due, i64::from(working_minutes), Basis::Working)?;
        Some((at, rule))
    }
}

/// Who should hear of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every handler of the department.
    Department(DepartmentId),
    /// Users of this role at this jurisdiction's command center (operators on duty, the leader).
    Center(JurisdictionId, Role),
}

/// One notification to be delivered: in the app, and by SMS when `urgent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub audience: Audience,
    /// The event's kind, for filtering.
    pub kind: &'static str,
    pub title: String,
    pub urgent: bool,
}

/// Who is told about `event`, given the case after it. Events that concern nobody but the actor (a
/// registration, a rating) tell nobody.
pub fn notices(event: &Event, case: &CaseState, case_id: i64) -> Vec<Notice> {
    let kind = event.change.kind();
    let owner = case.owner;
    let mut out = Vec::new();
    let mut tell = |audience: Audience, title: String, urgent: bool| {
        out.push(Notice { audience, kind, title, urgent });
    };
    let stage_name = |stage: Stage| stage_label(stage);
    // A stage the departments hold is theirs to hear about; the center's own stages are the operators'.
    let holder = |stage: Stage| match (stage, case.lead) {
        (Stage::Accept | Stage::Handle, Some(lead)) => Audience::Department(lead),
        _ => Audience::Center(owner, Role::Operator),
    };
    // The notifier asks of every event in the log, and most tell nobody: what a notice names is made only
    // for one. A department reading its list needs what the case is and by when, not only its number.
    let about = || title_words(case);
    // The departments still on the case (none once it ended).
    let assisting_on_case = || case.assisting.iter().copied().filter(|_| case.status.is_active());
    match &event.change {
        Change::Dispatched { lead, assisting, .. } => {
            let about = about();
            let by = case.deadline.map(|d| format!("，请于 {} 前签收", d.due)).unwrap_or_default();
            // An urgent case (gas, a collapse …) cannot wait for someone to open the app.
            let urgent = case.priority == Priority::Urgent;
            tell(Audience::Department(*lead), format!("新派遣事件 #{case_id}（主办）：{about}{by}"), urgent);
            for department in assisting {
                tell(
                    Audience::Department(*department),
                    format!("新派遣事件 #{case_id}（协办）：{about}{by}"),
                    urgent,
                );
            }
        }
        Change::Warned { stage, .. } => {
            tell(holder(*stage), format!("事件 #{case_id} {}临期", stage_name(*stage)), false)
        }
        Change::Overdue { stage, .. } => {
            tell(holder(*stage), format!("事件 #{case_id} {}已超期", stage_name(*stage)), true);
            if holder(*stage) != Audience::Center(owner, Role::Operator) {
                tell(
                    Audience::Center(owner, Role::Operator),
                    format!("事件 #{case_id} {}已超期", stage_name(*stage)),
                    false,
                );
            }
        }
        Change::Escalated { to, rule, .. } => {
            tell(Audience::Center(*to, Role::Operator), format!("下级上报事件 #{case_id}"), false);
            if rule.is_some() {
                tell(
                    Audience::Center(*to, Role::Leader),
                    format!("事件 #{case_id} 因超期或督办逾期自动上报"),
                    true,
                );
            }
        }
        Change::Supervised { due, .. } => {
            let stage = case.status.stage().unwrap_or(Stage::Handle);
            let title = format!("事件 #{case_id} 被督办，须于 {due} 前办结：{}", about());
            tell(holder(stage), title.clone(), true);
            // Every department still on the case answers to a supervision, not only the lead.
            for department in assisting_on_case() {
                tell(Audience::Department(department), title.clone(), true);
            }
        }
        Change::SupervisionLapsed { .. } => {
            tell(Audience::Center(owner, Role::Leader), format!("事件 #{case_id} 督办逾期未办结"), true)
        }
        Change::ExtensionRequested { .. } => {
            tell(Audience::Center(owner, Role::Operator), format!("事件 #{case_id} 申请延期，待审批"), false)
        }
        Change::ExtensionUndecided { .. } => {
            let title = format!("事件 #{case_id} 延期申请超过审批时限");
            tell(Audience::Center(owner, Role::Operator), title.clone(), true);
            tell(Audience::Center(owner, Role::Leader), title, true);
        }
        Change::ExtensionApproved { .. } | Change::ExtensionDenied => {
            if let Some(lead) = case.lead {
                let verdict = if matches!(event.change, Change::ExtensionDenied) {
                    "未获批准"
                } else {
                    "已批准"
                };
                tell(Audience::Department(lead), format!("事件 #{case_id} 延期申请{verdict}"), false);
            }
        }
        Change::Returned { .. } => tell(
            Audience::Center(owner, Role::Operator),
            format!("事件 #{case_id} 被退回，待重新派遣"),
            false,
        ),
        Change::ReportedBack { .. } => {
            tell(Audience::Center(owner, Role::Operator), format!("事件 #{case_id} 已反馈，待核查"), false)
        }
        Change::VerificationFailed { .. } => {
            if let Some(lead) = case.lead {
                tell(Audience::Department(lead), format!("事件 #{case_id} 核查不通过，需返工"), false);
            }
        }
        Change::Instructed => {
            let title = format!("事件 #{case_id} 有领导批示：{}", about());
            tell(Audience::Center(owner, Role::Operator), title.clone(), false);
            let lead = case.lead.filter(|_| case.status.is_active());
            for department in lead.into_iter().chain(assisting_on_case()) {
                tell(Audience::Department(department), title.clone(), false);
            }
        }
        Change::Reopened { .. } => {
            tell(Audience::Center(owner, Role::Operator), format!("事件 #{case_id} 重新打开"), false)
        }
        _ => {}
    }
    out
}

/// The first words of a case's description, for a notice's title, with runs of five or more digits masked:
/// titles leave the platform by SMS and webhook, and callers put their phone and ID numbers in what they say.
fn title_words(case: &CaseState) -> String {
    const SHOWN: usize = 24;
    let shown: Vec<char> = case.description.chars().take(SHOWN).collect();
    let mut words = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, words: &mut String| {
        if digits.len() >= 5 {
            words.push_str(&"*".repeat(digits.len()));
        } else {
            words.push_str(digits);
        }
        digits.clear();
    };
    for c in shown {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut words);
            words.push(c);
        }
    }
    flush(&mut digits, &mut words);
    if case.description.chars().count() > SHOWN {
        words.push('…');
    }
    words
}

pub fn stage_label(stage: Stage) -> &'static str {
    match stage {
        Stage::Register => "立案",
        Stage::Dispatch => "派遣",
        Stage::Accept => "签收",
        Stage::Handle => "处置",
        Stage::Verify => "核查",
        Stage::Close => "结案",
    }
}

/// The case's deadline counted again on `rules.calendar`, after the working calendar changed from `old`:
/// the working minutes the stage had (extensions included) are kept, and fall on the new working days.
/// `None` when nothing moves (no running deadline, natural time, or the same result).
pub fn reschedule(
    case: &CaseState,
    old: &crate::WorkCalendar,
    rules: &Rules,
    now: Timestamp,
    reason: &str,
) -> Option<Event> {
    let deadline = case.deadline.filter(|d| d.basis == Basis::Working && case.status.is_active())?;
    // Signed: a stage resumed after it was already late has its due before its start.
    let recount = |until: Timestamp| {
        let minutes = old.signed_minutes_between(deadline.started, until, Basis::Working);
        rules.calendar.shift_minutes(deadline.started, minutes, Basis::Working)
    };
    let moved =
        crate::Deadline { yellow_at: recount(deadline.yellow_at)?, due: recount(deadline.due)?, ..deadline };
    (moved != deadline).then(|| Event {
        at: now,
        actor: Actor::System,
        note: Some(reason.to_string()),
        attachments: Vec::new(),
        origin: Some("calendar".into()),
        reply: None,
        change: Change::Rescheduled { deadline: moved },
    })
}
