//! What the engine's tests share: a fresh store with the sample world on SQLite or on a throwaway
//! PostgreSQL cluster.
#![allow(dead_code, clippy::unwrap_used)]

use shiyu_store::postgres::PgStore;
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{Store, WriteOptions};
use std::path::Path;
use std::sync::Arc;

/// A store holding the sample world: SQLite in `folder`, or PostgreSQL in a cluster the caller keeps alive.
pub async fn sample_store(postgres: bool, folder: &Path) -> (Arc<dyn Store>, SampleWorld, Option<PgCluster>) {
    let (store, cluster): (Arc<dyn Store>, _) = if postgres {
        let cluster = PgCluster::start(false).unwrap();
        let options = cluster.create_database("shiyu").await.unwrap();
        (
            Arc::new(PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap()),
            Some(cluster),
        )
    } else {
        (Arc::new(SqliteStore::open(folder, WriteOptions::default()).await.unwrap()), None)
    };
    let sample = SampleWorld::new();
    sample.install(store.as_ref()).await.unwrap();
    (store, sample, cluster)
}
