//! The governance structure: jurisdictions, departments, the matter catalog, users and their roles.

use crate::calendar::TimeLimit;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Levels of the jurisdiction tree, from the top down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    City,
    County,
    Township,
    Community,
    Grid,
    MicroGrid,
}

impl Level {
    pub const ALL: [Level; 6] =
        [Level::City, Level::County, Level::Township, Level::Community, Level::Grid, Level::MicroGrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Community => "community",
            Level::Grid => "grid",
            Level::MicroGrid => "micro_grid",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.as_str() == text)
    }

    /// Whether a command center (指挥中心) may run at this level ("1 + 11 + 96": city, county, township).
    pub fn has_command_center(self) -> bool {
        self <= Level::Township
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JurisdictionId(pub i64);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jurisdiction {
    pub id: JurisdictionId,
    /// Statistical division code (GB/T 2260 style) or, for grids, the code the city assigned.
    pub code: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<JurisdictionId>,
}

/// The chain of jurisdictions from the top (the city) down to `id`, looked up through `lookup`; `None` when a
/// link is unknown or the chain is longer than any real tree (a cycle in bad data).
pub fn chain_to<'a>(
    id: JurisdictionId,
    lookup: impl Fn(JurisdictionId) -> Option<&'a Jurisdiction>,
) -> Option<Vec<JurisdictionId>> {
    let mut path = Vec::new();
    let mut next = Some(id);
    while let Some(current) = next {
        let jurisdiction = lookup(current)?;
        path.push(current);
        next = jurisdiction.parent;
        if path.len() > 16 {
            return None;
        }
    }
    path.reverse();
    Some(path)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DepartmentId(pub i64);

/// A functional department (职能部门), a township office or a public-service company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: DepartmentId,
    pub code: String,
    pub name: String,
    /// The kind of department, shared across levels (e.g. `urban_management` for every 城管局), which the
    /// matter catalog's responsibilities name.
    pub kind: String,
    /// The jurisdiction whose government the department belongs to; its level is the department's level.
    pub jurisdiction: JurisdictionId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    High,
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Urgent, Priority::High, Priority::Normal, Priority::Low];
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub code: String,
    pub name: String,
}

/// Which kind of department leads a matter at one level, and which assist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responsibility {
    pub level: Level,
    pub lead: String,
    #[serde(default)]
    pub assisting: Vec<String>,
}

/// Stages of the closed loop that run against a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Register,
    Dispatch,
    Accept,
    Handle,
    Verify,
    Close,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Register => "register",
            Stage::Dispatch => "dispatch",
            Stage::Accept => "accept",
            Stage::Handle => "handle",
            Stage::Verify => "verify",
            Stage::Close => "close",
        }
    }
}

/// The time limit of each stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageLimits {
    pub register: TimeLimit,
    pub dispatch: TimeLimit,
    pub accept: TimeLimit,
    pub handle: TimeLimit,
    pub verify: TimeLimit,
    pub close: TimeLimit,
}

impl StageLimits {
    pub fn of(&self, stage: Stage) -> TimeLimit {
        match stage {
            Stage::Register => self.register,
            Stage::Dispatch => self.dispatch,
            Stage::Accept => self.accept,
            Stage::Handle => self.handle,
            Stage::Verify => self.verify,
            Stage::Close => self.close,
        }
    }
}

impl Default for StageLimits {
    /// Limits for a case whose matter is not yet known: two working hours for each step of the center, three
    /// working days to handle.
    fn default() -> Self {
        StageLimits {
            register: TimeLimit::working_hours(2),
            dispatch: TimeLimit::working_hours(2),
            accept: TimeLimit::working_hours(2),
            handle: TimeLimit::working_hours(21),
            verify: TimeLimit::working_hours(7),
            close: TimeLimit::working_hours(7),
        }
    }
}

/// One entry of the matter catalog (事项清单 / 权责清单).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matter {
    pub code: String,
    pub name: String,
    pub category: String,
    pub default_priority: Priority,
    pub responsibilities: Vec<Responsibility>,
    pub limits: StageLimits,
    /// When a new report of this matter is likely the same as an open one.
    #[serde(default)]
    pub duplicates: DuplicateRule,
}

/// Reports of one matter within `radius_m` metres and `window_hours` hours of each other are compared as
/// possible duplicates (a gas leak is reported by many neighbours within the hour; a broken street lamp
/// by passers-by over days).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRule {
    pub radius_m: u32,
    pub window_hours: u32,
}

impl Default for DuplicateRule {
    fn default() -> Self {
        DuplicateRule { radius_m: 500, window_hours: 72 }
    }
}

impl Matter {
    /// The responsibility at `level`, if the catalog names a department kind there.
    pub fn responsibility_at(&self, level: Level) -> Option<&Responsibility> {
        self.responsibilities.iter().find(|r| r.level == level)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 群众
    Citizen,
    /// 12345 接线员
    HotlineAgent,
    /// 网格员
    GridWorker,
    /// 指挥中心值班员
    Operator,
    /// 职能部门处置人员
    DepartmentHandler,
    /// 调解员
    Mediator,
    /// 领导
    Leader,
    /// 管理员
    Admin,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Citizen,
        Role::HotlineAgent,
        Role::GridWorker,
        Role::Operator,
        Role::DepartmentHandler,
        Role::Mediator,
        Role::Leader,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::HotlineAgent => "hotline_agent",
            Role::GridWorker => "grid_worker",
            Role::Operator => "operator",
            Role::DepartmentHandler => "department_handler",
            Role::Mediator => "mediator",
            Role::Leader => "leader",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// What [`Role::may_work_at`] asks, whoever creates the user (the API or `shiyu user add`).
    pub const WORK_LEVEL_RULE: &'static str = "a grid worker works for a community, a grid or a micro-grid";
    /// [`Role::WORK_LEVEL_RULE`] in Chinese.
    pub const WORK_LEVEL_RULE_ZH: &'static str = "网格员须属于社区、网格或微网格";

    /// Whether a user of this role may work for a jurisdiction of `level`. A grid worker patrols a grid, its
    /// micro-grids or, as a community's 网格长, the community's grids: placed at a township or above they would
    /// verify and see every case of a whole district. The other roles work at any level.
    pub fn may_work_at(self, level: Level) -> bool {
        match self {
            Role::GridWorker => matches!(level, Level::Community | Level::Grid | Level::MicroGrid),
            _ => true,
        }
    }

    /// What a user of this role is bound to.
    pub fn binding(self) -> Binding {
        match self {
            Role::Citizen => Binding::Nothing,
            Role::DepartmentHandler => Binding::Department,
            _ => Binding::Jurisdiction,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Nothing,
    Jurisdiction,
    Department,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// Where a user's authority lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Citizens and the system.
    Unbound,
    Jurisdiction(JurisdictionId),
    Department(DepartmentId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
}

impl User {
    /// What a username and display name must be, whoever creates the user (the API or `shiyu user add`).
    pub const NAME_RULE: &'static str =
        "usernames are 3–64 letters, digits, `_`, `-` or `.`; display names 1–64 characters";
    /// [`User::NAME_RULE`] in Chinese.
    pub const NAME_RULE_ZH: &'static str = "用户名须为3到64个字母、数字或 _ - .，显示名1到64个字符";

    /// Whether `username` and `display_name` follow [`User::NAME_RULE`].
    pub fn names_are_valid(username: &str, display_name: &str) -> bool {
        (3..=64).contains(&username.chars().count())
            && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !display_name.trim().is_empty()
            && display_name.chars().count() <= 64
            && !display_name.chars().any(char::is_control)
    }

    /// A user's scope must match what their role is bound to.
    pub fn scope_fits_role(&self) -> bool {
        matches!(
            (self.role.binding(), self.scope),
            (Binding::Nothing, Scope::Unbound)
                | (Binding::Jurisdiction, Scope::Jurisdiction(_))
                | (Binding::Department, Scope::Department(_))
        )
    }
}
