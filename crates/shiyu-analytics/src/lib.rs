//! Live analysis (分析研判) and evaluation (行政问效) over all history: a columnar read model of every case,
//! fed by the event log, answering group-by questions in milliseconds.

pub mod evaluate;
pub mod monthly;
pub mod projection;
pub mod query;
pub mod report;

pub use evaluate::{Indicators, Ratio, Unit, Weights};
pub use projection::Projection;
pub use query::{Bucket, Dim, Filter, Group, Key, Stats};

use shiyu_store::{Store, StoreResult};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

/// Events read from the log per query while rebuilding or following.
const PAGE: u32 = 20_000;

/// The projection a server keeps current: rebuilt from the whole log at start-up, then fed every new event
/// (within `poll` of its commit). Readers take a read lock for the length of one question.
#[derive(Clone, Debug, Default)]
pub struct Analytics {
    projection: Arc<RwLock<Projection>>,
}

impl Analytics {
    /// A projection of everything in the log.
    pub async fn rebuild(store: &dyn Store) -> StoreResult<Analytics> {
        let analytics = Analytics::default();
        while analytics.catch_up(store).await? > 0 {}
        Ok(analytics)
    }

    /// Folds in the next page of events after the projection's position; returns how many.
    pub async fn catch_up(&self, store: &dyn Store) -> StoreResult<usize> {
        let after = self.read().seq;
        let events = store.events_since(after, PAGE).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut projection = match self.projection.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for stored in &events {
            projection.apply(stored);
        }
        Ok(events.len())
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Projection> {
        match self.projection.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Follows the log until the task is dropped.
    pub async fn follow(self, store: Arc<dyn Store>, poll: Duration) {
        loop {
            match self.catch_up(store.as_ref()).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "analytics cannot read the log"),
            }
            tokio::time::sleep(poll).await;
        }
    }
}
