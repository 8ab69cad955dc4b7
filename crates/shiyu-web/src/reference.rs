//! The reference data every request consults (jurisdiction tree, departments, catalog, grid workers and the
//! map of grids), held in memory and reloaded after an admin changes it.

use shiyu_domain::{
    Category, Department, DepartmentId, Directory, Jurisdiction, JurisdictionId, Level, Matter, Role, User,
};
use shiyu_geo::gazetteer::Gazetteer;
use shiyu_geo::{geojson, GridMap, Shape};
use shiyu_store::{Store, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Reference {
    pub jurisdictions: HashMap<JurisdictionId, Jurisdiction>,
    pub by_code: HashMap<String, JurisdictionId>,
    pub departments: HashMap<DepartmentId, Department>,
    /// The same departments in id order, for routing.
    pub department_list: Vec<Department>,
    pub categories: Vec<Category>,
    pub matters: HashMap<String, Matter>,
    /// Grid workers, who verify on the spot.
    pub grid_workers: Vec<User>,
    /// Micro-grids and grids with outlines (a micro-grid wins over the grid it lies in), and the counties.
    pub map: Arc<GridMap>,
    /// Place names, for addresses without coordinates.
    pub gazetteer: Arc<Gazetteer>,
}

impl Reference {
    /// The chain from the city down to `id`, or `None` if `id` is unknown.
    pub fn path_to(&self, id: JurisdictionId) -> Option<Vec<JurisdictionId>> {
        shiyu_domain::chain_to(id, |j| self.jurisdictions.get(&j))
    }

    /// What routing reads.
    pub fn directory(&self) -> Directory<'_> {
        Directory {
            jurisdictions: &self.jurisdictions,
            departments: &self.department_list,
            users: &self.grid_workers,
        }
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

    /// Reloads everything, the map included (after an import).
    pub async fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        self.load_from(store, true).await
    }

    /// Reloads the catalog, departments and grid workers and keeps the map as it is: parsing every outline
    /// again is the costly part and nothing here changes it.
    pub async fn reload_catalog_and_people(&self, store: &dyn Store) -> StoreResult<()> {
        self.load_from(store, false).await
    }

    async fn load_from(&self, store: &dyn Store, with_map: bool) -> StoreResult<()> {
        let jurisdictions: HashMap<_, _> =
            store.jurisdictions().await?.into_iter().map(|j| (j.id, j)).collect();
        let by_code = jurisdictions.values().map(|j| (j.code.clone(), j.id)).collect();
        let mut department_list = store.departments().await?;
        department_list.sort_by_key(|d| d.id);
        let (map, gazetteer) = if with_map {
            let (map, gazetteer) = load_map(store, &jurisdictions).await?;
            (Arc::new(map), Arc::new(gazetteer))
        } else {
            let current = self.get();
            (current.map.clone(), current.gazetteer.clone())
        };
        let reference = Reference {
            by_code,
            jurisdictions,
            departments: department_list.iter().map(|d| (d.id, d.clone())).collect(),
            department_list,
            categories: store.categories().await?,
            matters: store.matters().await?.into_iter().map(|m| (m.code.clone(), m)).collect(),
            grid_workers: store.users().await?.into_iter().filter(|u| u.role == Role::GridWorker).collect(),
            map,
            gazetteer,
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

/// The grids (with the county boundaries) and the gazetteer, from every stored outline.
async fn load_map(
    store: &dyn Store,
    jurisdictions: &HashMap<JurisdictionId, Jurisdiction>,
) -> StoreResult<(GridMap, Gazetteer)> {
    let all_outlines = geojson::parse_outlines(store.shapes().await?).map_err(StoreError::Other)?;
    // The gazetteer keeps only a point per place, so the outlines can then move into the map uncopied.
    let all: Vec<Jurisdiction> = jurisdictions.values().cloned().collect();
    let gazetteer = Gazetteer::new(&all, &all_outlines);
    let county_of = |id: JurisdictionId| {
        let mut next = Some(id);
        while let Some(j) = next.and_then(|n| jurisdictions.get(&n)) {
            if j.level == Level::County {
                return Some(j.id);
            }
            next = j.parent;
        }
        None
    };
    let mut grids: Vec<(std::cmp::Reverse<Level>, JurisdictionId, Shape)> = Vec::new();
    let mut counties: Vec<(Shape, JurisdictionId)> = Vec::new();
    for (id, shape) in all_outlines {
        match jurisdictions.get(&id).map(|j| j.level) {
            Some(Level::County) => counties.push((shape, id)),
            Some(level) if level >= Level::Grid => grids.push((std::cmp::Reverse(level), id, shape)),
            _ => {}
        }
    }
    // Micro-grids before grids: where they overlap, the earlier shape wins.
    grids.sort_by_key(|(level, id, _)| (*level, *id));
    counties.sort_by_key(|(_, id)| *id);
    let map =
        GridMap::new(grids.into_iter().map(|(_, id, shape)| (shape, id, county_of(id))).collect(), counties);
    Ok((map, gazetteer))
}
