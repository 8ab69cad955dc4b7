//! Domain errors: a stable code for machines and a message in Chinese and English for people.

use std::fmt;

macro_rules! error_kinds {
    ($($variant:ident => $code:literal, $zh:literal, $en:literal;)*) => {
        /// Every way the domain can refuse a command. Codes are part of the API and never change meaning.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind { $($variant),* }

        impl ErrorKind {
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];
            pub fn code(self) -> &'static str { match self { $(ErrorKind::$variant => $code),* } }
            pub fn message_zh(self) -> &'static str { match self { $(ErrorKind::$variant => $zh),* } }
            pub fn message_en(self) -> &'static str { match self { $(ErrorKind::$variant => $en),* } }
        }
    };
}

error_kinds! {
    RoleNotPermitted => "ROLE_NOT_PERMITTED", "您的角色无权执行此操作", "Your role may not perform this action";
    OutOfJurisdiction => "OUT_OF_JURISDICTION", "该事件不在您的辖区范围内", "This case is outside your jurisdiction";
    DepartmentNotAssigned => "DEPARTMENT_NOT_ASSIGNED", "该事件未派遣给您的部门", "This case was not dispatched to your department";
    NotLeadDepartment => "NOT_LEAD_DEPARTMENT", "只有主办部门可以执行此操作", "Only the lead department may do this";
    NotReporter => "NOT_REPORTER", "只有事件的反映人可以执行此操作", "Only the person who reported the case may do this";
    StateForbidsAction => "CASE_STATE_FORBIDS_ACTION", "事件当前状态不允许此操作", "The case's current state does not allow this action";
    CaseSuspended => "CASE_SUSPENDED", "事件已挂起，请先恢复", "The case is suspended; resume it first";
    CaseAlreadyExists => "CASE_ALREADY_EXISTS", "事件已存在", "The case already exists";
    CaseNotReceived => "CASE_NOT_FOUND", "事件不存在", "The case does not exist";
    VerifierIsHandler => "VERIFIER_IS_HANDLER", "核查人不能是处置人", "The verifier must not be the person who handled the case";
    ReasonRequired => "REASON_REQUIRED", "请填写原因或说明", "A reason or note is required";
    ReplyNotAllowed => "REPLY_NOT_ALLOWED", "只有不予立案、结案和作废时可以答复反映人", "Only rejecting, closing or voiding a case may carry a reply to its reporter";
    TextTooLong => "TEXT_TOO_LONG", "文字超过允许的长度", "The text is longer than allowed";
    TextHasControlCharacters => "TEXT_HAS_CONTROL_CHARACTERS", "文字中含有控制字符或文字方向控制符", "The text holds control characters or marks that reverse its direction";
    TooManyAttachments => "TOO_MANY_ATTACHMENTS", "附件数量超过上限", "There are more attachments than allowed";
    DescriptionEmpty => "DESCRIPTION_EMPTY", "请描述反映的问题", "Describe the problem being reported";
    RatingOutOfRange => "RATING_OUT_OF_RANGE", "评分须为1到5分", "A rating must be from 1 to 5";
    AlreadyRated => "CASE_ALREADY_RATED", "该事件已评价", "The case has already been rated";
    DispatchDepartmentsInvalid => "DISPATCH_DEPARTMENTS_INVALID", "派遣部门无效：主办部门不能同时为协办部门，协办部门不能重复", "Invalid departments: the lead may not also assist and no department may assist twice";
    AlreadyAccepted => "DEPARTMENT_ALREADY_ACCEPTED", "本部门已签收该事件", "Your department has already accepted this case";
    ExtensionPending => "EXTENSION_ALREADY_PENDING", "已有待审批的延期申请", "An extension request is already waiting for a decision";
    NoExtensionPending => "NO_EXTENSION_PENDING", "没有待审批的延期申请", "There is no extension request to decide";
    ExtensionLengthInvalid => "EXTENSION_LENGTH_INVALID", "延期时长须在1分钟到30个自然日之间", "An extension must be from one minute to 30 days";
    NoLevelAbove => "NO_LEVEL_ABOVE", "已是最高层级，无法继续上报", "There is no level above to escalate to";
    DeadlineNotInFuture => "DEADLINE_NOT_IN_FUTURE", "期限必须晚于当前时间", "The deadline must be in the future";
    DeadlineTooFar => "DEADLINE_TOO_FAR", "督办期限不能超过90天", "A supervision's due date may be at most 90 days ahead";
    MergeTargetInvalid => "MERGE_TARGET_INVALID", "不能合并到该事件", "The case cannot be merged into that case";
    DepartmentOutsideCase => "DEPARTMENT_OUTSIDE_CASE", "只能派遣给事件所在地各级政府的部门", "Only departments of the governments over the case's place may be dispatched";
    NoResponsibleDepartment => "NO_RESPONSIBLE_DEPARTMENT", "权责清单中没有可承办该事项的部门", "No department holds this matter at any level of the case's place";
    JurisdictionPathInvalid => "JURISDICTION_PATH_INVALID", "事件的辖区层级链无效", "The case's chain of jurisdictions is invalid";
    NoWorkingTime => "NO_WORKING_TIME", "工作日历中没有可用的工作时间", "The working calendar has no working time to count a deadline on";
    AlarmNotDue => "ALARM_NOT_DUE", "该事件当前没有到期的时限提醒", "No deadline alarm of the case is due now";
    EscalationRuleInvalid => "ESCALATION_RULE_INVALID", "自动升级规则无效", "An escalation rule is invalid";
    CalendarInvalid => "CALENDAR_INVALID", "工作日历无效：日期须在该年内，且不能既是节假日又是调休工作日", "Invalid calendar: every day must fall in the year and cannot be both a holiday and a workday";
    EventOutOfOrder => "EVENT_OUT_OF_ORDER", "事件记录顺序错误", "An event does not fit the case's history";
}

/// A refused command: what went wrong and, where useful, a detail for the log and the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainError {
    pub kind: ErrorKind,
    pub detail: Option<String>,
    /// The detail in Chinese, where it says something a user needs (which state refused which action).
    pub detail_zh: Option<String>,
}

impl DomainError {
    pub fn new(kind: ErrorKind) -> Self {
        DomainError { kind, detail: None, detail_zh: None }
    }

    pub fn with_detail(kind: ErrorKind, detail: impl Into<String>) -> Self {
        DomainError { kind, detail: Some(detail.into()), detail_zh: None }
    }

    /// A detail in both languages: callers read it in their own after the kind's message.
    pub fn with_reason(kind: ErrorKind, reason: Reason) -> Self {
        DomainError { kind, detail: Some(reason.en), detail_zh: Some(reason.zh) }
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl From<ErrorKind> for DomainError {
    fn from(kind: ErrorKind) -> Self {
        DomainError::new(kind)
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.kind.message_en())?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DomainError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_every_kind_speaks_both_languages() {
        let mut codes = HashSet::new();
        for kind in ErrorKind::ALL {
            assert!(codes.insert(kind.code()), "duplicate code {}", kind.code());
            assert!(kind.code().chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!(kind.message_zh().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
            assert!(kind.message_en().is_ascii());
        }
    }
}

/// Why something was refused, in Chinese and in English, where the refusal has words of its own rather than
/// an [`ErrorKind`]'s (a report for a month that does not exist, weights that cannot make a score).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    pub zh: String,
    pub en: String,
}

impl Reason {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Reason {
        Reason { zh: zh.into(), en: en.into() }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.en, self.zh)
    }
}

impl std::error::Error for Reason {}
