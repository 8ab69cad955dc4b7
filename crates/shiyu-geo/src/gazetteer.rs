//! Addresses without coordinates (a hotline call: "和平桥街道桃坞路社区菜场门口"): the names of the counties,
//! townships, communities and grids the platform knows are looked for in the text, and the deepest place
//! that the rest of the text agrees with is the answer — with a confidence that says how sure, and no answer
//! at all rather than a guess when the text names nothing or names places that contradict each other.

use crate::shape::{Point, Shape};
use crate::validate::interior_points;
use shiyu_domain::{Jurisdiction, JurisdictionId, Level};
use std::collections::HashMap;

/// The suffixes people drop when they say a place's name (桃坞路社区 → 桃坞路).
const SUFFIXES: &[&str] = &[
    "社区居民委员会",
    "村民委员会",
    "居民委员会",
    "社区居委会",
    "村委会",
    "居委会",
    "社区",
    "街道",
    "镇",
    "乡",
    "村",
    "区",
    "县",
    "市",
];

/// Why an address names no place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// Not one name in it is a place the platform knows.
    NothingKnown,
    /// Every place it names is contradicted by another it names (海安市濠阳社区: 濠阳 lies in 崇川区); the
    /// names, in the order the text has them.
    Contradiction(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub jurisdiction: JurisdictionId,
    pub level: Level,
    /// A point inside the place (its outline's interior), when it has an outline.
    pub point: Option<Point>,
    /// 0 to 1: how much of the chain the text confirms, and how specific the place is.
    pub confidence: f64,
    /// The names found in the text, from the top of the chain down.
    pub matched: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    id: JurisdictionId,
    level: Level,
    parent: Option<JurisdictionId>,
    names: Vec<String>,
    point: Option<Point>,
}

#[derive(Debug, Default)]
pub struct Gazetteer {
    entries: HashMap<JurisdictionId, Entry>,
}

/// The full name and the name without its administrative suffix, when that leaves two characters or more.
fn names(full: &str) -> Vec<String> {
    let mut names = vec![full.to_string()];
    if let Some(core) = SUFFIXES.iter().find_map(|s| full.strip_suffix(s)).filter(|c| c.chars().count() >= 2)
    {
        names.push(core.to_string());
    }
    names
}

impl Gazetteer {
    /// From the jurisdiction tree (county level and below) and the outlines that exist.
    pub fn new(jurisdictions: &[Jurisdiction], outlines: &HashMap<JurisdictionId, Shape>) -> Gazetteer {
        let entries = jurisdictions
            .iter()
            .filter(|j| j.level >= Level::County && j.level <= Level::Grid)
            .map(|j| {
                let point = outlines
                    .get(&j.id)
                    .and_then(|shape| shape.0.iter().max_by(|a, b| a.area_m2().total_cmp(&b.area_m2())))
                    .and_then(|polygon| interior_points(polygon).into_iter().nth(2));
                (j.id, Entry { id: j.id, level: j.level, parent: j.parent, names: names(&j.name), point })
            })
            .collect();
        Gazetteer { entries }
    }

    fn ancestors(&self, id: JurisdictionId) -> Vec<JurisdictionId> {
        let mut chain = Vec::new();
        let mut next = self.entries.get(&id).and_then(|e| e.parent);
        while let Some(parent) = next {
            chain.push(parent);
            next = self.entries.get(&parent).and_then(|e| e.parent);
        }
        chain
    }

    /// The place `address` names, or why there is none: it names no known place, or only places that cannot
    /// all be true.
    pub fn resolve(&self, address: &str) -> Result<Resolved, Unresolved> {
        let text: String = address.chars().filter(|c| !c.is_whitespace()).collect();
        // Every occurrence of a known name, longest first; an occurrence overlapping a longer one already taken
        // is not a name here (镇中 across 东社镇|中和村, or 镇南 inside 镇南社区).
        let mut occurrences: Vec<(usize, usize, JurisdictionId, &str)> = Vec::new();
        for entry in self.entries.values() {
            for name in &entry.names {
                for (at, _) in text.match_indices(name.as_str()) {
                    occurrences.push((at, at + name.len(), entry.id, name.as_str()));
                }
            }
        }
        occurrences.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut found: HashMap<JurisdictionId, &str> = HashMap::new();
        let mut spans: HashMap<JurisdictionId, (usize, usize)> = HashMap::new();
        for (from, to, id, name) in occurrences {
            // Places sharing one name take the same span.
            let same_span = taken.iter().any(|&(f, t)| f == from && t == to);
            if same_span || !taken.iter().any(|&(f, t)| from < t && f < to) {
                taken.push((from, to));
                found.entry(id).or_insert(name);
                spans.entry(id).or_insert((from, to));
            }
        }
        // Each candidate is scored by how many of its ancestors the text also names, and how deep it is.
        let mut best: Option<(f64, usize, JurisdictionId)> = None;
        let mut ties = 0;
        // In id order, so that equal scores always resolve the same way.
        let mut candidates: Vec<JurisdictionId> = found.keys().copied().collect();
        candidates.sort();
        for id in candidates {
            let Some(entry) = self.entries.get(&id) else { continue };
            let ancestors = self.ancestors(id);
            let confirmed = ancestors.iter().filter(|a| found.contains_key(a)).count();
            // A place the text names that is not on this chain contradicts it — unless it is only another
            // reading of words this chain already explains (two towns called 悦来镇), or lies below it.
            let chain_spans: Vec<(usize, usize)> =
                ancestors.iter().chain(std::iter::once(&id)).filter_map(|a| spans.get(a).copied()).collect();
            let contradicted = found.keys().any(|other| {
                *other != id
                    && !ancestors.contains(other)
                    && !self.ancestors(*other).contains(&id)
                    && spans.get(other).is_some_and(|span| !chain_spans.contains(span))
            });
            if contradicted {
                continue;
            }
            let depth = match entry.level {
                Level::County => 0.3,
                Level::Township => 0.5,
                Level::Community => 0.7,
                _ => 0.8,
            };
            let score = depth + 0.1 * confirmed as f64;
            match best {
                Some((s, _, _)) if (score - s).abs() < 1e-9 => ties += 1,
                Some((s, _, _)) if score < s => {}
                _ => {
                    best = Some((score, confirmed, id));
                    ties = 0;
                }
            }
        }
        let Some((score, _, id)) = best else {
            if found.is_empty() {
                return Err(Unresolved::NothingKnown);
            }
            let mut named: Vec<(usize, &str)> =
                found.iter().filter_map(|(id, name)| Some((spans.get(id)?.0, *name))).collect();
            named.sort();
            named.dedup_by_key(|(at, _)| *at);
            return Err(Unresolved::Contradiction(
                named.into_iter().map(|(_, name)| name.to_string()).collect(),
            ));
        };
        let entry = self.entries.get(&id).ok_or(Unresolved::NothingKnown)?;
        // Two equally good places of the same name (新华村 in several towns): say which level is certain.
        let confidence = if ties > 0 { (score / (ties + 1) as f64).min(0.3) } else { score.min(1.0) };
        let mut chain: Vec<JurisdictionId> = self.ancestors(id);
        chain.reverse();
        chain.push(id);
        let matched = chain.iter().filter_map(|j| found.get(j).map(|n| n.to_string())).collect();
        Ok(Resolved {
            jurisdiction: id,
            level: entry.level,
            point: entry.point,
            confidence: (confidence * 100.0).round() / 100.0,
            matched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(id: i64, name: &str, level: Level, parent: Option<i64>) -> Jurisdiction {
        Jurisdiction {
            id: JurisdictionId(id),
            code: id.to_string(),
            name: name.into(),
            level,
            parent: parent.map(JurisdictionId),
        }
    }

    fn tree() -> Vec<Jurisdiction> {
        vec![
            place(1, "南通市", Level::City, None),
            place(2, "崇川区", Level::County, Some(1)),
            place(3, "和平桥街道", Level::Township, Some(2)),
            place(4, "桃坞路社区", Level::Community, Some(3)),
            place(5, "海门区", Level::County, Some(1)),
            place(6, "三厂街道", Level::Township, Some(5)),
            place(7, "新华村", Level::Community, Some(6)),
            place(8, "正余镇", Level::Township, Some(5)),
            place(9, "新华村", Level::Community, Some(8)),
        ]
    }

    #[test]
    fn the_deepest_place_the_text_agrees_with_is_the_answer() {
        let gazetteer = Gazetteer::new(&tree(), &HashMap::new());
        let full = gazetteer.resolve("崇川区和平桥街道桃坞路社区菜场门口").unwrap();
        assert_eq!(full.jurisdiction, JurisdictionId(4));
        assert_eq!(full.matched, vec!["崇川区", "和平桥街道", "桃坞路社区"]);
        assert!(full.confidence >= 0.9, "{full:?}");
        // Said as people say it: the suffixes dropped.
        let spoken = gazetteer.resolve("和平桥桃坞路那边的菜场").unwrap();
        assert_eq!(spoken.jurisdiction, JurisdictionId(4));
        assert!(spoken.confidence < full.confidence);
    }

    #[test]
    fn ambiguity_and_contradiction_are_not_guessed_away() {
        let gazetteer = Gazetteer::new(&tree(), &HashMap::new());
        let ambiguous = gazetteer.resolve("新华村村口垃圾堆").unwrap();
        assert!(ambiguous.confidence <= 0.3, "two 新华村: {ambiguous:?}");
        let settled = gazetteer.resolve("正余镇新华村村口垃圾堆").unwrap();
        assert_eq!(settled.jurisdiction, JurisdictionId(9));
        assert!(settled.confidence >= 0.8);
        assert_eq!(gazetteer.resolve("火星基地"), Err(Unresolved::NothingKnown));
        // 桃坞路 is in 崇川区, not in 海门区: the text contradicts itself below the county, and says which names.
        let contradiction = gazetteer.resolve("海门区三厂街道桃坞路社区");
        assert_eq!(
            contradiction,
            Err(Unresolved::Contradiction(vec!["海门区".into(), "三厂街道".into(), "桃坞路社区".into()]))
        );
    }
}
