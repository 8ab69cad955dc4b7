//! `shiyu demo`: builds 南通 into the data folder (once) and walks simulated reports through the loop.

use crate::clock;
use anyhow::Context;
use shiyu_domain::{CaseId, Rules, Status};
use shiyu_sim::walk::{walk, WalkOptions};
use shiyu_store::{CaseService, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Prints a line, returning the error instead of panicking when the reader has gone (`shiyu demo | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

pub struct DemoOptions {
    pub cases: usize,
    pub days: u32,
    pub seed: Option<u64>,
}

pub async fn run(store: Arc<dyn Store>, rules: Rules, options: DemoOptions) -> anyhow::Result<()> {
    let city = shiyu_sim::city::nantong().context("reading the 南通 division list")?;
    if store.jurisdictions().await?.is_empty() {
        say!(
            "building the demo city 南通: {} jurisdictions, {} departments, {} matters, {} users",
            city.jurisdictions.len(),
            city.departments.len(),
            city.matters.len(),
            city.users.len()
        );
        store.put_jurisdictions(&city.jurisdictions).await?;
        store.put_departments(&city.departments).await?;
        store.put_categories(&city.categories).await?;
        store.put_matters(&city.matters).await?;
        store.put_users(&city.users).await?;
    } else {
        say!("reusing the city already in the data folder");
    }
    if store.shapes().await?.is_empty() {
        let started = std::time::Instant::now();
        let map = shiyu_sim::map::nantong_map(&city, 2026).map_err(anyhow::Error::msg)?;
        store.put_map(&map.jurisdictions, &map.shapes).await?;
        say!(
            "drew the map: real county boundaries, {} grids synthesised inside them ({:.1} s)",
            map.added,
            started.elapsed().as_secs_f64()
        );
    }
    let before = store.count_cases().await?;
    let service = CaseService::new(store.clone(), Arc::new(rules));
    let seed = options.seed.unwrap_or(before + 2026);
    let walked = walk(
        &service,
        &city,
        WalkOptions { cases: options.cases, seed, until: clock::now(), days: options.days.max(1) },
    )
    .await?;
    say!("walked {} new reports through the loop ({} commands)", walked.cases, walked.commands);
    if let Some((_, evaluation)) = shiyu_web::classifier::retrain(store.as_ref(), clock::now()).await? {
        say!(
            "trained the matter classifier on {} registered cases: {:.1}% of {} held-out descriptions right first time\n",
            evaluation.trained_on + evaluation.held_out,
            evaluation.top1 * 100.0,
            evaluation.held_out
        );
    }

    let total = store.count_cases().await?;
    let mut by_status: BTreeMap<Status, u64> = BTreeMap::new();
    let mut busiest: Option<(usize, CaseId)> = None;
    for id in 1..=total as i64 {
        if let Some(state) = store.load_case(CaseId(id)).await? {
            *by_status.entry(state.status).or_default() += 1;
            if busiest.is_none_or(|(n, _)| state.version as usize > n) {
                busiest = Some((state.version as usize, CaseId(id)));
            }
        }
    }
    say!("{total} cases by state:");
    for (status, count) in &by_status {
        say!("  {:<6} {count:>7}", status.label_zh());
    }
    if let Some((_, id)) = busiest {
        say!("\nthe history of case {} (全程留痕):", id.0);
        let state = store.load_case(id).await?.context("case")?;
        say!("  {}", state.description);
        for stored in store.case_history(id).await? {
            let event = &stored.event;
            let note = event.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
            say!("  {}  {}{note}", event.at, event.change.label_zh());
        }
    }
    Ok(())
}
