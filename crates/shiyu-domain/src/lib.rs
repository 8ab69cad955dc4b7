//! Shiyu's domain: the governance structure, the closed loop of a case, its deadlines and who may act.
//!
//! Everything here is pure: no IO, no clock, no randomness. A change to a case is a [`Command`];
//! [`decide`] turns it into [`Event`]s or refuses it with a [`DomainError`]; [`apply`] folds events into a
//! [`CaseState`]. The store appends the events; read models consume them.

pub mod calendar;
pub mod case;
pub mod decide;
pub mod error;
pub mod org;
pub mod permissions;
pub mod routing;
pub mod sla;
pub mod time;

pub use calendar::{Basis, TimeLimit, WorkCalendar, YearDays};
pub use case::{
    apply, replay, Actor, AttachmentRef, CaseId, CaseState, Change, Channel, Deadline, Event, GeoPoint,
    Light, MatterRef, PlannedEscalation, Reporter, Signal, Status,
};
pub use decide::{decide, Action, Command, NewCase, Rules};
pub use error::{DomainError, ErrorKind, Reason};
pub use org::{
    chain_to, Category, Department, DepartmentId, DuplicateRule, Jurisdiction, JurisdictionId, Level, Matter,
    Priority, Responsibility, Role, Scope, Stage, StageLimits, User, UserId,
};
pub use permissions::{
    authorize, can_view, may_dispatch_to, may_merge_into, role_may, sees_handling, Capability,
};
pub use routing::{route, route_to_departments, verifier_note, Directory, Route};
pub use sla::{next_alarm, Alarm, AlarmKind, Audience, EscalationRule, EscalationRules, Notice, Trigger};
pub use time::{Date, Timestamp};
