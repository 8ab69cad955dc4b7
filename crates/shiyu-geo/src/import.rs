//! Planning an import: from the current jurisdictions and a file, either the complete set of rows to write
//! or every problem found. Nothing here writes; the caller stores a plan in one transaction, so an import
//! lands whole or not at all. Any city's data in these formats imports the same way as 南通's.

use crate::geojson::{self, Feature};
use crate::shape::Shape;
use crate::validate::{self, Problem};
use serde_json::{json, Map, Value};
use shiyu_domain::{Jurisdiction, JurisdictionId, Level};
use std::collections::{HashMap, HashSet};

/// What an import will write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapPlan {
    /// New and changed jurisdictions (parents before children).
    pub jurisdictions: Vec<Jurisdiction>,
    /// Outlines as GeoJSON geometries.
    pub shapes: Vec<(JurisdictionId, String)>,
    pub added: usize,
    pub changed: usize,
}

/// Reports how far a long validation has got: (what, done, total).
pub type Progress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Codes, levels and ids of what exists, plus what the file adds, for resolving parents.
struct Registry {
    by_code: HashMap<String, Jurisdiction>,
    next_id: i64,
}

impl Registry {
    fn new(existing: &[Jurisdiction]) -> Registry {
        Registry {
            by_code: existing.iter().map(|j| (j.code.clone(), j.clone())).collect(),
            next_id: existing.iter().map(|j| j.id.0).max().unwrap_or(0) + 1,
        }
    }

    /// Adds or updates `code`; returns the row and whether it is new.
    fn upsert(
        &mut self,
        code: &str,
        name: &str,
        level: Level,
        parent: Option<JurisdictionId>,
    ) -> (Jurisdiction, bool) {
        let (id, new) = match self.by_code.get(code) {
            Some(existing) => (existing.id, false),
            None => {
                self.next_id += 1;
                (JurisdictionId(self.next_id - 1), true)
            }
        };
        let row = Jurisdiction { id, code: code.into(), name: name.into(), level, parent };
        self.by_code.insert(code.into(), row.clone());
        (row, new)
    }
}

/// A problem on one line of a division list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// `level,code,name,parent_code` lines, as in `data/nantong/divisions.csv`. Existing codes keep their ids.
pub fn plan_divisions(existing: &[Jurisdiction], csv: &str) -> Result<MapPlan, Vec<LineProblem>> {
    let mut problems = Vec::new();
    let mut rows: Vec<(usize, Level, &str, &str, &str)> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let known: HashMap<&str, &Jurisdiction> = existing.iter().map(|j| (j.code.as_str(), j)).collect();
    let by_id: HashMap<JurisdictionId, &Jurisdiction> = existing.iter().map(|j| (j.id, j)).collect();
    for (index, line) in csv.lines().enumerate() {
        let number = index + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if line.trim().is_empty() || (index == 0 && fields.first() == Some(&"level")) {
            continue;
        }
        let [level, code, name, parent] = fields[..] else {
            problems.push(LineProblem {
                line: number,
                message: format!("expected 4 fields (level,code,name,parent_code), found {}", fields.len()),
            });
            continue;
        };
        let Some(level) = Level::parse(level) else {
            problems.push(LineProblem { line: number, message: format!("unknown level `{level}`") });
            continue;
        };
        if code.is_empty() || name.is_empty() {
            problems.push(LineProblem {
                line: number,
                message: "a division needs a code and a name".to_string(),
            });
            continue;
        }
        if let Some(first) = seen.insert(code, number) {
            problems.push(LineProblem {
                line: number,
                message: format!("code {code} already appears on line {first}"),
            });
            continue;
        }
        // A township turned county (or a grid turned community) would leave what lies below it at the
        // wrong depth, and its outline and cases with it: a division keeps its level.
        if let Some(known) = known.get(code).filter(|j| j.level != level) {
            problems.push(LineProblem {
                line: number,
                message: format!(
                    "{code} is a {}; a division keeps its level (a new level needs a new code)",
                    known.level.as_str()
                ),
            });
            continue;
        }
        rows.push((number, level, code, name, parent));
    }
    if rows.is_empty() && problems.is_empty() {
        return Err(vec![LineProblem { line: 1, message: format!("the file {NOTHING_TO_IMPORT}") }]);
    }
    let file_levels: HashMap<&str, Level> = rows.iter().map(|r| (r.2, r.1)).collect();
    let mut registry = Registry::new(existing);
    let mut plan = MapPlan::default();
    // Parents before children, whatever order the file is in.
    rows.sort_by_key(|r| (r.1, r.0));
    for (number, level, code, name, parent_code) in rows {
        let parent = if parent_code.is_empty() {
            if level != Level::City {
                problems.push(LineProblem {
                    line: number,
                    message: format!("{code} ({}) needs a parent", level.as_str()),
                });
                continue;
            }
            None
        } else {
            let parent_level = file_levels
                .get(parent_code)
                .copied()
                .or_else(|| registry.by_code.get(parent_code).map(|j| j.level));
            match (parent_level, registry.by_code.get(parent_code)) {
                (None, _) => {
                    problems.push(LineProblem {
                        line: number,
                        message: format!("{code}'s parent {parent_code} is neither in the file nor known"),
                    });
                    continue;
                }
                (Some(parent_level), _) if parent_level >= level => {
                    problems.push(LineProblem {
                        line: number,
                        message: format!(
                            "{code} ({}) cannot belong to {parent_code} ({})",
                            level.as_str(),
                            parent_level.as_str()
                        ),
                    });
                    continue;
                }
                (Some(_), Some(parent)) => Some(parent.id),
                // The parent had a problem of its own and was not planned.
                (Some(_), None) => continue,
            }
        };
        // A township moved to another county would leave its cases with the old chain of places, seen and
        // managed by the old county: a division keeps its parent, as it keeps its level.
        if let Some(known) = known.get(code).filter(|j| j.parent != parent) {
            let parent_code =
                |id: Option<JurisdictionId>| id.and_then(|p| by_id.get(&p)).map(|p| p.code.as_str());
            problems.push(LineProblem {
                line: number,
                message: format!(
                    "{code} belongs to {}; a division keeps its parent (a move needs a new code)",
                    parent_code(known.parent).unwrap_or("nothing")
                ),
            });
            continue;
        }
        let unchanged = registry
            .by_code
            .get(code)
            .is_some_and(|j| j.name == name && j.level == level && j.parent == parent);
        let (row, new) = registry.upsert(code, name, level, parent);
        if new {
            plan.added += 1;
        } else if !unchanged {
            plan.changed += 1;
        }
        if new || !unchanged {
            plan.jurisdictions.push(row);
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// The readable features, and the problems of the unreadable ones to report with everything else. A
/// collection without features is most likely the wrong file.
fn read_features(text: &str) -> Result<(Vec<Feature>, Vec<String>), Vec<String>> {
    match geojson::read_each(text)? {
        (features, problems) if features.is_empty() && problems.is_empty() => {
            Err(vec![format!("the collection {NOTHING_TO_IMPORT}")])
        }
        read => Ok(read),
    }
}

/// Said of an empty file, a header alone or a collection without features.
const NOTHING_TO_IMPORT: &str = "holds nothing to import (文件中没有可导入的内容)";

fn geometry_problems(feature: &Feature) -> Vec<String> {
    validate::shape_problems(&feature.shape).iter().map(|p| format!("{}: {p}", feature.label())).collect()
}

/// Outlines of known jurisdictions: features with `code` (and `level`, which must match what is known).
/// A new outline must still hold the outlines already drawn inside it (`outlines`), within `tolerance_m`.
pub fn plan_boundaries(
    existing: &[Jurisdiction],
    outlines: &HashMap<JurisdictionId, Shape>,
    text: &str,
    tolerance_m: f64,
) -> Result<MapPlan, Vec<String>> {
    let (features, mut problems) = read_features(text)?;
    let known: HashMap<&str, &Jurisdiction> = existing.iter().map(|j| (j.code.as_str(), j)).collect();
    let mut plan = MapPlan::default();
    let mut seen = HashSet::new();
    for feature in &features {
        let Some(jurisdiction) = feature.text("code").and_then(|code| known.get(code)) else {
            problems.push(format!(
                "{}: no known jurisdiction has this code (import the divisions first)",
                feature.label()
            ));
            continue;
        };
        if !seen.insert(jurisdiction.code.as_str()) {
            problems.push(format!(
                "{}: {} has a second outline in the file",
                feature.label(),
                jurisdiction.code
            ));
            continue;
        }
        if jurisdiction.level >= Level::Grid {
            problems.push(format!(
                "{}: {} is a {}; grids are imported with `import grids`, which checks them against their \
                 neighbours and parent",
                feature.label(),
                jurisdiction.code,
                jurisdiction.level.as_str()
            ));
            continue;
        }
        if let Some(level) = feature.text("level").filter(|l| *l != jurisdiction.level.as_str()) {
            problems.push(format!(
                "{}: level `{level}`, but {} is a {}",
                feature.label(),
                jurisdiction.code,
                jurisdiction.level.as_str()
            ));
            continue;
        }
        let broken = geometry_problems(feature);
        if broken.is_empty() {
            // Moving an outline away from what is drawn inside it would leave grids outside their county.
            let inside: Vec<(String, Shape)> = existing
                .iter()
                .filter(|child| child.parent == Some(jurisdiction.id))
                .filter_map(|child| {
                    Some((format!("{} {}", child.code, child.name), outlines.get(&child.id)?.clone()))
                })
                .collect();
            let left_out = validate::outside_parent(&feature.shape, &inside, tolerance_m);
            if left_out.is_empty() {
                plan.shapes.push((jurisdiction.id, geojson::geometry_json(&feature.shape).to_string()));
                plan.changed += 1;
            }
            problems
                .extend(left_out.iter().map(|p| format!("{}: the new outline leaves {p}", feature.label())));
        }
        problems.extend(broken);
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Grids and micro-grids with their outlines: features with `code`, `name`, `level` (`grid` or
/// `micro_grid`) and `parent_code` (or, without it, a code that extends its parent's by three digits).
/// Checked together: valid geometry, known parents, no overlaps, nothing reaching more than `tolerance_m`
/// outside a parent that has an outline, and no gap left in such a parent.
pub fn plan_grids(
    existing: &[Jurisdiction],
    outlines: &HashMap<JurisdictionId, Shape>,
    text: &str,
    tolerance_m: f64,
    progress: Progress<'_>,
) -> Result<MapPlan, Vec<String>> {
    let (features, mut problems) = read_features(text)?;
    let mut registry = Registry::new(existing);
    let mut plan = MapPlan::default();
    let mut accepted: Vec<(&Feature, Level, String)> = Vec::new();
    let mut seen = HashSet::new();
    for feature in &features {
        let Some(code) = feature.text("code").filter(|_| feature.text("name").is_some()) else {
            problems.push(format!("{}: a grid needs `code` and `name`", feature.label()));
            continue;
        };
        if !seen.insert(code) {
            problems.push(format!("{}: {code} appears twice in the file", feature.label()));
            continue;
        }
        let level = match feature.text("level") {
            Some("grid") | None => Level::Grid,
            Some("micro_grid") => Level::MicroGrid,
            Some(other) => {
                problems
                    .push(format!("{}: level `{other}` is neither `grid` nor `micro_grid`", feature.label()));
                continue;
            }
        };
        // Only grids and micro-grids are written here: a code that names a township or community would turn
        // it into a grid under its own child.
        if let Some(known) = registry.by_code.get(code).filter(|known| known.level != level) {
            problems.push(format!(
                "{}: {code} is already a {}, not a {}",
                feature.label(),
                known.level.as_str(),
                level.as_str()
            ));
            continue;
        }
        let parent_code = feature
            .text("parent_code")
            .map(str::to_string)
            .unwrap_or_else(|| code.get(..code.len().saturating_sub(3)).unwrap_or_default().to_string());
        accepted.push((feature, level, parent_code));
    }
    // Grids before micro-grids, so that a micro-grid's parent may come from the same file.
    accepted.sort_by_key(|(f, level, _)| (*level, f.position));
    let mut children: HashMap<JurisdictionId, Vec<(String, Shape)>> = HashMap::new();
    let mut by_level: HashMap<Level, Vec<(String, Shape)>> = HashMap::new();
    // The file's outlines, laid over the stored ones for the checks of the parents below.
    let mut drawn: HashMap<JurisdictionId, &Shape> = HashMap::new();
    // Parents a grid of the file moves away from: what it leaves must still be covered.
    let mut vacated: HashSet<JurisdictionId> = HashSet::new();
    for (n, (feature, level, parent_code)) in accepted.iter().enumerate() {
        progress("checking grids", n, accepted.len());
        let broken = geometry_problems(feature);
        let parent = registry.by_code.get(parent_code).cloned();
        let expected_parent = if *level == Level::Grid { Level::Community } else { Level::Grid };
        let Some(parent) = parent.filter(|p| p.level == expected_parent) else {
            problems.push(format!(
                "{}: parent {parent_code} is not a known {}",
                feature.label(),
                expected_parent.as_str()
            ));
            continue;
        };
        if !broken.is_empty() {
            problems.extend(broken);
            continue;
        }
        let code = feature.text("code").unwrap_or_default();
        let name = feature.text("name").unwrap_or_default();
        let before = registry.by_code.get(code).and_then(|known| known.parent);
        let (row, new) = registry.upsert(code, name, *level, Some(parent.id));
        vacated.extend(before.filter(|before| *before != parent.id));
        drawn.insert(row.id, &feature.shape);
        plan.added += usize::from(new);
        plan.changed += usize::from(!new);
        plan.shapes.push((row.id, geojson::geometry_json(&feature.shape).to_string()));
        plan.jurisdictions.push(row);
        children.entry(parent.id).or_default().push((feature.label(), feature.shape.clone()));
        by_level.entry(*level).or_default().push((feature.label(), feature.shape.clone()));
    }
    progress("checking grids", accepted.len(), accepted.len());
    // Grids already on the map that the file leaves as they are: what the file adds must fit beside them,
    // and they count towards covering their parent.
    let in_file: HashSet<JurisdictionId> = plan.jurisdictions.iter().map(|j| j.id).collect();
    let kept: Vec<(&Jurisdiction, &Shape)> = existing
        .iter()
        .filter(|j| j.level >= Level::Grid && !in_file.contains(&j.id))
        .filter_map(|j| Some((j, outlines.get(&j.id)?)))
        .collect();
    let on_map =
        |j: &Jurisdiction, shape: &Shape| (format!("{} {} (on the map)", j.code, j.name), shape.clone());
    // By reference: only the parents checked below take copies of their children.
    let mut kept_children: HashMap<JurisdictionId, Vec<(&Jurisdiction, &Shape)>> = HashMap::new();
    for &(j, shape) in &kept {
        if let Some(parent) = j.parent {
            kept_children.entry(parent).or_default().push((j, shape));
        }
    }
    for (level, shapes) in &by_level {
        let checked = shapes.len();
        let mut shapes = shapes.clone();
        shapes.extend(kept.iter().filter(|(j, _)| j.level == *level).map(|(j, shape)| on_map(j, shape)));
        problems.extend(
            validate::overlaps_of_first(&shapes, checked, tolerance_m.min(1.0))
                .iter()
                .map(Problem::to_string),
        );
    }
    // Every parent the file changes: one it adds to, one it moves a grid away from, and a grid it redraws that
    // has micro-grids, whose micro-grids on the map must still fit inside and cover the new outline.
    let mut parents: Vec<JurisdictionId> = children.keys().chain(&vacated).copied().collect();
    parents.extend(drawn.keys().filter(|id| kept_children.contains_key(id) && !children.contains_key(id)));
    parents.sort();
    parents.dedup();
    let codes: HashMap<JurisdictionId, &str> =
        existing.iter().chain(&plan.jurisdictions).map(|j| (j.id, j.code.as_str())).collect();
    let empty = Vec::new();
    for (n, parent) in parents.iter().enumerate() {
        progress("checking parents", n, parents.len());
        let Some(outline) = drawn.get(parent).copied().or_else(|| outlines.get(parent)) else { continue };
        let in_file = children.get(parent).unwrap_or(&empty);
        let mut siblings = in_file.clone();
        siblings.extend(kept_children.get(parent).into_iter().flatten().map(|(j, shape)| on_map(j, shape)));
        // Against an outline the file leaves alone, the grids on the map were checked when they came in.
        let inside = if drawn.contains_key(parent) { &siblings } else { in_file };
        problems
            .extend(validate::outside_parent(outline, inside, tolerance_m).iter().map(Problem::to_string));
        let spacing = (outline.area_m2().sqrt() / 40.0).max(25.0);
        problems.extend(
            validate::gaps(outline, &siblings, spacing, tolerance_m, 5)
                .iter()
                .map(|p| format!("parent {}: {p}", codes.get(parent).copied().unwrap_or("?"))),
        );
    }
    progress("checking parents", parents.len(), parents.len());
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Every grid and micro-grid with an outline, as a FeatureCollection that `plan_grids` reads back.
pub fn export_grids(jurisdictions: &[Jurisdiction], outlines: &HashMap<JurisdictionId, Shape>) -> Value {
    let codes: HashMap<JurisdictionId, &str> =
        jurisdictions.iter().map(|j| (j.id, j.code.as_str())).collect();
    let mut grids: Vec<&Jurisdiction> =
        jurisdictions.iter().filter(|j| j.level >= Level::Grid && outlines.contains_key(&j.id)).collect();
    grids.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
    geojson::write(grids.into_iter().filter_map(|j| {
        let mut properties = Map::new();
        properties.insert("code".into(), json!(j.code));
        properties.insert("name".into(), json!(j.name));
        properties.insert("level".into(), json!(j.level.as_str()));
        properties.insert("parent_code".into(), json!(j.parent.and_then(|p| codes.get(&p)).copied()));
        Some((properties, outlines.get(&j.id)?))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing() -> Vec<Jurisdiction> {
        plan_divisions(
            &[],
            "level,code,name,parent_code\ncity,320600,南通市,\ncounty,320613,崇川区,320600\n\
             township,320613001,和平桥街道,320613\ncommunity,320613001001,桃坞路社区,320613001\n",
        )
        .unwrap()
        .jurisdictions
    }

    #[test]
    fn divisions_import_in_any_order_and_keep_existing_ids() {
        let known = existing();
        assert_eq!(known.len(), 4);
        let again =
            plan_divisions(&known, "community,320613001002,濠南社区,320613001\ncity,320600,南通市,\n")
                .unwrap();
        assert_eq!((again.added, again.changed), (1, 0), "the city is unchanged, one community is new");
        assert_eq!(again.jurisdictions[0].id, JurisdictionId(5));
    }

    #[test]
    fn a_division_keeps_its_level() {
        let problems = plan_divisions(&existing(), "county,320613001,和平桥街道,320600\n").unwrap_err();
        assert!(
            problems[0].to_string().contains("320613001 is a township; a division keeps its level"),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_division_keeps_its_parent() {
        let known = existing();
        let moved = "county,320614,海门区,320600\ntownship,320613001,和平桥街道,320614\n";
        let problems = plan_divisions(&known, moved).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].to_string().contains("320613001 belongs to 320613; a division keeps its parent"),
            "{problems:#?}"
        );
        let renamed = plan_divisions(&known, "township,320613001,和平桥街道办事处,320613\n").unwrap();
        assert_eq!((renamed.added, renamed.changed), (0, 1), "a new name is fine");
    }

    #[test]
    fn every_bad_division_line_is_reported() {
        let problems = plan_divisions(
            &existing(),
            "county,1,,320600\nprovince,2,x,\ncommunity,3,x,999\ncounty,4,x,320613001001\ntownship,5,x\ntownship,6,x,320613\ntownship,6,y,320613\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        for expected in [
            "line 1:",
            "line 2: unknown level",
            "line 3:",
            "line 4:",
            "line 5: expected 4 fields",
            "line 7: code 6 already",
        ] {
            assert!(
                problems.iter().any(|p| p.to_string().starts_with(expected)),
                "{expected}: {problems:#?}"
            );
        }
    }

    fn square_feature(code: &str, lon: f64, size: f64) -> String {
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}","name":"{code}","level":"grid"}},"geometry":{{"type":"Polygon","coordinates":[[[{lon},32.0],[{e},32.0],[{e},32.01],[{lon},32.01],[{lon},32.0]]]}}}}"#,
            e = lon + size
        )
    }

    fn collection(features: &[String]) -> String {
        format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(","))
    }

    /// A grid of the sample community, as if already on the map.
    fn first_grid(community: JurisdictionId) -> Jurisdiction {
        Jurisdiction {
            id: JurisdictionId(99),
            code: "320613001001001".into(),
            name: "第一网格".into(),
            level: Level::Grid,
            parent: Some(community),
        }
    }

    /// The sample tree, with the community outlined as a 0.02° square.
    fn community_with_outline() -> (Vec<Jurisdiction>, JurisdictionId, HashMap<JurisdictionId, Shape>) {
        let known = existing();
        let community = known.iter().find(|j| j.level == Level::Community).unwrap().id;
        let outline =
            geojson::read(&collection(&[square_feature("x", 120.0, 0.02)])).unwrap()[0].shape.clone();
        (known, community, HashMap::from([(community, outline)]))
    }

    #[test]
    fn a_grid_file_cannot_rename_a_township_or_list_a_code_twice() {
        let (known, _, outlines) = community_with_outline();
        // The township's own code, with the community below it as parent, would make a cycle.
        let township = square_feature("320613001", 120.0, 0.01)
            .replace(r#""level":"grid""#, r#""level":"grid","parent_code":"320613001001""#);
        let twice = square_feature("320613001001002", 120.01, 0.01);
        let problems = plan_grids(
            &known,
            &outlines,
            &collection(&[township, twice.clone(), twice]),
            5.0,
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("320613001 is already a township, not a grid")),
            "{problems:#?}"
        );
        assert!(problems.iter().any(|p| p.contains("320613001001002 appears twice")), "{problems:#?}");
    }

    #[test]
    fn an_unreadable_geometry_does_not_hide_the_other_problems() {
        let null =
            r#"{"type":"Feature","properties":{"code":"320613","name":"x"},"geometry":null}"#.to_string();
        let unknown = square_feature("999999", 120.0, 0.01).replace(r#","level":"grid""#, "");
        let problems =
            plan_boundaries(&existing(), &HashMap::new(), &collection(&[null, unknown]), 5.0).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("no known jurisdiction has this code")), "{problems:#?}");
    }

    #[test]
    fn outlines_must_be_degrees_once_each_and_not_of_grids() {
        let mut known = existing();
        let community = known.iter().find(|j| j.level == Level::Community).unwrap().id;
        known.push(first_grid(community));
        let outline =
            |code: &str, lon: f64| square_feature(code, lon, 0.01).replace(r#","level":"grid""#, "");
        let problems = plan_boundaries(
            &known,
            &HashMap::new(),
            &collection(&[
                outline("320613", 500.0),
                outline("320613001", 120.0),
                outline("320613001", 120.1),
                outline("320613001001001", 120.0),
            ]),
            5.0,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("not a longitude and latitude"), "{problems:#?}");
        assert!(problems[1].contains("320613001 has a second outline"), "{problems:#?}");
        assert!(problems[2].contains("is a grid; grids are imported with `import grids`"), "{problems:#?}");
        assert!(
            plan_boundaries(&known, &HashMap::new(), &collection(&[outline("320613", 120.0)]), 5.0).is_ok()
        );
        // The community's outline may not move away from its grid.
        let grid = HashMap::from([(
            JurisdictionId(99),
            geojson::read(&collection(&[square_feature("g", 120.0, 0.005)])).unwrap()[0].shape.clone(),
        )]);
        assert!(plan_boundaries(&known, &grid, &collection(&[outline("320613001001", 120.0)]), 5.0).is_ok());
        let moved =
            plan_boundaries(&known, &grid, &collection(&[outline("320613001001", 121.0)]), 5.0).unwrap_err();
        assert!(
            moved[0].contains("the new outline leaves 320613001001001 第一网格 reaches outside"),
            "{moved:#?}"
        );
    }

    #[test]
    fn grids_import_and_export_round_trip() {
        let (known, community, outlines) = community_with_outline();
        let text = collection(&[
            square_feature("320613001001001", 120.0, 0.01),
            square_feature("320613001001002", 120.01, 0.01),
        ]);
        let mut steps = 0;
        let plan = plan_grids(&known, &outlines, &text, 5.0, &mut |_, _, _| steps += 1).unwrap();
        assert!(steps > 0, "progress was reported");
        assert_eq!(plan.added, 2);
        assert!(plan.jurisdictions.iter().all(|j| j.parent == Some(community) && j.level == Level::Grid));
        let mut all = known.clone();
        all.extend(plan.jurisdictions.clone());
        let stored: HashMap<JurisdictionId, Shape> =
            plan.shapes.iter().map(|(id, g)| (*id, geojson::parse_geometry(g).unwrap())).collect();
        let exported = export_grids(&all, &stored).to_string();
        let again = plan_grids(&all, &outlines, &exported, 5.0, &mut |_, _, _| {}).unwrap();
        assert_eq!((again.added, again.changed), (0, 2), "the same grids, now known");
    }

    #[test]
    fn grids_added_beside_those_on_the_map_are_checked_against_them() {
        let (mut known, community, mut outlines) = community_with_outline();
        known.push(first_grid(community));
        outlines.insert(
            JurisdictionId(99),
            geojson::read(&collection(&[square_feature("g", 120.0, 0.01)])).unwrap()[0].shape.clone(),
        );
        // The other half of the community: together with the grid on the map it leaves no gap.
        let beside = collection(&[square_feature("320613001001002", 120.01, 0.01)]);
        let plan = plan_grids(&known, &outlines, &beside, 5.0, &mut |_, _, _| {}).unwrap();
        assert_eq!(plan.added, 1);
        // Reaching over the grid on the map is an overlap, not a gap.
        let over = collection(&[square_feature("320613001001002", 120.005, 0.015)]);
        let problems = plan_grids(&known, &outlines, &over, 5.0, &mut |_, _, _| {}).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("overlaps 320613001001001 第一网格 (on the map)"), "{problems:#?}");
        // A file that redraws the grid on the map is checked against its new outline only.
        let redrawn = collection(&[
            square_feature("320613001001001", 120.0, 0.005),
            square_feature("320613001001002", 120.005, 0.015),
        ]);
        assert!(plan_grids(&known, &outlines, &redrawn, 5.0, &mut |_, _, _| {}).is_ok());
    }

    fn shape(lon: f64, size: f64) -> Shape {
        geojson::read(&collection(&[square_feature("x", lon, size)])).unwrap()[0].shape.clone()
    }

    fn micro_feature(code: &str, lon: f64, size: f64) -> String {
        square_feature(code, lon, size).replace(r#""level":"grid""#, r#""level":"micro_grid""#)
    }

    /// The sample community with its first grid on the map (the community's western half) and that grid's
    /// two micro-grids, each half of it.
    fn grid_with_micro_grids() -> (Vec<Jurisdiction>, HashMap<JurisdictionId, Shape>) {
        let (mut known, community, mut outlines) = community_with_outline();
        known.push(first_grid(community));
        outlines.insert(JurisdictionId(99), shape(120.0, 0.01));
        for (n, lon) in [(1, 120.0), (2, 120.005)] {
            let id = JurisdictionId(99 + n);
            known.push(Jurisdiction {
                id,
                code: format!("320613001001001{n:03}"),
                name: format!("第{n}微网格"),
                level: Level::MicroGrid,
                parent: Some(JurisdictionId(99)),
            });
            outlines.insert(id, shape(lon, 0.005));
        }
        (known, outlines)
    }

    #[test]
    fn a_redrawn_grid_must_still_hold_and_be_covered_by_its_micro_grids() {
        let (known, outlines) = grid_with_micro_grids();
        let plan = |first: f64| {
            // The first grid redrawn `first` degrees wide, the second grid filling the rest of the community.
            let file = collection(&[
                square_feature("320613001001001", 120.0, first),
                square_feature("320613001001002", 120.0 + first, 0.02 - first),
            ]);
            plan_grids(&known, &outlines, &file, 5.0, &mut |_, _, _| {})
        };
        assert!(plan(0.01).is_ok(), "the same outline");
        let narrower = plan(0.006).unwrap_err();
        assert!(
            narrower.iter().any(|p| p.contains("320613001001001002 第2微网格 (on the map) reaches outside")),
            "{narrower:#?}"
        );
        let wider = plan(0.014).unwrap_err();
        assert!(wider.iter().any(|p| p.starts_with("parent 320613001001001: a gap")), "{wider:#?}");
    }

    #[test]
    fn micro_grids_are_checked_against_a_grid_drawn_in_the_same_file() {
        let (known, _, outlines) = community_with_outline();
        let file = |micro: f64| {
            collection(&[
                square_feature("320613001001001", 120.0, 0.02),
                micro_feature("320613001001001001", 120.0, 0.01),
                micro_feature("320613001001001002", 120.01, micro),
            ])
        };
        assert!(plan_grids(&known, &outlines, &file(0.01), 5.0, &mut |_, _, _| {}).is_ok());
        let short = plan_grids(&known, &outlines, &file(0.005), 5.0, &mut |_, _, _| {}).unwrap_err();
        assert!(short.iter().any(|p| p.starts_with("parent 320613001001001: a gap")), "{short:#?}");
        let over = plan_grids(&known, &outlines, &file(0.02), 5.0, &mut |_, _, _| {}).unwrap_err();
        assert!(over.iter().any(|p| p.contains("reaches outside its parent")), "{over:#?}");
    }

    #[test]
    fn a_grid_moved_to_another_community_leaves_no_gap_unreported() {
        let (mut known, community, mut outlines) = community_with_outline();
        let township = known.iter().find(|j| j.level == Level::Township).unwrap().id;
        known.push(first_grid(community));
        outlines.insert(JurisdictionId(99), shape(120.0, 0.02));
        known.push(Jurisdiction {
            id: JurisdictionId(50),
            code: "320613001002".into(),
            name: "濠南社区".into(),
            level: Level::Community,
            parent: Some(township),
        });
        outlines.insert(JurisdictionId(50), shape(120.02, 0.02));
        let moved = square_feature("320613001001001", 120.02, 0.02)
            .replace(r#""level":"grid""#, r#""level":"grid","parent_code":"320613001002""#);
        let problems =
            plan_grids(&known, &outlines, &collection(std::slice::from_ref(&moved)), 5.0, &mut |_, _, _| {})
                .unwrap_err();
        assert!(problems.iter().any(|p| p.starts_with("parent 320613001001: a gap")), "{problems:#?}");
        // With a new grid where it was, the move is fine.
        let refilled = collection(&[moved, square_feature("320613001001002", 120.0, 0.02)]);
        assert!(plan_grids(&known, &outlines, &refilled, 5.0, &mut |_, _, _| {}).is_ok());
    }

    #[test]
    fn broken_grid_files_are_refused_with_every_problem() {
        let (known, _, outlines) = community_with_outline();
        let text = collection(&[
            square_feature("320613001001001", 120.0, 0.012),
            // overlaps the first by 0.002°, and together they leave a gap
            square_feature("320613001001002", 120.01, 0.005),
            // its parent does not exist
            square_feature("320613001009001", 120.0, 0.01),
            // outside the community
            square_feature("320613001001003", 120.05, 0.01),
        ]);
        let problems = plan_grids(&known, &outlines, &text, 5.0, &mut |_, _, _| {}).unwrap_err();
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("overlaps"), "{problems:#?}");
        assert!(has("parent 320613001009 is not a known community"), "{problems:#?}");
        assert!(has("reaches outside its parent"), "{problems:#?}");
        assert!(has("a gap"), "{problems:#?}");
        assert!(problems.iter().all(|p| p.contains("feature") || p.contains("parent")), "{problems:#?}");
    }
}
