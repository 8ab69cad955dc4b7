//! A throwaway PostgreSQL cluster for tests and benchmarks, started from the system's own binaries (`initdb`,
//! `pg_ctl`) on a private Unix socket and removed when dropped. Never a mock.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Executor as _};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct PgCluster {
    root: tempfile::TempDir,
    bin: PathBuf,
    as_postgres_user: bool,
}

const PORT: u16 = 5432;

impl PgCluster {
    /// Starts a cluster. `durable: false` turns fsync off, for tests that do not measure durability.
    pub fn start(durable: bool) -> Result<PgCluster, String> {
        let bin = find_binaries().ok_or(
            "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and on PATH); \
             install them with `apt-get install -y postgresql`",
        )?;
        let root = tempfile::Builder::new().prefix("shiyu-pg-").tempdir().map_err(|e| e.to_string())?;
        // initdb refuses to run as root: the server then runs as the `postgres` system user, in a folder it owns.
        let as_postgres_user = is_root();
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(root.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot hand the cluster folder to the postgres user (is there one?)".into());
            }
        }
        let cluster = PgCluster { root, bin, as_postgres_user };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "-D"],
            &data,
        )?;
        let fsync = if durable { "on" } else { "off" };
        let server_options = format!(
            "-k {} -c listen_addresses='' -p {PORT} -c fsync={fsync} -c max_connections=200 -c shared_buffers=256MB",
            cluster.root.path().display()
        );
        let log = cluster.root.path().join("server.log");
        let started = cluster.run(
            "pg_ctl",
            &["-w", "-t", "60", "-l", &log.display().to_string(), "-o", &server_options, "-D"],
            &data,
        );
        if let Err(error) = started {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{error}\n{log}"));
        }
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Runs a server binary with the arguments, the last of which is followed by `path`; `pg_ctl` gets `start`.
    fn run(&self, program: &str, args: &[&str], path: &Path) -> Result<(), String> {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command.args(args).arg(path);
        if program == "pg_ctl" {
            command.arg("start");
        }
        let output = command.output().map_err(|e| format!("{}: {e}", binary.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(&self.root.path().display().to_string())
            .port(PORT)
            .username("postgres")
            .database(database)
    }

    /// A URL for `--database`, pointing at the private socket.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@localhost:{PORT}/{database}?host={}", self.root.path().display())
    }

    /// Creates an empty database and returns its connection options.
    pub async fn create_database(&self, name: &str) -> Result<PgConnectOptions, sqlx::Error> {
        let mut admin = self.options("postgres").connect().await?;
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        Ok(self.options(name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let binary = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let _ = command.args(["-m", "immediate", "-D"]).arg(&data).arg("stop").output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(best) = versions.pop() {
        return Some(best);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(PathBuf::from)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

/// A small world for tests and benchmarks: one chain of jurisdictions down to a grid, a few departments, one
/// category with one matter, and a user of every role.
#[derive(Clone, Debug)]
pub struct SampleWorld {
    pub jurisdictions: Vec<shiyu_domain::Jurisdiction>,
    pub departments: Vec<shiyu_domain::Department>,
    pub categories: Vec<shiyu_domain::Category>,
    pub matters: Vec<shiyu_domain::Matter>,
    pub users: Vec<shiyu_domain::User>,
}

impl SampleWorld {
    pub const CITY: i64 = 1;
    pub const COUNTY: i64 = 2;
    pub const TOWNSHIP: i64 = 3;
    pub const COMMUNITY: i64 = 4;
    pub const GRID: i64 = 5;
    pub const OTHER_COUNTY: i64 = 6;
    pub const LEAD_DEPARTMENT: i64 = 101;
    pub const ASSISTING_DEPARTMENT: i64 = 102;
    /// 海门区's 城管: never a department for a case in 崇川区.
    pub const OTHER_COUNTY_DEPARTMENT: i64 = 103;

    pub fn new() -> SampleWorld {
        use shiyu_domain::{
            Category, Department, DepartmentId, Jurisdiction, JurisdictionId, Level, Matter, Priority,
            Responsibility, Role, Scope, StageLimits, User, UserId,
        };
        let place = |id: i64, code: &str, name: &str, level: Level, parent: Option<i64>| Jurisdiction {
            id: JurisdictionId(id),
            code: code.into(),
            name: name.into(),
            level,
            parent: parent.map(JurisdictionId),
        };
        let jurisdictions = vec![
            place(Self::CITY, "320600", "南通市", Level::City, None),
            place(Self::COUNTY, "320613", "崇川区", Level::County, Some(Self::CITY)),
            place(Self::TOWNSHIP, "320613001", "和平桥街道", Level::Township, Some(Self::COUNTY)),
            place(Self::COMMUNITY, "320613001001", "桃坞路社区", Level::Community, Some(Self::TOWNSHIP)),
            place(Self::GRID, "320613001001001", "桃坞路社区第一网格", Level::Grid, Some(Self::COMMUNITY)),
            place(Self::OTHER_COUNTY, "320614", "海门区", Level::County, Some(Self::CITY)),
        ];
        let department = |id: i64, code: &str, name: &str, kind: &str, county: i64| Department {
            id: DepartmentId(id),
            code: code.into(),
            name: name.into(),
            kind: kind.into(),
            jurisdiction: JurisdictionId(county),
        };
        let departments = vec![
            department(
                Self::LEAD_DEPARTMENT,
                "320613-cg",
                "崇川区城市管理局",
                "urban_management",
                Self::COUNTY,
            ),
            department(
                Self::ASSISTING_DEPARTMENT,
                "320613-sj",
                "崇川区市场监督管理局",
                "market_regulation",
                Self::COUNTY,
            ),
            department(
                Self::OTHER_COUNTY_DEPARTMENT,
                "320614-cg",
                "海门区城市管理局",
                "urban_management",
                Self::OTHER_COUNTY,
            ),
        ];
        let categories = vec![Category { code: "city_appearance".into(), name: "市容环境".into() }];
        let matters = vec![Matter {
            code: "street_vending".into(),
            name: "占道经营".into(),
            category: "city_appearance".into(),
            default_priority: Priority::Normal,
            responsibilities: vec![Responsibility {
                level: Level::County,
                lead: "urban_management".into(),
                assisting: vec!["market_regulation".into()],
            }],
            limits: StageLimits::default(),
            duplicates: Default::default(),
        }];
        let user = |id: i64, username: &str, role: Role, scope: Scope| User {
            id: UserId(id),
            username: username.into(),
            display_name: username.into(),
            role,
            scope,
        };
        let within = |j: i64| Scope::Jurisdiction(JurisdictionId(j));
        let users = vec![
            user(1, "citizen", Role::Citizen, Scope::Unbound),
            user(2, "hotline", Role::HotlineAgent, within(Self::CITY)),
            user(3, "gridworker", Role::GridWorker, within(Self::GRID)),
            user(4, "operator", Role::Operator, within(Self::COUNTY)),
            user(
                5,
                "handler",
                Role::DepartmentHandler,
                Scope::Department(DepartmentId(Self::LEAD_DEPARTMENT)),
            ),
            user(6, "mediator", Role::Mediator, within(Self::TOWNSHIP)),
            user(7, "leader", Role::Leader, within(Self::CITY)),
            user(8, "admin", Role::Admin, within(Self::CITY)),
            user(9, "operator_haimen", Role::Operator, within(Self::OTHER_COUNTY)),
        ];
        SampleWorld { jurisdictions, departments, categories, matters, users }
    }

    /// Writes the world's reference data into a store.
    pub async fn install(&self, store: &dyn crate::Store) -> crate::StoreResult<()> {
        store.put_jurisdictions(&self.jurisdictions).await?;
        store.put_departments(&self.departments).await?;
        store.put_categories(&self.categories).await?;
        store.put_matters(&self.matters).await?;
        store.put_users(&self.users).await?;
        store
            .put_map(&[], &[(shiyu_domain::JurisdictionId(Self::GRID), Self::GRID_OUTLINE.to_string())])
            .await
    }

    /// The sample grid's outline: 120.85–120.87°E, 32.00–32.02°N (about 1.9 by 2.2 km), around 桃坞路.
    pub const GRID_OUTLINE: &'static str = r#"{"type":"Polygon","coordinates":[[[120.85,32.0],[120.87,32.0],[120.87,32.02],[120.85,32.02],[120.85,32.0]]]}"#;

    pub fn actor(&self, username: &str) -> Option<shiyu_domain::Actor> {
        self.users.iter().find(|u| u.username == username).map(|u| shiyu_domain::Actor::User {
            user: u.id,
            role: u.role,
            scope: u.scope,
        })
    }

    /// A citizen's report of street vending in the sample grid, owned by the county's command center.
    pub fn report(&self, description: &str) -> shiyu_domain::Command {
        use shiyu_domain::{Action, Channel, GeoPoint, JurisdictionId, NewCase, Reporter};
        let path =
            [Self::CITY, Self::COUNTY, Self::TOWNSHIP, Self::COMMUNITY, Self::GRID].map(JurisdictionId);
        shiyu_domain::Command::new(Action::Receive(NewCase {
            channel: Channel::App,
            description: description.into(),
            address: Some("崇川区桃坞路".into()),
            location: Some(GeoPoint { lon: 120.86, lat: 32.01 }),
            path: path.to_vec(),
            owner: JurisdictionId(Self::COUNTY),
            reporter: Reporter { user: Some(shiyu_domain::UserId(1)), ..Reporter::default() },
            matter: None,
            priority: None,
        }))
    }
}

impl Default for SampleWorld {
    fn default() -> Self {
        SampleWorld::new()
    }
}
