//! 南通's map for the demo: the real county boundaries shipped in `data/nantong/districts.geojson`, and
//! townships, communities, grids and, in 崇川区, micro-grids synthesised inside them (real grid boundaries are
//! not published).

use crate::city::City;
use shiyu_domain::{Jurisdiction, JurisdictionId, Level};
use shiyu_geo::import::MapPlan;
use shiyu_geo::synth::{synthesise, Division, Options};
use shiyu_geo::{geojson, Shape};
use std::collections::HashMap;

/// The county boundaries (see `data/SOURCES.md`).
pub const NANTONG_DISTRICTS: &str = include_str!("../../../data/nantong/districts.geojson");

/// How the demo's grids are made: 100 m cells; a grid covers about 0.15 km² in 崇川区 and the development
/// zone, 1 km² elsewhere; 南通经济技术开发区, which has no published boundary, is carved out of 崇川区; each grid
/// of 崇川区 is divided into three to five micro-grids (微网格).
pub fn nantong_options(seed: u64) -> Options {
    Options {
        cell_m: 100.0,
        urban_grid_km2: 0.15,
        rural_grid_km2: 1.0,
        urban_counties: vec!["320613".into(), "320671".into()],
        carved: vec![("320671".into(), "320613".into())],
        micro_grid_counties: vec!["320613".into()],
        seed,
    }
}

/// Outlines for every county, township and community of `city`, and its grids and then its micro-grids as
/// new jurisdictions (ids following the city's, in that order).
pub fn nantong_map(city: &City, seed: u64) -> Result<MapPlan, String> {
    let features = geojson::read(NANTONG_DISTRICTS).map_err(|problems| problems.join("; "))?;
    let counties: Vec<(String, Shape)> =
        features.into_iter().filter_map(|f| Some((f.text("code")?.to_string(), f.shape))).collect();
    let by_id: HashMap<JurisdictionId, &Jurisdiction> =
        city.jurisdictions.iter().map(|j| (j.id, j)).collect();
    let by_code: HashMap<&str, &Jurisdiction> =
        city.jurisdictions.iter().map(|j| (j.code.as_str(), j)).collect();
    let divisions = |level: Level| -> Vec<Division> {
        city.at_level(level)
            .map(|j| Division {
                code: j.code.clone(),
                name: j.name.clone(),
                parent_code: j.parent.and_then(|p| by_id.get(&p)).map(|p| p.code.clone()).unwrap_or_default(),
            })
            .collect()
    };
    let made = synthesise(
        &counties,
        &divisions(Level::Township),
        &divisions(Level::Community),
        &nantong_options(seed),
    );
    let mut plan = MapPlan::default();
    let outline = |shape: &Shape| geojson::geometry_json(shape).to_string();
    let regions = counties.iter().map(|(code, shape)| (code.as_str(), shape)).chain(
        made.carved_counties
            .iter()
            .chain(&made.townships)
            .chain(&made.communities)
            .map(|r| (r.code.as_str(), &r.shape)),
    );
    for (code, shape) in regions {
        let known = by_code.get(code).ok_or_else(|| format!("{code} is not in the division list"))?;
        plan.shapes.push((known.id, outline(shape)));
    }
    let mut next_id = city.jurisdictions.iter().map(|j| j.id.0).max().unwrap_or(0);
    let mut grid_ids: HashMap<&str, JurisdictionId> = HashMap::with_capacity(made.grids.len());
    let units = made
        .grids
        .iter()
        .map(|g| (g, Level::Grid))
        .chain(made.micro_grids.iter().map(|m| (m, Level::MicroGrid)));
    for (unit, level) in units {
        let parent = match level {
            Level::Grid => by_code.get(unit.parent_code.as_str()).map(|community| community.id),
            _ => grid_ids.get(unit.parent_code.as_str()).copied(),
        }
        .ok_or_else(|| format!("{} has no parent {}", unit.code, unit.parent_code))?;
        next_id += 1;
        let id = JurisdictionId(next_id);
        if level == Level::Grid {
            grid_ids.insert(&unit.code, id);
        }
        plan.jurisdictions.push(Jurisdiction {
            id,
            code: unit.code.clone(),
            name: unit.name.clone(),
            level,
            parent: Some(parent),
        });
        plan.shapes.push((id, outline(&unit.shape)));
        plan.added += 1;
    }
    Ok(plan)
}
