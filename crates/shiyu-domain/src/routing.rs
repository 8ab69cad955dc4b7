//! Dispatch by the book ("群众吹哨、部门报到"): from where a case happened and what it is, which command center
//! registers it, which department leads and which assist, and who verifies on the spot — with the reasons
//! written out, because they become the case's 派遣依据.
//!
//! The rule: small matters stay low (小事不出村、大事不出镇). A case belongs first to the lowest command center
//! on its path (the township's). Once its matter is known, the matter catalog says which kind of department
//! holds it at each level; starting at that lowest level and going up, the first level where the catalog
//! names a holder and that level's government has such a department takes the case. The grid's worker (or,
//! without one, the community's) verifies.

use crate::error::{DomainError, ErrorKind};
use crate::org::{
    Department, DepartmentId, Jurisdiction, JurisdictionId, Level, Matter, Role, Scope, User, UserId,
};
use std::collections::HashMap;

/// The reference data routing reads.
#[derive(Clone, Copy, Debug)]
pub struct Directory<'a> {
    pub jurisdictions: &'a HashMap<JurisdictionId, Jurisdiction>,
    pub departments: &'a [Department],
    pub users: &'a [User],
}

/// Where a case goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The command center that registers and dispatches it.
    pub owner: JurisdictionId,
    pub lead: Option<DepartmentId>,
    pub assisting: Vec<DepartmentId>,
    pub verifier: Option<UserId>,
    /// Why, in words: recorded as the dispatch's basis (派遣依据).
    pub basis: String,
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::City => "市级",
        Level::County => "区县级",
        Level::Township => "乡镇（街道）级",
        Level::Community => "社区级",
        Level::Grid => "网格级",
        Level::MicroGrid => "微网格级",
    }
}

impl Directory<'_> {
    fn at_level<'p>(&self, path: &'p [JurisdictionId], level: Level) -> Option<&'p JurisdictionId> {
        path.iter().find(|id| self.jurisdictions.get(id).is_some_and(|j| j.level == level))
    }

    fn department(&self, kind: &str, government: JurisdictionId) -> Option<&Department> {
        self.departments
            .iter()
            .filter(|d| d.kind == kind && d.jurisdiction == government)
            .min_by_key(|d| d.id)
    }

    fn name(&self, id: JurisdictionId) -> &str {
        self.jurisdictions.get(&id).map_or("", |j| j.name.as_str())
    }

    /// The grid worker of the deepest grid-level place on the path, or else of its community.
    fn verifier(&self, path: &[JurisdictionId]) -> Option<&User> {
        path.iter().rev().find_map(|place| {
            self.users
                .iter()
                .filter(|u| u.role == Role::GridWorker && u.scope == Scope::Jurisdiction(*place))
                .min_by_key(|u| u.id)
        })
    }
}

/// Routes a case that happened at `path` (city first). Without a matter, only the owner and the verifier
/// are decided (the center registers it and names the matter first).
pub fn route(
    directory: Directory<'_>,
    path: &[JurisdictionId],
    matter: Option<&Matter>,
) -> Result<Route, DomainError> {
    let verifier = directory.verifier(path);
    let mut route = match matter {
        Some(matter) => route_to_departments(directory, path, matter)?,
        None => {
            let owner = lowest_center(directory, path)?;
            Route {
                owner,
                lead: None,
                assisting: Vec::new(),
                verifier: None,
                basis: format!("属地受理：{}指挥中心", directory.name(owner)),
            }
        }
    };
    route.verifier = verifier.map(|u| u.id);
    route.basis = format!("{}；{}", route.basis, verifier_note(verifier));
    Ok(route)
}

/// The reason recorded for who verifies on the spot.
pub fn verifier_note(verifier: Option<&User>) -> String {
    match verifier {
        Some(user) => format!("核查：{}（{}）", user.display_name, user.username),
        None => "核查：该处无网格员，由指挥中心核查".to_string(),
    }
}

fn invalid_path() -> DomainError {
    DomainError::with_detail(ErrorKind::JurisdictionPathInvalid, "the place is not in the jurisdiction tree")
}

fn lowest_center(directory: Directory<'_>, path: &[JurisdictionId]) -> Result<JurisdictionId, DomainError> {
    path.iter()
        .rev()
        .find(|id| directory.jurisdictions.get(id).is_some_and(|j| j.level.has_command_center()))
        .copied()
        .ok_or_else(invalid_path)
}

/// The departments part of [`route`], without the verifier. It depends only on the lowest command center on
/// the path and the matter, so callers that route many cases (the simulator) may remember it by those two.
pub fn route_to_departments(
    directory: Directory<'_>,
    path: &[JurisdictionId],
    matter: &Matter,
) -> Result<Route, DomainError> {
    let lowest_center = lowest_center(directory, path)?;
    let start = directory.jurisdictions.get(&lowest_center).map(|j| j.level).ok_or_else(invalid_path)?;
    let mut reasons = vec![format!("事项「{}」", matter.name)];
    for level in [Level::Township, Level::County, Level::City].into_iter().filter(|l| *l <= start) {
        let Some(&government) = directory.at_level(path, level) else { continue };
        let Some(duty) = matter.responsibility_at(level) else {
            reasons.push(format!("{}权责清单无此事项，上移一级", level_name(level)));
            continue;
        };
        let Some(lead) = directory.department(&duty.lead, government) else {
            reasons.push(format!("{}无{}部门，上移一级", directory.name(government), duty.lead));
            continue;
        };
        let mut assisting = Vec::new();
        let mut named = Vec::new();
        for kind in &duty.assisting {
            match directory.department(kind, government).filter(|d| d.id != lead.id) {
                Some(department) if !assisting.contains(&department.id) => {
                    assisting.push(department.id);
                    named.push(department.name.clone());
                }
                Some(_) => {}
                None => reasons.push(format!("{}无{kind}部门，不设该协办", directory.name(government))),
            }
        }
        reasons.push(format!("按{}权责由{}主办", level_name(level), lead.name));
        if !named.is_empty() {
            reasons.push(format!("{}协办", named.join("、")));
        }
        reasons.push(format!("{}指挥中心派遣", directory.name(government)));
        return Ok(Route {
            owner: government,
            lead: Some(lead.id),
            assisting,
            verifier: None,
            basis: reasons.join("；"),
        });
    }
    Err(DomainError::with_detail(ErrorKind::NoResponsibleDepartment, reasons.join("；")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{Priority, Responsibility, StageLimits};

    fn place(id: i64, code: &str, name: &str, level: Level, parent: Option<i64>) -> Jurisdiction {
        Jurisdiction {
            id: JurisdictionId(id),
            code: code.into(),
            name: name.into(),
            level,
            parent: parent.map(JurisdictionId),
        }
    }

    fn world() -> (HashMap<JurisdictionId, Jurisdiction>, Vec<Department>, Vec<User>) {
        let jurisdictions = [
            place(1, "320600", "南通市", Level::City, None),
            place(2, "320613", "崇川区", Level::County, Some(1)),
            place(3, "320613001", "和平桥街道", Level::Township, Some(2)),
            place(4, "320613001001", "桃坞路社区", Level::Community, Some(3)),
            place(5, "320613001001001", "桃坞路社区第一网格", Level::Grid, Some(4)),
        ]
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
        let department = |id: i64, kind: &str, name: &str, at: i64| Department {
            id: DepartmentId(id),
            code: format!("{at}-{kind}"),
            name: name.into(),
            kind: kind.into(),
            jurisdiction: JurisdictionId(at),
        };
        let departments = vec![
            department(10, "urban_management", "崇川区城市管理局", 2),
            department(11, "market_regulation", "崇川区市场监督管理局", 2),
            department(20, "gas", "南通燃气公司", 1),
            department(21, "urban_management", "南通市城市管理局", 1),
        ];
        let users = vec![User {
            id: UserId(7),
            username: "grid.5".into(),
            display_name: "王网格".into(),
            role: Role::GridWorker,
            scope: Scope::Jurisdiction(JurisdictionId(5)),
        }];
        (jurisdictions, departments, users)
    }

    fn matter(duties: Vec<Responsibility>) -> Matter {
        Matter {
            code: "m".into(),
            name: "占道经营".into(),
            category: "c".into(),
            default_priority: Priority::Normal,
            responsibilities: duties,
            limits: StageLimits::default(),
            duplicates: Default::default(),
        }
    }

    fn duty(level: Level, lead: &str, assisting: &[&str]) -> Responsibility {
        Responsibility {
            level,
            lead: lead.into(),
            assisting: assisting.iter().map(|s| s.to_string()).collect(),
        }
    }

    const PATH: [JurisdictionId; 5] =
        [JurisdictionId(1), JurisdictionId(2), JurisdictionId(3), JurisdictionId(4), JurisdictionId(5)];

    #[test]
    fn without_a_matter_the_township_center_takes_it_and_the_grid_worker_verifies() {
        let (j, d, u) = world();
        let route = route(Directory { jurisdictions: &j, departments: &d, users: &u }, &PATH, None).unwrap();
        assert_eq!(route.owner, JurisdictionId(3));
        assert_eq!((route.lead, route.verifier), (None, Some(UserId(7))));
        assert!(route.basis.contains("和平桥街道指挥中心"), "{}", route.basis);
    }

    #[test]
    fn a_matter_nobody_holds_at_the_township_goes_up_to_the_county() {
        let (j, d, u) = world();
        let vending = matter(vec![duty(Level::County, "urban_management", &["market_regulation", "health"])]);
        let route = route(Directory { jurisdictions: &j, departments: &d, users: &u }, &PATH, Some(&vending))
            .unwrap();
        assert_eq!(route.owner, JurisdictionId(2));
        assert_eq!(route.lead, Some(DepartmentId(10)));
        assert_eq!(route.assisting, vec![DepartmentId(11)]);
        for reason in [
            "乡镇（街道）级权责清单无此事项",
            "崇川区城市管理局主办",
            "崇川区市场监督管理局协办",
            "崇川区无health部门",
            "王网格",
        ] {
            assert!(route.basis.contains(reason), "{reason}: {}", route.basis);
        }
    }

    #[test]
    fn a_level_without_the_department_passes_the_case_up() {
        let (j, d, u) = world();
        let gas = matter(vec![duty(Level::County, "gas", &[]), duty(Level::City, "gas", &[])]);
        let route =
            route(Directory { jurisdictions: &j, departments: &d, users: &u }, &PATH, Some(&gas)).unwrap();
        assert_eq!((route.owner, route.lead), (JurisdictionId(1), Some(DepartmentId(20))));
        assert!(route.basis.contains("崇川区无gas部门，上移一级"), "{}", route.basis);
    }

    #[test]
    fn nobody_responsible_anywhere_is_a_clear_refusal() {
        let (j, d, u) = world();
        let orphan = matter(vec![duty(Level::County, "aviation", &[])]);
        let error = route(Directory { jurisdictions: &j, departments: &d, users: &u }, &PATH, Some(&orphan))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NoResponsibleDepartment);
        let unknown =
            route(Directory { jurisdictions: &j, departments: &d, users: &u }, &[JurisdictionId(99)], None);
        assert_eq!(unknown.unwrap_err().kind, ErrorKind::JurisdictionPathInvalid);
    }
}
