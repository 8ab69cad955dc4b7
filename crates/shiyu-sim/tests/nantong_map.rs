//! Grid synthesis (`shiyu_geo::synth`) on the real 南通 data, with the demo's options: every grid inside the real boundaries, none overlapping, none
//! missing, the city covered, denser in the city district, 崇川区's grids tiled by micro-grids, and the same
//! every time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_geo::synth::{synthesise, Division, Options, Synthesised};
use shiyu_geo::{geojson, validate, Located, Point, Shape, ShapeIndex};
use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/nantong");

fn options() -> Options {
    shiyu_sim::map::nantong_options(2026)
}

struct City {
    counties: Vec<(String, Shape)>,
    townships: Vec<Division>,
    communities: Vec<Division>,
    made: Synthesised,
}

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| {
        let text = std::fs::read_to_string(format!("{DATA}/districts.geojson")).unwrap();
        let counties: Vec<(String, Shape)> = geojson::read(&text)
            .unwrap()
            .into_iter()
            .map(|f| (f.text("code").unwrap().to_string(), f.shape))
            .collect();
        let divisions = std::fs::read_to_string(format!("{DATA}/divisions.csv")).unwrap();
        let mut townships = Vec::new();
        let mut communities = Vec::new();
        for line in divisions.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let division =
                Division { code: fields[1].into(), name: fields[2].into(), parent_code: fields[3].into() };
            match fields[0] {
                "township" => townships.push(division),
                "community" => communities.push(division),
                _ => {}
            }
        }
        let started = std::time::Instant::now();
        let made = synthesise(&counties, &townships, &communities, &options());
        eprintln!(
            "synthesised {} grids and {} micro-grids in {:?}",
            made.grids.len(),
            made.micro_grids.len(),
            started.elapsed()
        );
        City { counties, townships, communities, made }
    })
}

/// A point of the box around 南通 (120.2–122.0°E, 31.6–32.8°N), from a fixed generator.
fn next_point(state: &mut u64) -> Point {
    *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    Point::new(
        120.2 + (*state >> 40) as f64 / (1u64 << 24) as f64 * 1.8,
        31.6 + (*state & 0xFF_FFFF) as f64 / (1u64 << 24) as f64 * 1.2,
    )
}

#[test]
fn every_division_gets_a_shape_and_the_grid_count_is_a_citys() {
    let city = city();
    assert_eq!(city.made.townships.len(), city.townships.len());
    assert_eq!(city.made.communities.len(), city.communities.len());
    assert!((8_000..=12_000).contains(&city.made.grids.len()), "{} grids", city.made.grids.len());
    let empty: Vec<&str> =
        city.made.communities.iter().filter(|c| c.shape.0.is_empty()).map(|c| c.code.as_str()).collect();
    assert!(empty.is_empty(), "communities without land: {empty:?}");
    for grid in &city.made.grids {
        assert!(grid.code.starts_with(&grid.parent_code) && grid.code.len() == 15, "{}", grid.code);
        assert!(
            validate::shape_problems(&grid.shape).is_empty(),
            "{}: {:?}",
            grid.code,
            validate::shape_problems(&grid.shape)
        );
    }
    // Contiguous: a community is one piece unless its land is (an island, a river mouth).
    let pieces = city.made.communities.iter().filter(|c| c.shape.0.len() > 1).count();
    assert!(pieces * 20 < city.made.communities.len(), "{pieces} communities in several pieces");
}

#[test]
fn grids_tile_their_community_without_overlap_or_gap() {
    let city = city();
    let mut area_of_grids: HashMap<&str, f64> = HashMap::new();
    for grid in &city.made.grids {
        *area_of_grids.entry(grid.parent_code.as_str()).or_default() += grid.shape.area_m2();
    }
    for community in &city.made.communities {
        let grids = area_of_grids.get(community.code.as_str()).copied().unwrap_or(0.0);
        let own = community.shape.area_m2();
        assert!(
            (grids - own).abs() <= own * 1e-9,
            "{}: grids {grids} m², community {own} m²",
            community.code
        );
    }
    let grids: Vec<(String, Shape)> =
        city.made.grids.iter().map(|g| (g.code.clone(), g.shape.clone())).collect();
    let overlapping = validate::overlaps(&grids, 1.0);
    assert!(overlapping.is_empty(), "{} overlaps, e.g. {}", overlapping.len(), overlapping[0]);
}

#[test]
fn grids_stay_inside_the_real_boundaries_and_cover_the_city() {
    let city = city();
    let county_of: HashMap<&str, &str> =
        city.townships.iter().map(|t| (t.code.as_str(), t.parent_code.as_str())).collect();
    let boundary: HashMap<&str, &Shape> = city.counties.iter().map(|(c, s)| (c.as_str(), s)).collect();
    for grid in &city.made.grids {
        let mut county = county_of[&grid.parent_code[..9]];
        if county == "320671" {
            county = "320613"; // carved out of 崇川区
        }
        let outside: Vec<_> = grid
            .shape
            .0
            .iter()
            .flat_map(|p| p.exterior.0.iter())
            .filter(|v| boundary[county].distance_m(**v) > 0.0)
            .collect();
        assert!(outside.is_empty(), "{} has corners outside {county}: {outside:?}", grid.code);
    }
    // Any point inside the city finds a grid: inside one, or the nearest within 300 m of the boundary.
    let index = ShapeIndex::new(city.made.grids.iter().map(|g| (g.shape.clone(), g.code.clone())));
    let mut state = 7_u64;
    let mut inside = 0;
    let mut tried = 0;
    while tried < 20_000 {
        let p = next_point(&mut state);
        if !city.counties.iter().any(|(_, s)| s.contains(p)) {
            continue;
        }
        tried += 1;
        match index.locate_or_nearest(p, 300.0) {
            Located::Inside(_) => inside += 1,
            Located::Near(..) => {}
            Located::Outside => panic!("{p:?} is in 南通 but more than 300 m from every grid"),
        }
    }
    assert!(inside * 100 > tried * 97, "only {inside} of {tried} points fell inside a grid");
}

#[test]
fn the_city_district_is_denser_and_the_result_is_the_same_every_time() {
    let city = city();
    let mean_km2 = |urban: bool| {
        let grids: Vec<f64> = city
            .made
            .grids
            .iter()
            .filter(|g| (g.code.starts_with("320613") || g.code.starts_with("320671")) == urban)
            .map(|g| g.shape.area_m2() / 1e6)
            .collect();
        grids.iter().sum::<f64>() / grids.len() as f64
    };
    assert!(mean_km2(true) * 3.0 < mean_km2(false), "{} vs {}", mean_km2(true), mean_km2(false));
    let again = synthesise(&city.counties, &city.townships, &city.communities, &options());
    assert_eq!(again.grids.len(), city.made.grids.len());
    assert!(again.grids.iter().zip(&city.made.grids).all(|(a, b)| a == b), "same seed, same grids");
    assert!(again.micro_grids == city.made.micro_grids, "same seed, same micro-grids");
}

#[test]
fn micro_grids_tile_each_grid_of_chongchuan_and_nowhere_else() {
    let city = city();
    let mut siblings: HashMap<&str, Vec<(String, Shape)>> = HashMap::new();
    for micro in &city.made.micro_grids {
        // 崇川区 only: not even the development zone carved out of it.
        assert!(micro.code.starts_with("320613"), "{} is outside 崇川区", micro.code);
        assert!(micro.code.starts_with(&micro.parent_code) && micro.code.len() == 17, "{}", micro.code);
        assert!(
            validate::shape_problems(&micro.shape).is_empty(),
            "{}: {:?}",
            micro.code,
            validate::shape_problems(&micro.shape)
        );
        siblings
            .entry(micro.parent_code.as_str())
            .or_default()
            .push((micro.code.clone(), micro.shape.clone()));
    }
    let (mut split, mut whole) = (0, 0);
    for grid in &city.made.grids {
        let Some(micro) = siblings.remove(grid.code.as_str()) else {
            assert!(!grid.code.starts_with("320613"), "{} has no micro-grids", grid.code);
            continue;
        };
        // Three to five each, but a grid of fewer than three 100 m cells is one micro-grid.
        let cells = (grid.shape.area_m2() / 1e4).round() as usize;
        if cells < 3 {
            assert_eq!(micro.len(), 1, "{}: {cells} cells", grid.code);
            whole += 1;
        } else {
            assert!((3..=5.min(cells)).contains(&micro.len()), "{}: {} micro-grids", grid.code, micro.len());
            split += 1;
        }
        let inside = validate::outside_parent(&grid.shape, &micro, 0.001);
        assert!(inside.is_empty(), "{}: {}", grid.code, inside[0]);
        let sum: f64 = micro.iter().map(|(_, shape)| shape.area_m2()).sum();
        let own = grid.shape.area_m2();
        assert!((sum - own).abs() <= own * 1e-9, "{}: micro-grids {sum} m², grid {own} m²", grid.code);
        let overlapping = validate::overlaps(&micro, 1.0);
        assert!(overlapping.is_empty(), "{}: {}", grid.code, overlapping[0]);
    }
    assert!(siblings.is_empty(), "micro-grids of no grid: {:?}", siblings.keys().collect::<Vec<_>>());
    assert!(split > 500 && whole * 100 < split, "{split} grids split, {whole} too small to split");
}

#[test]
fn hotline_addresses_find_their_community_across_the_city() {
    use shiyu_domain::{Jurisdiction, JurisdictionId, Level};
    let city = city();
    // The tree as the platform holds it, ids in list order.
    let mut jurisdictions = Vec::new();
    let mut ids = HashMap::new();
    for (level, list) in [(Level::Township, &city.townships), (Level::Community, &city.communities)] {
        for d in list.iter() {
            let id = JurisdictionId(jurisdictions.len() as i64 + 100);
            ids.insert(d.code.clone(), id);
            jurisdictions.push(Jurisdiction {
                id,
                code: d.code.clone(),
                name: d.name.clone(),
                level,
                parent: ids.get(&d.parent_code).copied(),
            });
        }
    }
    let outlines: HashMap<JurisdictionId, Shape> =
        city.made.communities.iter().filter_map(|c| Some((*ids.get(&c.code)?, c.shape.clone()))).collect();
    let gazetteer = shiyu_geo::gazetteer::Gazetteer::new(&jurisdictions, &outlines);
    let town_name: HashMap<&str, &str> =
        city.townships.iter().map(|t| (t.code.as_str(), t.name.as_str())).collect();
    let (mut right, mut asked, mut missed) = (0, 0, Vec::new());
    for community in city.communities.iter().step_by(7) {
        asked += 1;
        let address = format!("{}{}门口", town_name[community.parent_code.as_str()], community.name);
        let Ok(found) = gazetteer.resolve(&address) else {
            missed.push(address);
            continue;
        };
        if found.jurisdiction != ids[&community.code] || found.confidence < 0.8 {
            missed.push(format!("{address} → {:?} {} {:?}", found.level, found.confidence, found.matched));
        }
        if found.jurisdiction == ids[&community.code] && found.confidence >= 0.8 {
            right += 1;
            let point = found.point.expect("synthesised communities have outlines");
            assert!(
                outlines[&found.jurisdiction].contains(point),
                "{address}: the point lies in the community"
            );
        }
    }
    assert!(
        right * 100 >= asked * 95,
        "{right} of {asked} found their community with confidence; {missed:#?}"
    );
}

#[test]
fn a_point_anywhere_in_nantong_reaches_a_grid_and_a_department() {
    use shiyu_domain::{route, Directory, Jurisdiction, JurisdictionId, Level};
    let mut nantong = shiyu_sim::city::nantong().unwrap();
    let map = shiyu_sim::map::nantong_map(&nantong, 2026).unwrap();
    nantong.add_grids(&map.jurisdictions);
    // As the server loads them (`shiyu_web::reference`): micro-grids before grids, so a point finds the
    // smallest unit it lies in.
    let mut units: Vec<&Jurisdiction> = map.jurisdictions.iter().collect();
    units.sort_by_key(|j| (std::cmp::Reverse(j.level), j.id));
    let outlines: HashMap<JurisdictionId, &String> = map.shapes.iter().map(|(id, g)| (*id, g)).collect();
    let tree: HashMap<JurisdictionId, Jurisdiction> =
        nantong.jurisdictions.iter().map(|j| (j.id, j.clone())).collect();
    let directory =
        Directory { jurisdictions: &tree, departments: &nantong.departments, users: &nantong.users };
    let counties = &city().counties;
    let county_of = |mut id: JurisdictionId| {
        while tree[&id].level > Level::County {
            id = tree[&id].parent.unwrap();
        }
        id
    };
    let county_id = |code: &str| nantong.jurisdictions.iter().find(|j| j.code == code).unwrap().id;
    let index = shiyu_geo::GridMap::new(
        units
            .iter()
            .map(|j| (geojson::parse_geometry(outlines[&j.id]).unwrap(), j.id, Some(county_of(j.id))))
            .collect(),
        counties.iter().map(|(code, shape)| (shape.clone(), county_id(code))).collect(),
    );
    let mut state = 99_u64;
    let (mut routed, mut in_micro_grids) = (0, 0);
    while routed < 2_000 {
        let p = next_point(&mut state);
        let Some((county_code, _)) = counties.iter().find(|(_, s)| s.contains(p)) else { continue };
        let found =
            *index.locate(p, 300.0).value().expect("every point of the city reaches a grid in its county");
        let mut path = vec![found];
        while let Some(parent) = tree[path.last().unwrap()].parent {
            path.push(parent);
        }
        path.reverse();
        let grid = *path.iter().find(|id| tree[id].level == Level::Grid).expect("the place is in a grid");
        if tree[&found].level == Level::MicroGrid {
            assert_eq!(tree[&found].parent, Some(grid));
            in_micro_grids += 1;
        } else {
            assert_eq!(found, grid);
        }
        // The grid lies in the county whose boundary holds the point (the development zone is carved out of 崇川区).
        let county = &tree[&path[1]].code;
        assert!(
            county == county_code || (county == "320671" && county_code == "320613"),
            "{p:?}: {county} vs {county_code}"
        );
        let matter = &nantong.matters[routed % nantong.matters.len()];
        let decided = route(directory, &path, Some(matter)).unwrap();
        let lead =
            nantong.departments.iter().find(|d| Some(d.id) == decided.lead).expect("a lead department");
        assert!(
            path.contains(&lead.jurisdiction),
            "{}: {} serves {:?}",
            matter.name,
            lead.name,
            lead.jurisdiction
        );
        let verifier = nantong.users.iter().find(|u| Some(u.id) == decided.verifier).expect("a verifier");
        assert_eq!(verifier.scope, shiyu_domain::Scope::Jurisdiction(grid), "the grid's worker verifies");
        routed += 1;
    }
    assert!(in_micro_grids > 0, "points in 崇川区 find their micro-grid");
}
