//! The reference data every request consults (jurisdiction tree, departments, catalog), held in memory and
//! reloaded after an admin changes it.

use shiyu_domain::{Category, Department, DepartmentId, Jurisdiction, JurisdictionId, Matter};
use shiyu_store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Reference {
    pub jurisdictions: HashMap<JurisdictionId, Jurisdiction>,
    pub by_code: HashMap<String, JurisdictionId>,
    pub departments: HashMap<DepartmentId, Department>,
    pub categories: Vec<Category>,
    pub matters: HashMap<String, Matter>,
}

impl Reference {
    /// The chain from the city down to `id`, or `None` if `id` is unknown.
    pub fn path_to(&self, id: JurisdictionId) -> Option<Vec<JurisdictionId>> {
        let mut path = Vec::new();
        let mut next = Some(id);
        while let Some(current) = next {
            let jurisdiction = self.jurisdictions.get(&current)?;
            path.push(current);
            next = jurisdiction.parent;
            if path.len() > 16 {
                return None;
            }
        }
        path.reverse();
        Some(path)
    }

    /// Depth of a jurisdiction in the tree (0 for the city).
    pub fn depth(&self, id: JurisdictionId) -> Option<usize> {
        self.path_to(id).map(|p| p.len() - 1)
    }
}

#[derive(Debug, Default)]
pub struct ReferenceCache {
    current: RwLock<Arc<Reference>>,
}

impl ReferenceCache {
    pub async fn load(store: &dyn Store) -> StoreResult<ReferenceCache> {
        let cache = ReferenceCache::default();
        cache.reload(store).await?;
        Ok(cache)
    }

    pub async fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        let jurisdictions: HashMap<_, _> =
            store.jurisdictions().await?.into_iter().map(|j| (j.id, j)).collect();
        let by_code = jurisdictions.values().map(|j| (j.code.clone(), j.id)).collect();
        let reference = Reference {
            by_code,
            jurisdictions,
            departments: store.departments().await?.into_iter().map(|d| (d.id, d)).collect(),
            categories: store.categories().await?,
            matters: store.matters().await?.into_iter().map(|m| (m.code.clone(), m)).collect(),
        };
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(reference);
        }
        Ok(())
    }

    pub fn get(&self) -> Arc<Reference> {
        self.current.read().map(|r| r.clone()).unwrap_or_default()
    }
}
