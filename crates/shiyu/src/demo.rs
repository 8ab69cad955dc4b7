//! `shiyu demo`: builds 南通 into an empty data folder (divisions, map, departments, catalog, users, demo
//! accounts, a simulated history), then serves it and keeps new reports coming and open cases moving.

use crate::config::Config;
use crate::{clock, serve};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use shiyu_domain::{CaseId, Rules, Status, Timestamp};
use shiyu_sim::history::{Privacy, SimulateOptions, Simulation, Story, World};
use shiyu_store::{CaseQuery, CaseService, Journal, Store};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct DemoOptions {
    pub listen: Option<String>,
    /// New reports per second while serving.
    pub rate: f64,
    pub no_serve: bool,
    /// Cases of history simulated when the city is built.
    pub cases: u64,
    pub days: u32,
    pub seed: u64,
}

/// One demo sign-in, as printed and as written to `demo-accounts.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoAccount {
    pub role: String,
    pub username: String,
    pub password: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jurisdiction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub department: Option<String>,
}

pub const ACCOUNTS_FILE: &str = "demo-accounts.json";

/// The demo city's map is always drawn the same way; `--seed` varies only its history.
const MAP_SEED: u64 = 2026;

/// The sealer and tracking codes of this deployment, for the simulator.
pub struct DeploymentPrivacy(pub shiyu_auth::Sealer);

impl Privacy for DeploymentPrivacy {
    fn seal(&self, plain: &str) -> Option<String> {
        self.0.seal(plain).ok()
    }

    fn tracking_code(&self, at: Timestamp) -> String {
        shiyu_auth::tracking_code(i64::from(at.to_beijing().0 .0))
    }
}

/// Written when a demo city is complete; only such a city is reused.
const BUILT_SETTING: &str = "demo_city_built";

pub async fn run(
    store: Arc<dyn Store>,
    rules: Rules,
    config: &Config,
    options: DemoOptions,
) -> anyhow::Result<()> {
    // Before anything is written: a city half built for want of a key would be reused as if complete.
    serve::ensure_key(config, store.as_ref()).await?;
    let accounts_path = config.storage.data_dir.join(ACCOUNTS_FILE);
    let cases = store.count_cases().await?;
    if store.setting(BUILT_SETTING).await?.is_some() {
        say!("reusing the city already in the data folder ({cases} cases)");
    } else if store.jurisdictions().await?.is_empty() && store.users().await?.is_empty() && cases == 0 {
        build(store.clone(), rules.clone(), config, &options, &accounts_path).await?;
        store.put_setting(BUILT_SETTING, "{}", clock::now()).await?;
    } else {
        anyhow::bail!(
            "the data folder holds data that `shiyu demo` did not finish building — a build that was stopped, one \
             still running, or data of another deployment — and the demo never builds over it: give it an \
             empty folder with --data, or remove {} and run it again / 数据目录中已有未由demo完整建成的数据，请换用空目录",
            config.storage.data_dir.display()
        );
    }
    let accounts: Vec<DemoAccount> = match std::fs::read_to_string(&accounts_path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", accounts_path.display()))?
        }
        Err(_) => Vec::new(),
    };
    if options.no_serve {
        print_accounts(&accounts, &accounts_path, None)?;
        return Ok(());
    }
    let service = CaseService::new(store.clone(), Arc::new(rules.clone()));
    let clock = clock::configured()?;
    let state = shiyu_web::AppState::new(
        service.clone(),
        serve::sealer(config)?,
        clock.clone(),
        serve::web_settings(config),
    )
    .await?;
    let _background = serve::start_background(&service, config, state.sealer.clone(), clock).await?;
    let listen = options.listen.clone().unwrap_or_else(|| config.server.listen.clone());
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    print_accounts(&accounts, &accounts_path, Some(&format!("http://{address}")))?;
    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), rules, options.seed).await?);
    let privacy: Arc<dyn Privacy> = Arc::new(DeploymentPrivacy(serve::sealer(config)?));
    let feed = tokio::spawn(live(service, store, world, privacy, options.rate, options.seed));
    say!("live: about {} new reports a second, and open cases move on (Ctrl-C stops)", options.rate);
    shiyu_web::serve(listener, state, serve::shutdown_signal()).await?;
    feed.abort();
    say!("shiyu demo stopped");
    Ok(())
}

fn print_accounts(accounts: &[DemoAccount], path: &Path, address: Option<&str>) -> anyhow::Result<()> {
    if let Some(address) = address {
        say!("\n南通 command center serving on {address}  (API description: {address}/api/openapi.json)");
    }
    if accounts.is_empty() {
        say!("no demo accounts ({} is missing): create users with `shiyu user add`", path.display());
        return Ok(());
    }
    say!("demo accounts (also in {}):", path.display());
    for a in accounts {
        let place = a.jurisdiction.as_deref().or(a.department.as_deref()).unwrap_or("");
        say!("  {:<19} {:<32} {}  {}", a.role, a.username, a.password, place);
    }
    if let (Some(address), Some(operator)) = (address, accounts.iter().find(|a| a.role == "operator")) {
        say!(
            "sign in:  curl -c cookies.txt -H 'content-type: application/json' -d '{{\"username\":\"{}\",\"password\":\"{}\"}}' {address}/api/session",
            operator.username,
            operator.password
        );
    }
    Ok(())
}

/// Builds the whole city into an empty store, with `options.cases` cases of history.
async fn build(
    store: Arc<dyn Store>,
    rules: Rules,
    config: &Config,
    options: &DemoOptions,
    accounts_path: &Path,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let city = install_city(store.as_ref()).await?;
    say!(
        "built 南通: {} jurisdictions ({} grids and {} micro-grids drawn inside the real county boundaries), {} departments, {} matters in {} categories, {} users ({:.1} s)",
        city.jurisdictions.len(),
        city.at_level(shiyu_domain::Level::Grid).count(),
        city.at_level(shiyu_domain::Level::MicroGrid).count(),
        city.departments.len(),
        city.matters.len(),
        city.categories.len(),
        city.users.len(),
        started.elapsed().as_secs_f64()
    );
    let accounts = demo_accounts(store.as_ref(), &city).await?;
    serve::write_private(accounts_path, &serde_json::to_string_pretty(&accounts)?)?;

    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), rules, options.seed).await?);
    let privacy: Arc<dyn Privacy> = Arc::new(DeploymentPrivacy(serve::sealer(config)?));
    let simulate = SimulateOptions {
        cases: options.cases,
        days: options.days.max(1),
        seed: options.seed,
        until: clock::now(),
        first_id: store.reserve_case_ids(options.cases, clock::now()).await?.0,
    };
    let history_started = std::time::Instant::now();
    let mut progress = crate::progress::SimulationProgress::new(&simulate);
    let (tally, truth) =
        shiyu_sim::simulate::simulate(store.clone(), world, privacy, simulate, |step| progress.show(step))
            .await?;
    // The simulated past is not news: the notifier starts after it, so that nobody's inbox opens on two months
    // of it (the live feed brings new notices soon enough).
    let last = store.last_seq().await?;
    store.follow(shiyu_sla::notifier::FOLLOWER, last, Vec::new(), Vec::new()).await?;
    let truth_path = config.storage.data_dir.join("simulation-truth.json");
    std::fs::write(&truth_path, serde_json::to_string_pretty(&truth)?)?;
    say!(
        "simulated {} days of history: {} cases, {} events ({:.1} s); injected patterns in {}",
        simulate.days,
        tally.cases,
        tally.events,
        history_started.elapsed().as_secs_f64(),
        truth_path.display()
    );
    if let Some((_, evaluation)) = shiyu_web::classifier::retrain(store.as_ref(), clock::now()).await? {
        say!(
            "trained the matter classifier on {} registered cases: {:.1}% of {} held-out descriptions right first time",
            evaluation.trained_on + evaluation.held_out,
            evaluation.top1 * 100.0,
            evaluation.held_out
        );
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for (status, count) in store.case_counts_by_status().await? {
        by_status.insert(status, count);
    }
    let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    say!("cases by state: {}", counts.join(", "));
    Ok(())
}

/// Writes 南通 into an empty store: divisions, the map with its synthesised grids and micro-grids,
/// departments, the catalog and users (a grid worker per grid).
pub async fn install_city(store: &dyn Store) -> anyhow::Result<shiyu_sim::city::City> {
    let mut city = shiyu_sim::city::nantong().context("reading the 南通 division list")?;
    store.put_jurisdictions(&city.jurisdictions).await?;
    store.put_departments(&city.departments).await?;
    store.put_categories(&city.categories).await?;
    store.put_matters(&city.matters).await?;
    let map = shiyu_sim::map::nantong_map(&city, MAP_SEED).map_err(anyhow::Error::msg)?;
    store.put_map(&map.jurisdictions, &map.shapes).await?;
    city.add_grids(&map.jurisdictions);
    store.put_users(&city.users).await?;
    Ok(city)
}

/// One account per role, each with a new random password, stored as an argon2id hash.
async fn demo_accounts(store: &dyn Store, city: &shiyu_sim::city::City) -> anyhow::Result<Vec<DemoAccount>> {
    let chongchuan = "320613";
    let grid_worker = city
        .users
        .iter()
        .find(|u| u.username.starts_with(&format!("gw{chongchuan}")))
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let chosen = [
        "admin".to_string(),
        "leader".to_string(),
        format!("op{chongchuan}"),
        "hotline1".to_string(),
        format!("dept{chongchuan}-urban_management"),
        grid_worker,
        format!("mediator{chongchuan}"),
        shiyu_sim::city::DEMO_CITIZEN.to_string(),
    ];
    let jurisdictions: std::collections::HashMap<_, _> =
        city.jurisdictions.iter().map(|j| (j.id, j)).collect();
    let departments: std::collections::HashMap<_, _> = city.departments.iter().map(|d| (d.id, d)).collect();
    let mut accounts = Vec::new();
    for username in chosen {
        let Some(user) = city.user(&username) else { continue };
        let password = demo_password();
        store.set_password(user.id, &shiyu_auth::hash_password(&password)?).await?;
        let (jurisdiction, department) = match user.scope {
            shiyu_domain::Scope::Jurisdiction(j) => {
                (jurisdictions.get(&j).map(|j| format!("{} {}", j.code, j.name)), None)
            }
            shiyu_domain::Scope::Department(d) => {
                (None, departments.get(&d).map(|d| format!("{} {}", d.id.0, d.name)))
            }
            shiyu_domain::Scope::Unbound => (None, None),
        };
        accounts.push(DemoAccount {
            role: user.role.as_str().to_string(),
            username: user.username.clone(),
            password,
            display_name: user.display_name.clone(),
            jurisdiction,
            department,
        });
    }
    Ok(accounts)
}

fn demo_password() -> String {
    loop {
        let candidate: String =
            shiyu_auth::random_token().chars().filter(char::is_ascii_alphanumeric).take(16).collect();
        if shiyu_auth::check_password_policy(&candidate).is_ok() {
            return candidate;
        }
    }
}

/// Keeps the city alive: new reports at about `rate` a second, and every open case it knows takes its next
/// step within a minute or two (the demo's clock runs faster than a real command center's).
async fn live(
    service: CaseService,
    store: Arc<dyn Store>,
    world: Arc<World>,
    privacy: Arc<dyn Privacy>,
    rate: f64,
    seed: u64,
) {
    let now = clock::now();
    let options = SimulateOptions { cases: 0, days: 1, seed: seed ^ now.0 as u64, until: now, first_id: 0 };
    let mut simulation = Simulation::new(&world, privacy.as_ref(), options);
    let mut due: BinaryHeap<Reverse<(Timestamp, i64)>> = BinaryHeap::new();
    // Each case the feed drives, with the version it last left the case at.
    let mut stories: std::collections::HashMap<i64, (Story, u64)> = std::collections::HashMap::new();
    // Carry on the most recent open cases of the history, so that what is on screen moves.
    let query = CaseQuery {
        statuses: Status::ALL.iter().copied().filter(|s| s.is_active()).collect(),
        limit: 300,
        ..CaseQuery::default()
    };
    if let Ok(cases) = store.list_cases(&query).await {
        for (id, state) in cases {
            if let Some(story) = simulation.story_of(&state) {
                stories.insert(id.0, (story, state.version));
                due.push(Reverse((later(now, rand_within(id.0, 120)), id.0)));
            }
        }
    }
    let tick = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut interval = tokio::time::interval(tick.min(Duration::from_secs(1)));
    let mut owed = 0.0;
    loop {
        interval.tick().await;
        let now = clock::now();
        owed += rate.max(0.0) * interval.period().as_secs_f64();
        while owed >= 1.0 {
            owed -= 1.0;
            let (mut step, story) = simulation.live_report(now);
            step.command.origin = Some(LIVE_FEED.into());
            if let Ok(created) = service.receive(None, &step.command, &step.actor, now).await {
                due.push(Reverse((later(now, 10 + created.id.0 % 50), created.id.0)));
                stories.insert(created.id.0, (story, created.state.version));
            }
        }
        while let Some(Reverse((at, id))) = due.peek().copied() {
            if at > now {
                break;
            }
            due.pop();
            let Some((story, left_at)) = stories.get(&id).cloned() else { continue };
            let Ok(state) = service.load(CaseId(id)).await else { continue };
            // A case a person has acted on since is theirs now: the feed neither acts in their name (the demo
            // accounts are the feed's cast too) nor second-guesses their choices of matter or department.
            if state.version != left_at && taken_over(store.as_ref(), CaseId(id), left_at).await {
                stories.remove(&id);
                continue;
            }
            match simulation.plan_step(&state, &story) {
                Some(mut step) => {
                    step.command.origin = Some(LIVE_FEED.into());
                    let acted =
                        service.act(CaseId(id), Some(state.version), &step.command, &step.actor, now).await;
                    let version = acted.map_or(state.version, |after| after.version);
                    stories.insert(id, (story, version));
                    due.push(Reverse((later(now, 20 + rand_within(id, 90)), id)));
                }
                None => {
                    stories.remove(&id);
                }
            }
        }
    }
}

/// The origin the live feed's commands carry, so that its steps are told apart from a person's.
const LIVE_FEED: &str = "shiyu demo";

/// Whether someone other than the feed and the deadline engine has acted on the case since `version`.
async fn taken_over(store: &dyn Store, id: CaseId, version: u64) -> bool {
    let Ok(history) = store.case_history(id).await else { return true };
    history.iter().filter(|e| e.version > version).any(|e| {
        matches!(e.event.actor, shiyu_domain::Actor::User { .. })
            && e.event.origin.as_deref() != Some(LIVE_FEED)
    })
}

/// A spread of waits that differs by case without another random source.
fn rand_within(id: i64, seconds: i64) -> i64 {
    (id.wrapping_mul(2_654_435_761) >> 7).rem_euclid(seconds.max(1))
}

fn later(now: Timestamp, seconds: i64) -> Timestamp {
    Timestamp(now.0 + seconds * 1000)
}

/// `shiyu simulate`: a history of `cases` cases over `days` days up to now, after the store's last case,
/// with a progress bar; the injected anomalies go to `truth_path`.
pub async fn simulate(
    store: Arc<dyn Store>,
    rules: Rules,
    config: &Config,
    cases: u64,
    days: u32,
    seed: u64,
    truth_path: &Path,
) -> anyhow::Result<()> {
    if store.jurisdictions().await?.is_empty() {
        anyhow::bail!("the data folder has no city yet: build one with `shiyu demo --no-serve` first");
    }
    let sealer = serve::ensure_key(config, store.as_ref()).await?;
    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), rules, seed).await?);
    let privacy: Arc<dyn Privacy> = Arc::new(DeploymentPrivacy(sealer));
    let options = SimulateOptions {
        cases,
        days,
        seed,
        until: clock::now(),
        // A server on the same folder may take reports in while the load runs: they get ids after these.
        first_id: store.reserve_case_ids(cases, clock::now()).await?.0,
    };
    if store.journal() == Some(Journal::Wal) {
        say!(
            "the database is open in another process (a server?): loading through its WAL, slower than alone"
        );
    }
    let started = std::time::Instant::now();
    let mut progress = crate::progress::SimulationProgress::new(&options);
    let (tally, truth) =
        shiyu_sim::simulate::simulate(store, world, privacy, options, |step| progress.show(step)).await?;
    std::fs::write(truth_path, serde_json::to_string_pretty(&truth)?)
        .with_context(|| format!("writing {}", truth_path.display()))?;
    say!(
        "wrote {} cases with {} events in {:.1} s ({:.0} cases/s); {} injected patterns in {}",
        tally.cases,
        tally.events,
        started.elapsed().as_secs_f64(),
        tally.cases as f64 / started.elapsed().as_secs_f64().max(1e-3),
        truth.anomalies.len(),
        truth_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiyu_domain::{Action, Command, Rules};
    use shiyu_store::testing::SampleWorld;

    /// The feed hands a case over once a person acts on it, but not for its own steps or the deadline
    /// engine's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_case_a_person_acted_on_is_no_longer_the_feeds() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            shiyu_store::sqlite::SqliteStore::open(dir.path(), shiyu_store::WriteOptions::default())
                .await
                .unwrap(),
        );
        let world = SampleWorld::new();
        world.install(store.as_ref()).await.unwrap();
        let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
        let now = Timestamp(1_795_000_000_000);
        let mut report = world.report("路口有人占道摆摊");
        report.origin = Some(LIVE_FEED.into());
        let created = service.receive(None, &report, &world.actor("citizen").unwrap(), now).await.unwrap();
        let id = created.id;
        let by_feed = Command {
            origin: Some(LIVE_FEED.into()),
            ..Command::new(Action::Register { matter: world.matters[0].clone(), priority: None })
        };
        let operator = world.actor("operator").unwrap();
        let registered = service.act(id, Some(1), &by_feed, &operator, now).await.unwrap();
        assert!(!taken_over(store.as_ref(), id, 1).await, "the feed's own step");
        let by_person = Command {
            origin: Some("127.0.0.1".into()),
            note: Some("暂缓".into()),
            ..Command::new(Action::Suspend)
        };
        service.act(id, Some(registered.version), &by_person, &operator, now).await.unwrap();
        assert!(
            taken_over(store.as_ref(), id, registered.version).await,
            "an operator's step in the browser"
        );
        assert!(!taken_over(store.as_ref(), id, registered.version + 1).await, "nothing since");
    }
}
