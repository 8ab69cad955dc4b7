//! Who may do what to which case: every role, jurisdiction and department check of the platform is here.

use crate::case::{Actor, CaseState};
use crate::decide::Action;
use crate::error::{DomainError, ErrorKind};
use crate::org::{Department, DepartmentId, JurisdictionId, Role, Scope};

/// What a role may do outside the case loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Create users, reset passwords, issue API tokens.
    ManageUsers,
    /// Read the audit log.
    ReadAudit,
    /// See a reporter's phone or ID number unmasked (every such view is audited).
    ViewPersonalData,
    /// Read the jurisdiction tree, departments and the matter catalog.
    ReadReferenceData,
    /// List users.
    ListUsers,
    /// Ask the matter classifier for suggestions (智能分拨).
    Classify,
    /// Retrain the matter classifier.
    TrainModels,
    /// Change the matter catalog's settings (duplicate rules, …).
    ManageCatalog,
    /// Edit the escalation rules and the working calendar that every deadline runs on.
    ManageDeadlines,
    /// Read statistics and evaluations (分析研判, 行政问效), always limited to the caller's own jurisdiction or
    /// department.
    ReadStatistics,
    /// Set the evaluation's indicator weights (考核权重).
    ManageEvaluation,
}

/// Whether `role` has `capability`. Case actions and case reads are decided by [`authorize`] and
/// [`can_view`]; this covers the rest.
pub fn role_may(role: Role, capability: Capability) -> bool {
    use Capability::*;
    match capability {
        ManageUsers | ReadAudit | ListUsers | TrainModels | ManageCatalog | ManageDeadlines
        | ManageEvaluation => role == Role::Admin,
        // Staff who work cases; admins manage the platform, not cases, and citizens see only their own.
        ReadStatistics => !matches!(role, Role::Citizen | Role::Admin),
        // Whoever takes reports in or registers them; not citizens, departments or leaders.
        Classify => matches!(role, Role::HotlineAgent | Role::GridWorker | Role::Operator | Role::Mediator),
        // Call-backs and on-the-spot contact need the number; nobody else does.
        ViewPersonalData => matches!(role, Role::Operator | Role::HotlineAgent),
        ReadReferenceData => role != Role::Citizen,
    }
}

/// How an actor must relate to a case to be allowed an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    /// The case happened inside the actor's jurisdiction.
    Within,
    /// The actor's jurisdiction is the case's command center or above it.
    Manages,
    /// The actor's jurisdiction is strictly above the case's command center.
    Above,
    /// The actor's department was dispatched the case, as lead or assisting.
    Assigned,
    /// The actor's department leads the case.
    Lead,
    /// The actor reported the case.
    Reporter,
    /// No relation needed (the system, or a citizen filing a new report).
    Any,
}

/// Decides whether `actor` may take `action` on `case` (`None` for a new report). The only place where roles,
/// jurisdictions and departments are weighed; `decide` calls it before anything else.
pub fn authorize(case: Option<&CaseState>, action: &Action, actor: &Actor) -> Result<(), DomainError> {
    let relation = required_relation(action, actor).ok_or(ErrorKind::RoleNotPermitted)?;
    if let Action::Receive(new) = action {
        return match (actor, relation) {
            (_, Relation::Any) => Ok(()),
            (Actor::User { scope: Scope::Jurisdiction(j), .. }, _) if new.path.contains(j) => Ok(()),
            _ => Err(ErrorKind::OutOfJurisdiction.into()),
        };
    }
    let Some(case) = case else {
        return Err(ErrorKind::CaseNotReceived.into());
    };
    check_relation(case, actor, relation)?;
    if matches!(action, Action::Verify { .. }) && actor.user_id().is_some_and(|u| case.handlers.contains(&u))
    {
        return Err(ErrorKind::VerifierIsHandler.into());
    }
    Ok(())
}

/// Whether `actor` may read `case` at all. Reporters and citizens see only the public progress, which the
/// web layer enforces by what it renders.
pub fn can_view(case: &CaseState, actor: &Actor) -> bool {
    match actor {
        Actor::System | Actor::Reporter => true,
        Actor::User { role: Role::Citizen, user, .. } => case.reporter.user == Some(*user),
        Actor::User { role: Role::Admin, .. } => false,
        Actor::User { scope: Scope::Department(d), .. } => case.involved.contains(d),
        Actor::User { scope: Scope::Jurisdiction(j), .. } => case.depth_of(*j).is_some(),
        Actor::User { scope: Scope::Unbound, .. } => false,
    }
}

/// Whether `actor` sees how a case is handled inside — departments, deadlines, notes, the staff who acted,
/// routing and merges — or, as a reporter or citizen, only the public progress of their own report.
pub fn sees_handling(actor: &Actor) -> bool {
    !matches!(actor, Actor::Reporter | Actor::User { role: Role::Citizen, .. })
}

/// Whether a case may be dispatched to `department`: only to departments of the governments over the
/// case's place (its township, county or the city), never to another county's.
pub fn may_dispatch_to(case: &CaseState, department: &Department) -> bool {
    case.path.contains(&department.jurisdiction)
}

/// Whether `actor` may merge a case into `target`: the target must be a case the actor can see, so that
/// nobody merges into, or learns of, a case outside their reach.
pub fn may_merge_into(target: &CaseState, actor: &Actor) -> bool {
    sees_handling(actor) && can_view(target, actor)
}

/// The relation each role needs for each action; `None` means the role may never take it.
fn required_relation(action: &Action, actor: &Actor) -> Option<Relation> {
    use Relation::*;
    use Role::*;
    let role = match actor {
        Actor::System => {
            return matches!(action, Action::Receive(_) | Action::Escalate | Action::Supervise { .. })
                .then_some(Any)
        }
        // A citizen without an account reports as the holder of the tracking code the report will get.
        Actor::Reporter => {
            return match action {
                Action::Receive(_) => Some(Any),
                Action::Rate { .. } => Some(Reporter),
                _ => None,
            }
        }
        Actor::User { role, .. } => *role,
    };
    match (action, role) {
        (Action::Receive(_), Citizen) => Some(Any),
        (Action::Receive(_), HotlineAgent | GridWorker | Operator | Mediator) => Some(Within),
        (
            Action::Register { .. }
            | Action::Reject
            | Action::Dispatch { .. }
            | Action::Close
            | Action::DecideExtension { .. }
            | Action::Escalate
            | Action::Merge { .. }
            | Action::Suspend
            | Action::Resume
            | Action::Void
            | Action::Reopen,
            Operator,
        ) => Some(Manages),
        (Action::Accept, DepartmentHandler) => Some(Assigned),
        (Action::ReportBack | Action::Return | Action::RequestExtension { .. }, DepartmentHandler) => {
            Some(Lead)
        }
        (Action::Verify { .. }, GridWorker) => Some(Within),
        (Action::Verify { .. }, Operator) => Some(Manages),
        (Action::Rate { .. }, Citizen) => Some(Reporter),
        // 回访: the hotline calls the reporter back and records the rating.
        (Action::Rate { .. }, HotlineAgent) => Some(Within),
        (Action::ResolveOnSpot { .. }, GridWorker) => Some(Within),
        (Action::Supervise { .. }, Operator) => Some(Above),
        (Action::Supervise { .. }, Leader) => Some(Manages),
        (Action::Instruct, Leader) => Some(Within),
        _ => None,
    }
}

fn check_relation(case: &CaseState, actor: &Actor, relation: Relation) -> Result<(), DomainError> {
    let allowed = match (relation, actor) {
        (Relation::Any, _) => true,
        (Relation::Reporter, Actor::Reporter) => true,
        (Relation::Reporter, Actor::User { user, .. }) => {
            return if case.reporter.user == Some(*user) {
                Ok(())
            } else {
                Err(ErrorKind::NotReporter.into())
            }
        }
        (Relation::Within | Relation::Manages | Relation::Above, Actor::User { scope, .. }) => {
            let Scope::Jurisdiction(j) = scope else {
                return Err(ErrorKind::OutOfJurisdiction.into());
            };
            return jurisdiction_fits(case, *j, relation);
        }
        (Relation::Assigned | Relation::Lead, Actor::User { scope, .. }) => {
            let Scope::Department(d) = scope else {
                return Err(ErrorKind::DepartmentNotAssigned.into());
            };
            return department_fits(case, *d, relation);
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ErrorKind::RoleNotPermitted.into())
    }
}

fn jurisdiction_fits(case: &CaseState, j: JurisdictionId, relation: Relation) -> Result<(), DomainError> {
    let (Some(depth), Some(owner_depth)) = (case.depth_of(j), case.depth_of(case.owner)) else {
        return Err(ErrorKind::OutOfJurisdiction.into());
    };
    let fits = match relation {
        Relation::Manages => depth <= owner_depth,
        Relation::Above => depth < owner_depth,
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(DomainError::with_detail(
            ErrorKind::OutOfJurisdiction,
            "your level does not manage the command center that owns this case",
        ))
    }
}

fn department_fits(case: &CaseState, d: DepartmentId, relation: Relation) -> Result<(), DomainError> {
    if case.lead == Some(d) {
        return Ok(());
    }
    if case.assisting.contains(&d) {
        return if relation == Relation::Assigned {
            Ok(())
        } else {
            Err(ErrorKind::NotLeadDepartment.into())
        };
    }
    Err(ErrorKind::DepartmentNotAssigned.into())
}
