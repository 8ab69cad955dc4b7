//! Live analysis (分析研判) and evaluation (行政问效) over all history: a columnar read model of every case,
//! fed by the event log, answering group-by questions in milliseconds.

pub mod evaluate;
pub mod fact;
pub mod monthly;
pub mod projection;
pub mod query;
pub mod report;

pub use evaluate::{Indicators, Ratio, Unit, Weights, MOST_WEIGHT};
pub use projection::Projection;
pub use query::{Bucket, Dim, Filter, Group, Key, Stats};

use shiyu_store::{RawEvent, Store, StoreError, StoreResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Events read from the log per query while rebuilding or following.
const PAGE: u32 = 20_000;

/// The projection a server keeps current: rebuilt from the whole log at start-up, then fed every new event
/// (within `poll` of its commit). Readers take a read lock for the length of one question.
#[derive(Clone, Debug, Default)]
pub struct Analytics {
    projection: Arc<RwLock<Projection>>,
    /// Set once the whole log as it stood at start-up has been folded in; before that the columns hold only
    /// part of history, and answers from them would be wrong rather than late.
    ready: Arc<AtomicBool>,
}

impl Analytics {
    /// A projection of everything in the log.
    pub async fn rebuild(store: &dyn Store) -> StoreResult<Analytics> {
        let analytics = Analytics::default();
        analytics.fold_log(store).await?;
        analytics.ready.store(true, Ordering::Release);
        Ok(analytics)
    }

    /// What a server runs until the task is dropped: the rebuild in the background — a log of ten million
    /// cases takes about a minute, and handling cases must not wait for statistics — and then, every
    /// `poll`, whatever was appended since, folded in the same way. A failed pass is tried again.
    pub async fn rebuild_and_follow(self, store: Arc<dyn Store>, poll: Duration) {
        loop {
            match self.fold_log(store.as_ref()).await {
                Ok(()) => self.ready.store(true, Ordering::Release),
                Err(error) => tracing::warn!(%error, "analytics cannot read the log"),
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Whether the rebuild has finished, so that answers cover all history.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Folds in every event after the projection's position. Reading the next page overlaps with decoding
    /// and folding in the last one on another thread, so a rebuild uses two cores.
    async fn fold_log(&self, store: &dyn Store) -> StoreResult<()> {
        let (pages, mut inbox) = tokio::sync::mpsc::channel::<Vec<RawEvent>>(2);
        let projection = self.projection.clone();
        let folder = tokio::task::spawn_blocking(move || {
            while let Some(page) = inbox.blocking_recv() {
                fold(&mut write(&projection), &page)?;
            }
            Ok::<_, StoreError>(())
        });
        let read: StoreResult<()> = async {
            let mut after = self.read().seq;
            loop {
                let page = store.raw_events_since(after, PAGE).await?;
                let Some(last) = page.last() else { return Ok(()) };
                after = last.seq;
                // The folder only hangs up when it failed; its error is the one to report.
                if pages.send(page).await.is_err() {
                    return Ok(());
                }
            }
        }
        .await;
        drop(pages);
        folder.await.map_err(|e| StoreError::Other(format!("analytics rebuild: {e}")))??;
        read
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Projection> {
        match self.projection.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn write(projection: &RwLock<Projection>) -> RwLockWriteGuard<'_, Projection> {
    match projection.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn fold(projection: &mut Projection, page: &[RawEvent]) -> StoreResult<()> {
    for stored in page {
        projection
            .apply_raw(stored)
            .map_err(|e| StoreError::Other(format!("event {} cannot be read: {e}", stored.seq)))?;
    }
    Ok(())
}
