//! Writes a simulated history into a store through its bulk-load path: one thread makes and serialises
//! chunks of cases while the store writes the previous chunk, so memory holds at most a few chunks whatever
//! the number of cases.

use crate::history::{CityData, Privacy, SimError, SimulateOptions, Simulation, Tally, Truth, World};
use shiyu_domain::Rules;
use shiyu_geo::geojson;
use shiyu_store::{AuditEntry, BulkCases, Store, StoreError};
use std::sync::Arc;

/// Cases per bulk write: large enough that a transaction's fixed cost vanishes, small enough to stay flat.
pub const CHUNK_CASES: usize = 5_000;

/// Cases made and then serialised at a time within a chunk. A few hundred histories (their events take about
/// 5 KB a case in memory) are still in the processor's caches when they are serialised and freed, and their
/// memory is reused at once; a whole chunk's (25 MB) was read back from main memory (BENCHMARKS.md, simulate).
pub const MAKE_CASES: usize = 256;

/// The next `cases` cases of `simulation`, made and serialised [`MAKE_CASES`] at a time; empty when all are
/// made.
pub fn next_bulk(simulation: &mut Simulation<'_>, cases: usize) -> Result<BulkCases, SimulateError> {
    let mut bulk = BulkCases::default();
    while bulk.len() < cases {
        let made = simulation.next_chunk(MAKE_CASES.min(cases - bulk.len()))?;
        if made.is_empty() {
            break;
        }
        bulk.add(&made)?;
    }
    Ok(bulk)
}

/// Why a simulation could not be written.
#[derive(Debug)]
pub enum SimulateError {
    Sim(SimError),
    Store(StoreError),
}

impl std::fmt::Display for SimulateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimulateError::Sim(error) => error.fmt(f),
            SimulateError::Store(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for SimulateError {}

impl From<StoreError> for SimulateError {
    fn from(error: StoreError) -> Self {
        SimulateError::Store(error)
    }
}

impl From<SimError> for SimulateError {
    fn from(error: SimError) -> Self {
        SimulateError::Sim(error)
    }
}

/// The counties whose places report most: the old town and the development zone of the demo city.
pub const URBAN_COUNTIES: &[&str] = &["320613", "320671"];

/// Reads the city from the store (reference data, users and outlines) into the simulator's view.
pub async fn load_world(store: &dyn Store, rules: Rules, seed: u64) -> Result<World, SimulateError> {
    let shapes = geojson::parse_outlines(store.shapes().await?).map_err(SimError::City)?;
    let city = CityData {
        jurisdictions: store.jurisdictions().await?,
        departments: store.departments().await?,
        matters: store.matters().await?,
        users: store.users().await?,
        shapes,
    };
    let world = World::new(rules, city, URBAN_COUNTIES, seed)?;
    Ok(world)
}

/// The smallest load for which the case tables' secondary indexes are dropped and built again at the end
/// (`Store::defer_indexes`), provided it is also at least half as many cases as are stored already: building
/// an index costs about as much per stored case as keeping it up costs per loaded case in a large table
/// (BENCHMARKS.md, simulate).
pub const DEFER_INDEXES_FROM: u64 = 100_000;

/// Whether loading `new` cases onto `stored` ones is faster with the indexes built at the end.
pub fn defers_indexes(new: u64, stored: u64) -> bool {
    new >= DEFER_INDEXES_FROM && new >= stored / 2
}

/// Whether the load `options` describe defers the indexes: the cases below its first id are taken or
/// reserved, as many as are stored give or take an unused gap.
pub fn defers_indexes_for(options: &SimulateOptions) -> bool {
    defers_indexes(options.cases, u64::try_from(options.first_id - 1).unwrap_or(0))
}

/// How far a simulation has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The running tally, after every chunk written.
    Written(Tally),
    /// After the last chunk of a large load: `built` of the `of` indexes it deferred are built again.
    Indexed { built: usize, of: usize },
}

/// Simulates `options.cases` cases after the store's last one and bulk-loads them. `progress` hears the
/// running tally after every chunk; after the last, a large load builds the indexes it deferred
/// ([`defers_indexes`]) and `progress` hears how many are built. Returns the tally and the ground truth of
/// the injected anomalies.
pub async fn simulate(
    store: Arc<dyn Store>,
    world: Arc<World>,
    privacy: Arc<dyn Privacy>,
    options: SimulateOptions,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(Tally, Truth), SimulateError> {
    if !defers_indexes_for(&options) {
        return load(store, world, privacy, options, |tally| progress(Progress::Written(tally))).await;
    }
    store.defer_indexes().await?;
    let loaded =
        load(store.clone(), world, privacy, options, |tally| progress(Progress::Written(tally))).await;
    // Built even when the load failed, so that the store is never left without them.
    let built =
        store.build_deferred_indexes(&mut |built, of| progress(Progress::Indexed { built, of })).await;
    let loaded = loaded?;
    built?;
    Ok(loaded)
}

async fn load(
    store: Arc<dyn Store>,
    world: Arc<World>,
    privacy: Arc<dyn Privacy>,
    options: SimulateOptions,
    mut progress: impl FnMut(Tally),
) -> Result<(Tally, Truth), SimulateError> {
    let (chunks, mut incoming) = tokio::sync::mpsc::channel::<Result<(BulkCases, Tally), SimulateError>>(2);
    let maker = tokio::task::spawn_blocking(move || {
        let mut simulation = Simulation::new(&world, privacy.as_ref(), options);
        loop {
            let made = next_bulk(&mut simulation, CHUNK_CASES);
            let done = matches!(&made, Ok(bulk) if bulk.is_empty()) || made.is_err();
            if chunks.blocking_send(made.map(|bulk| (bulk, simulation.tally()))).is_err() || done {
                return simulation.truth().clone();
            }
        }
    });
    let mut written = Tally::default();
    while let Some(chunk) = incoming.recv().await {
        let (bulk, tally) = chunk?;
        if bulk.is_empty() {
            break;
        }
        let audit = AuditEntry {
            at: options.until,
            user: None,
            actor: "system".into(),
            action: "bulk_load".into(),
            target: Some(format!("cases:{}", bulk.len())),
            address: None,
            detail: Some(format!("shiyu simulate, seed {}", options.seed)),
        };
        store.bulk_load(bulk, audit).await?;
        written = tally;
        progress(tally);
    }
    drop(incoming);
    let truth = maker.await.map_err(|e| SimError::City(format!("the simulator stopped: {e}")))?;
    Ok((written, truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_load_large_against_what_is_stored_defers_the_indexes() {
        assert!(defers_indexes(DEFER_INDEXES_FROM, 0));
        assert!(!defers_indexes(DEFER_INDEXES_FROM - 1, 0), "a small load keeps them up");
        assert!(defers_indexes(5_000_000, 10_000_000));
        assert!(
            !defers_indexes(1_000_000, 10_000_000),
            "rebuilding ten million rows costs more than it saves"
        );
    }
}
