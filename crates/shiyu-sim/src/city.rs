//! 南通 as a demo city: its real divisions (city, 8 county-level units, 136 townships and streets, 2,005
//! communities and villages, from `data/nantong/divisions.csv`), departments at city and county level, a
//! matter catalog and users for every role.

use shiyu_domain::{
    Basis, Category, Department, DepartmentId, DuplicateRule, Jurisdiction, JurisdictionId, Level, Matter,
    Priority, Responsibility, Role, Scope, StageLimits, TimeLimit, User, UserId,
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
        let mut path = Vec::new();
        let mut next = Some(id);
        while let Some(current) = next.and_then(|j| self.jurisdiction(j)) {
            path.push(current.id);
            next = current.parent;
        }
        path.reverse();
        path
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

/// Kinds of department, with the name each takes after its government's name.
pub const DEPARTMENT_KINDS: &[(&str, &str)] = &[
    ("urban_management", "城市管理局"),
    ("housing", "住房和城乡建设局"),
    ("ecology", "生态环境局"),
    ("market_regulation", "市场监督管理局"),
    ("public_security", "公安局"),
    ("emergency", "应急管理局"),
    ("civil_affairs", "民政局"),
    ("human_resources", "人力资源和社会保障局"),
    ("health", "卫生健康委员会"),
    ("transport", "交通运输局"),
    ("water", "水务局"),
    ("natural_resources", "自然资源和规划局"),
];

/// Public-service companies, which serve the whole city from the city level.
pub const SERVICE_COMPANIES: &[(&str, &str)] =
    &[("gas", "燃气公司"), ("power", "供电公司"), ("water_supply", "供水公司")];

fn minutes(register: u32, dispatch: u32, accept: u32, handle: u32, verify: u32, basis: Basis) -> StageLimits {
    let limit = |m: u32| TimeLimit { minutes: m, basis };
    StageLimits {
        register: limit(register),
        dispatch: limit(dispatch),
        accept: limit(accept),
        handle: limit(handle),
        verify: limit(verify),
        close: limit(verify),
    }
}

/// The demo catalog: (category code, category name, [(matter code, name, lead kind, assisting kinds,
/// priority, limits)]).
fn catalog() -> (Vec<Category>, Vec<Matter>) {
    let ordinary = minutes(60, 60, 120, 3 * 420, 420, Basis::Working);
    let quick = minutes(30, 30, 60, 420, 240, Basis::Working);
    let emergency = minutes(10, 10, 20, 240, 120, Basis::Natural);
    let dispute = minutes(60, 120, 240, 5 * 420, 420, Basis::Working);
    type Row = (&'static str, &'static str, &'static str, &'static [&'static str], Priority, StageLimits);
    let groups: Vec<(&str, &str, Vec<Row>)> = vec![
        (
            "city_appearance",
            "市容环境",
            vec![
                (
                    "street_vending",
                    "占道经营",
                    "urban_management",
                    &["market_regulation"],
                    Priority::Normal,
                    quick,
                ),
                ("exposed_garbage", "暴露垃圾", "urban_management", &[], Priority::Normal, quick),
                ("illegal_advertising", "违规广告", "urban_management", &[], Priority::Low, ordinary),
            ],
        ),
        (
            "construction",
            "城乡建设",
            vec![
                (
                    "illegal_building",
                    "违章搭建",
                    "urban_management",
                    &["housing", "natural_resources"],
                    Priority::High,
                    ordinary,
                ),
                ("construction_noise", "夜间施工噪音", "housing", &["ecology"], Priority::Normal, quick),
                ("road_damage", "道路破损", "transport", &[], Priority::Normal, ordinary),
            ],
        ),
        (
            "environment",
            "生态环境",
            vec![
                ("noise_nuisance", "噪音扰民", "ecology", &["public_security"], Priority::Normal, quick),
                ("exhaust_pollution", "废气污染", "ecology", &[], Priority::High, ordinary),
                ("river_pollution", "河道污染", "water", &["ecology"], Priority::High, ordinary),
            ],
        ),
        (
            "public_utilities",
            "公用设施",
            vec![
                ("gas_leak", "燃气泄漏", "gas", &["emergency"], Priority::Urgent, emergency),
                ("power_outage", "停电", "power", &[], Priority::High, emergency),
                ("water_outage", "停水", "water_supply", &[], Priority::High, emergency),
                ("missing_manhole_cover", "井盖缺失", "urban_management", &[], Priority::Urgent, emergency),
            ],
        ),
        (
            "safety_hazards",
            "安全隐患",
            vec![
                (
                    "blocked_fire_lane",
                    "消防通道堵塞",
                    "emergency",
                    &["public_security"],
                    Priority::High,
                    quick,
                ),
                ("unsafe_building", "房屋安全隐患", "housing", &["emergency"], Priority::High, ordinary),
            ],
        ),
        (
            "disputes",
            "矛盾纠纷",
            vec![
                ("neighbour_dispute", "邻里纠纷", "civil_affairs", &[], Priority::Normal, dispute),
                ("wage_arrears", "劳资纠纷", "human_resources", &[], Priority::High, dispute),
                ("property_management_dispute", "物业纠纷", "housing", &[], Priority::Normal, dispute),
            ],
        ),
        (
            "livelihood",
            "民生服务",
            vec![
                ("elderly_care", "养老服务", "civil_affairs", &[], Priority::Normal, ordinary),
                ("medical_service", "医疗卫生", "health", &[], Priority::Normal, ordinary),
            ],
        ),
        (
            "market_order",
            "市场监管",
            vec![
                ("food_safety", "食品安全", "market_regulation", &["health"], Priority::High, quick),
                ("price_fraud", "价格欺诈", "market_regulation", &[], Priority::Normal, ordinary),
            ],
        ),
    ];
    let mut categories = Vec::new();
    let mut matters = Vec::new();
    for (code, name, rows) in groups {
        categories.push(Category { code: code.into(), name: name.into() });
        for (matter, matter_name, lead, assisting, priority, limits) in rows {
            let responsibility = |level| Responsibility {
                level,
                lead: lead.into(),
                assisting: assisting.iter().map(|k| k.to_string()).collect(),
            };
            matters.push(Matter {
                code: matter.into(),
                name: matter_name.into(),
                category: code.into(),
                default_priority: priority,
                responsibilities: vec![responsibility(Level::County), responsibility(Level::City)],
                limits,
                // Urgent matters bring many reports of one event within hours; the rest accumulate over days.
                duplicates: if priority == Priority::Urgent {
                    DuplicateRule { radius_m: 300, window_hours: 6 }
                } else {
                    DuplicateRule::default()
                },
            });
        }
    }
    (categories, matters)
}

/// Builds 南通 from the shipped division list.
pub fn nantong() -> Result<City, DivisionError> {
    build(parse_divisions(NANTONG_DIVISIONS)?)
}

/// Builds a city's departments, catalog and users around its jurisdiction tree.
pub fn build(jurisdictions: Vec<Jurisdiction>) -> Result<City, DivisionError> {
    let city = jurisdictions
        .iter()
        .find(|j| j.level == Level::City)
        .cloned()
        .ok_or(DivisionError { line: 0, message: "the list has no city".into() })?;
    let governments: Vec<&Jurisdiction> = jurisdictions.iter().filter(|j| j.level <= Level::County).collect();
    let mut departments = Vec::new();
    for government in &governments {
        for (kind, suffix) in DEPARTMENT_KINDS {
            // A county's police is a branch of the city's bureau (公安分局).
            let suffix = if *kind == "public_security" && government.level == Level::County {
                "公安分局"
            } else {
                suffix
            };
            departments.push(Department {
                id: DepartmentId(departments.len() as i64 + 1),
                code: format!("{}-{kind}", government.code),
                name: format!("{}{suffix}", government.name),
                kind: (*kind).into(),
                jurisdiction: government.id,
            });
        }
    }
    for (kind, suffix) in SERVICE_COMPANIES {
        departments.push(Department {
            id: DepartmentId(departments.len() as i64 + 1),
            code: format!("{}-{kind}", city.code),
            name: format!("{}{suffix}", city.name.trim_end_matches('市')),
            kind: (*kind).into(),
            jurisdiction: city.id,
        });
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
    // Until grids are synthesised, each community's grid worker is bound to the community.
    for j in jurisdictions.iter().filter(|j| j.level == Level::Community) {
        add(format!("gw{}", j.code), format!("{}网格员", j.name), Role::GridWorker, within(j));
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
        let city = nantong().unwrap();
        assert!(city.matters.len() >= 20);
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
