//! The matter classifier as the server holds it: loaded from the store at start, retrained on request
//! (`POST /api/classifier/train`, or `shiyu train-classifier`), swapped in without a restart.

use shiyu_domain::Timestamp;
use shiyu_store::{Store, StoreError, StoreResult};
use shiyu_text::classify::{catalog_prior, train_and_evaluate};
use shiyu_text::{Classifier, Evaluation};
use std::sync::{Arc, RwLock};

/// The name the model is stored under.
pub const MATTER_MODEL: &str = "matter";

#[derive(Debug, Default)]
pub struct ClassifierCache {
    current: RwLock<Option<Arc<Classifier>>>,
}

impl ClassifierCache {
    pub async fn load(store: &dyn Store) -> StoreResult<ClassifierCache> {
        let cache = ClassifierCache::default();
        if let Some(body) = store.model(MATTER_MODEL).await? {
            let model: Classifier = serde_json::from_str(&body)?;
            cache.set(model);
        }
        Ok(cache)
    }

    pub fn get(&self) -> Option<Arc<Classifier>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    pub fn set(&self, model: Classifier) {
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(model));
        }
    }
}

/// Trains on every case registered with a matter, and on the catalog's names of the matters, holding out
/// every fifth case for the accuracy figures, and stores the model (trained on all of them). `None` when no
/// case has a matter yet.
pub async fn retrain(store: &dyn Store, now: Timestamp) -> StoreResult<Option<(Classifier, Evaluation)>> {
    let examples = store.labelled_descriptions().await?;
    if examples.is_empty() {
        return Ok(None);
    }
    let matters = store.matters().await?;
    let prior = catalog_prior(matters.iter().map(|m| (m.name.as_str(), m.code.as_str())));
    let trained = tokio::task::spawn_blocking(move || train_and_evaluate(&examples, 5, &prior))
        .await
        .map_err(|e| StoreError::Other(format!("training stopped: {e}")))?;
    if let Some((model, _)) = &trained {
        store.put_model(MATTER_MODEL, &serde_json::to_string(model)?, now).await?;
    }
    Ok(trained)
}
