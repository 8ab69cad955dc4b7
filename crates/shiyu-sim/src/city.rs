//! 南通 as a demo city: its real divisions (city, 8 county-level units, 136 townships and streets, 2,005
//! communities and villages, from `data/nantong/divisions.csv`), departments at city and county level, a
//! matter catalog and users for every role.

use crate::catalog::{catalog, COUNTY_KINDS, SERVICE_KINDS, TOWNSHIP_KINDS};
use shiyu_domain::{
    Category, Department, DepartmentId, Jurisdiction, JurisdictionId, Level, Matter, Role, Scope, User,
    UserId,
};
use std::fmt;

/// The division list shipped in `data/nantong` (see `data/SOURCES.md`).
pub const NANTONG_DIVISIONS: &str = include_str!("../../../data/nantong/divisions.csv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivisionError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DivisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "divisions line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DivisionError {}

/// The citizen account `shiyu demo` prints: the simulator never reports as it, so whoever signs in with it
/// sees only the reports they made.
pub const DEMO_CITIZEN: &str = "citizen";

/// A whole city's reference data.
#[derive(Debug, Clone)]
pub struct City {
    pub jurisdictions: Vec<Jurisdiction>,
    pub departments: Vec<Department>,
    pub categories: Vec<Category>,
    pub matters: Vec<Matter>,
    pub users: Vec<User>,
}

impl City {
    pub fn jurisdiction(&self, id: JurisdictionId) -> Option<&Jurisdiction> {
        // Ids are assigned densely from 1 in list order.
        self.jurisdictions.get((id.0 - 1) as usize).filter(|j| j.id == id)
    }

    /// The chain from the city down to `id`.
    pub fn path_to(&self, id: JurisdictionId) -> Vec<JurisdictionId> {
        shiyu_domain::chain_to(id, |j| self.jurisdiction(j)).unwrap_or_default()
    }

    pub fn at_level(&self, level: Level) -> impl Iterator<Item = &Jurisdiction> {
        self.jurisdictions.iter().filter(move |j| j.level == level)
    }

    /// The department of `kind` serving `jurisdiction`'s county, or the city's when the county has none.
    pub fn department_for(&self, kind: &str, county: JurisdictionId) -> Option<&Department> {
        let city = self.jurisdictions.first()?.id;
        let of = |j: JurisdictionId| self.departments.iter().find(|d| d.kind == kind && d.jurisdiction == j);
        of(county).or_else(|| of(city))
    }

    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// Adds the grids and micro-grids drawn on the map, each grid with its grid worker (网格员). Micro-grids
    /// get none: routing walks up to the grid's worker.
    pub fn add_grids(&mut self, grids: &[Jurisdiction]) {
        for grid in grids {
            self.jurisdictions.push(grid.clone());
            if grid.level != Level::Grid {
                continue;
            }
            self.users.push(User {
                id: UserId(self.users.len() as i64 + 1),
                username: format!("gw{}", grid.code),
                display_name: format!("{}网格员", grid.name),
                role: Role::GridWorker,
                scope: Scope::Jurisdiction(grid.id),
            });
        }
    }
}

/// Parses a division list (`level,code,name,parent_code`) into a jurisdiction tree, with ids from 1, parents
/// first — the same checks as `shiyu import divisions` (`shiyu_geo::import::plan_divisions`); the error
/// names the first line at fault and lists every problem.
pub fn parse_divisions(csv: &str) -> Result<Vec<Jurisdiction>, DivisionError> {
    shiyu_geo::import::plan_divisions(&[], csv).map(|plan| plan.jurisdictions).map_err(|problems| {
        DivisionError {
            line: problems.first().map_or(0, |p| p.line),
            message: problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "),
        }
    })
}

/// Builds 南通 from the shipped division list.
pub fn nantong() -> Result<City, DivisionError> {
    build(parse_divisions(NANTONG_DIVISIONS)?)
}

/// 南通 with one outline-less grid per community (`{community code}01`, `{name}第一网格`): enough for the
/// simulator where the synthesised map (ten thousand grids, seconds to make) is not needed, as in tests.
pub fn nantong_with_a_grid_per_community() -> Result<City, DivisionError> {
    let mut city = nantong()?;
    let mut next = city.jurisdictions.iter().map(|j| j.id.0).max().unwrap_or(0);
    let grids: Vec<Jurisdiction> = city
        .at_level(Level::Community)
        .map(|community| {
            next += 1;
            Jurisdiction {
                id: shiyu_domain::JurisdictionId(next),
                code: format!("{}01", community.code),
                name: format!("{}第一网格", community.name),
                level: Level::Grid,
                parent: Some(community.id),
            }
        })
        .collect();
    city.add_grids(&grids);
    Ok(city)
}

/// Builds a city's departments, catalog and users around its jurisdiction tree.
pub fn build(jurisdictions: Vec<Jurisdiction>) -> Result<City, DivisionError> {
    let city = jurisdictions
        .iter()
        .find(|j| j.level == Level::City)
        .cloned()
        .ok_or(DivisionError { line: 0, message: "the list has no city".into() })?;
    let mut departments = Vec::new();
    let mut add = |kind: &str, name: String, at: &Jurisdiction| {
        departments.push(Department {
            id: DepartmentId(departments.len() as i64 + 1),
            code: format!("{}-{kind}", at.code),
            name,
            kind: kind.into(),
            jurisdiction: at.id,
        });
    };
    for government in jurisdictions.iter().filter(|j| j.level <= Level::County) {
        for (kind, suffix) in COUNTY_KINDS {
            // A county's police is a branch of the city's bureau (公安分局).
            let suffix = if *kind == "public_security" && government.level == Level::County {
                "公安分局"
            } else {
                suffix
            };
            add(kind, format!("{}{suffix}", government.name), government);
        }
    }
    // Small matters stay in the township (小事不出镇): its law enforcement, legal aid, police station and social
    // affairs office take them first.
    for township in jurisdictions.iter().filter(|j| j.level == Level::Township) {
        for (kind, suffix) in TOWNSHIP_KINDS {
            add(kind, format!("{}{suffix}", township.name), township);
        }
    }
    for (kind, suffix) in SERVICE_KINDS {
        add(kind, format!("{}{suffix}", city.name.trim_end_matches('市')), &city);
    }
    let (categories, matters) = catalog();

    let mut users = Vec::new();
    let mut add = |username: String, display_name: String, role: Role, scope: Scope| {
        users.push(User { id: UserId(users.len() as i64 + 1), username, display_name, role, scope });
    };
    let within = |j: &Jurisdiction| Scope::Jurisdiction(j.id);
    add("admin".into(), "系统管理员".into(), Role::Admin, within(&city));
    add("leader".into(), format!("{}领导", city.name), Role::Leader, within(&city));
    for n in 1..=3 {
        add(format!("hotline{n}"), format!("12345热线{n}号坐席"), Role::HotlineAgent, within(&city));
    }
    for j in jurisdictions.iter().filter(|j| j.level.has_command_center()) {
        add(format!("op{}", j.code), format!("{}指挥中心值班员", j.name), Role::Operator, within(j));
    }
    for j in jurisdictions.iter().filter(|j| j.level == Level::County) {
        add(format!("leader{}", j.code), format!("{}领导", j.name), Role::Leader, within(j));
        add(format!("mediator{}", j.code), format!("{}调解员", j.name), Role::Mediator, within(j));
    }
    for d in &departments {
        add(
            format!("dept{}", d.code),
            format!("{}处置员", d.name),
            Role::DepartmentHandler,
            Scope::Department(d.id),
        );
    }
    for n in 1..=20 {
        add(format!("citizen{n}"), format!("市民{n}"), Role::Citizen, Scope::Unbound);
    }
    add(DEMO_CITIZEN.to_string(), "市民（体验账号）".to_string(), Role::Citizen, Scope::Unbound);
    Ok(City { jurisdictions, departments, categories, matters, users })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nantong_has_its_real_divisions() {
        let city = nantong().unwrap();
        let count = |level| city.at_level(level).count();
        assert_eq!(count(Level::City), 1);
        assert_eq!(count(Level::County), 8);
        assert_eq!(count(Level::Township), 136);
        assert_eq!(count(Level::Community), 2005);
        let chongchuan = city.at_level(Level::County).find(|j| j.code == "320613").unwrap();
        assert_eq!(chongchuan.name, "崇川区");
        let community = city.at_level(Level::Community).next().unwrap();
        let path = city.path_to(community.id);
        assert_eq!(path.len(), 4);
        assert_eq!(path[0], city.jurisdictions[0].id);
    }

    #[test]
    fn every_matter_has_a_department_in_every_county_and_every_user_fits_their_role() {
        let mut city = nantong().unwrap();
        assert!(city.matters.len() >= 80);
        assert!(city.categories.len() >= 12);
        // The demo draws grids and micro-grids on the map; one of each stands in for them here, the grid
        // with its grid worker, the micro-grid without.
        let community = city.at_level(Level::Community).next().unwrap().clone();
        let grid = Jurisdiction {
            id: JurisdictionId(city.jurisdictions.len() as i64 + 1),
            code: format!("{}001", community.code),
            name: format!("{}第1网格", community.name),
            level: Level::Grid,
            parent: Some(community.id),
        };
        let micro_grid = Jurisdiction {
            id: JurisdictionId(grid.id.0 + 1),
            code: format!("{}01", grid.code),
            name: format!("{}第1微网格", grid.name),
            level: Level::MicroGrid,
            parent: Some(grid.id),
        };
        city.add_grids(&[grid.clone(), micro_grid.clone()]);
        assert_eq!(city.jurisdiction(grid.id), Some(&grid));
        assert_eq!(city.jurisdiction(micro_grid.id), Some(&micro_grid));
        assert_eq!(city.user(&format!("gw{}", grid.code)).unwrap().scope, Scope::Jurisdiction(grid.id));
        assert!(
            city.users.iter().all(|u| u.scope != Scope::Jurisdiction(micro_grid.id)),
            "a micro-grid has no worker of its own"
        );
        let townships = city.at_level(Level::Township).count();
        let township_departments = city
            .departments
            .iter()
            .filter(|d| city.jurisdiction(d.jurisdiction).unwrap().level == Level::Township);
        assert_eq!(township_departments.count(), townships * TOWNSHIP_KINDS.len());
        for kind in ["gas", "power", "water_supply"] {
            assert!(city.departments.iter().any(|d| d.kind == kind), "a {kind} company serves the city");
        }
        for county in city.at_level(Level::County) {
            for matter in &city.matters {
                let r = matter.responsibility_at(Level::County).unwrap();
                assert!(
                    city.department_for(&r.lead, county.id).is_some(),
                    "{} in {}",
                    matter.code,
                    county.name
                );
            }
        }
        assert!(city.users.iter().all(User::scope_fits_role));
        for role in Role::ALL {
            assert!(city.users.iter().any(|u| u.role == role), "{role}");
        }
        let mut names: Vec<&str> = city.users.iter().map(|u| u.username.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), city.users.len(), "usernames are unique");
    }

    #[test]
    fn broken_division_lists_are_refused_with_their_line() {
        let cases = [
            ("level,code,name,parent_code\ncity,1,A,\ncounty,2,B,9\n", 3),
            ("level,code,name,parent_code\ncity,1,A,\ncounty,1,B,1\n", 3),
            ("level,code,name,parent_code\ncity,1,A,\nplanet,2,B,1\n", 3),
            ("level,code,name,parent_code\ncity,1,A\n", 2),
            ("level,code,name,parent_code\ncounty,2,B,\n", 2),
        ];
        for (csv, line) in cases {
            assert_eq!(parse_divisions(csv).unwrap_err().line, line, "{csv}");
        }
    }
}
