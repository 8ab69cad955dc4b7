//! The checks geometry must pass before an import changes anything: rings that are rings, holes inside
//! their polygon, no two grids overlapping, no gap left in a parent, no grid outside its parent. Every
//! problem names where it is, so that the person fixing the data can find it on a map.

use crate::index::ShapeIndex;
use crate::shape::{BBox, Point, Polygon, Ring, Shape};

/// What is wrong, and where (a point near the problem, longitude/latitude).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub what: String,
    pub at: Option<Point>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some(p) => write!(f, "{} at {:.6},{:.6}", self.what, p.lon, p.lat),
            None => f.write_str(&self.what),
        }
    }
}

fn problem(what: impl Into<String>, at: Option<Point>) -> Problem {
    Problem { what: what.into(), at }
}

/// Side of `p` relative to the line a→b: positive left, negative right, zero on it.
fn orientation(a: Point, b: Point, p: Point) -> f64 {
    (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon)
}

fn on_segment(a: Point, b: Point, p: Point) -> bool {
    orientation(a, b, p) == 0.0
        && p.lon >= a.lon.min(b.lon)
        && p.lon <= a.lon.max(b.lon)
        && p.lat >= a.lat.min(b.lat)
        && p.lat <= a.lat.max(b.lat)
}

/// Whether segments a–b and c–d share any point.
fn segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool {
    let (o1, o2, o3, o4) =
        (orientation(a, b, c), orientation(a, b, d), orientation(c, d, a), orientation(c, d, b));
    if o1 * o2 < 0.0 && o3 * o4 < 0.0 {
        return true;
    }
    on_segment(a, b, c) || on_segment(a, b, d) || on_segment(c, d, a) || on_segment(c, d, b)
}

/// Whether segments a–b and c–d cross at a single point inside both (touching and overlapping do not count).
fn segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool {
    orientation(a, b, c) * orientation(a, b, d) < 0.0 && orientation(c, d, a) * orientation(c, d, b) < 0.0
}

/// A ring's own problems: too few points, no area, or edges that meet other than at their shared corner.
pub fn ring_problems(ring: &Ring) -> Vec<Problem> {
    let mut points = ring.0.clone();
    points.dedup();
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    let first = points.first().copied();
    if points.len() < 3 {
        return vec![problem("a ring needs at least three distinct points", first)];
    }
    let ring = Ring(points);
    let edges: Vec<(Point, Point)> = ring.edges().collect();
    let boxes: Vec<BBox> = edges.iter().map(|&(a, b)| BBox::of([a, b])).collect();
    let n = edges.len();
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            if !boxes[i].intersects(boxes[j]) {
                continue;
            }
            let ((a, b), (c, d)) = (edges[i], edges[j]);
            let meets = if adjacent {
                // Neighbouring edges share one corner; they must not fold back along each other.
                let (shared, other_i, other_j) = if j == i + 1 { (b, a, d) } else { (a, b, c) };
                orientation(shared, other_i, other_j) == 0.0
                    && (other_i.lon - shared.lon) * (other_j.lon - shared.lon)
                        + (other_i.lat - shared.lat) * (other_j.lat - shared.lat)
                        > 0.0
            } else {
                segments_meet(a, b, c, d)
            };
            if meets {
                return vec![problem("the ring intersects itself", Some(c))];
            }
        }
    }
    if ring.signed_area_m2().abs() < 1e-6 {
        return vec![problem("a ring encloses no area", first)];
    }
    Vec::new()
}

/// A polygon's problems: its rings', and holes that are not inside the outer ring.
pub fn polygon_problems(polygon: &Polygon) -> Vec<Problem> {
    let mut problems: Vec<Problem> = polygon.rings().flat_map(ring_problems).collect();
    let outer = Polygon { exterior: polygon.exterior.clone(), holes: vec![] };
    for hole in &polygon.holes {
        let outside = hole.0.iter().find(|p| !outer.contains(**p) && polygon.exterior.distance_m(**p) > 0.01);
        let crossing =
            hole.edges().find(|&(a, b)| polygon.exterior.edges().any(|(c, d)| segments_cross(a, b, c, d)));
        if let Some(p) = outside.copied().or(crossing.map(|(a, _)| a)) {
            problems.push(problem("a hole reaches outside its polygon", Some(p)));
        }
    }
    problems
}

pub fn shape_problems(shape: &Shape) -> Vec<Problem> {
    if shape.0.is_empty() {
        return vec![problem("the shape has no polygon", None)];
    }
    // Longitude and latitude in degrees (WGS 84): anything else is a file in another projection or a typo.
    let off_the_globe = shape
        .0
        .iter()
        .flat_map(Polygon::rings)
        .flat_map(|ring| ring.0.iter())
        .find(|p| !(-180.0..=180.0).contains(&p.lon) || !(-90.0..=90.0).contains(&p.lat));
    if let Some(p) = off_the_globe {
        return vec![problem("a point is not a longitude and latitude in degrees (WGS 84)", Some(*p))];
    }
    shape.0.iter().flat_map(polygon_problems).collect()
}

/// Points inside the polygon, for probing overlaps: on horizontal lines at a third, half and two thirds of
/// its height, a third and two thirds of the way along each stretch that lies inside.
pub fn interior_points(polygon: &Polygon) -> Vec<Point> {
    let bbox = polygon.exterior.bbox();
    let mut points = Vec::new();
    for fraction in [1.0 / 3.0, 0.5, 2.0 / 3.0] {
        let lat = bbox.min.lat + (bbox.max.lat - bbox.min.lat) * fraction;
        let mut crossings: Vec<f64> = polygon
            .rings()
            .flat_map(Ring::edges)
            .filter(|(a, b)| (a.lat > lat) != (b.lat > lat))
            .map(|(a, b)| a.lon + (lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat))
            .collect();
        crossings.sort_by(f64::total_cmp);
        // Inside between the first and second crossing, the third and fourth, and so on.
        for span in crossings.chunks_exact(2).filter(|s| s[1] > s[0]) {
            let width = span[1] - span[0];
            points.push(Point::new(span[0] + width / 3.0, lat));
            points.push(Point::new(span[0] + width * 2.0 / 3.0, lat));
        }
    }
    points
}

/// Whether `p` is inside `shape` and more than `margin_m` metres from its boundary.
fn well_inside(shape: &Shape, p: Point, margin_m: f64) -> bool {
    shape.contains(p) && shape.0.iter().flat_map(Polygon::rings).all(|r| r.distance_m(p) > margin_m)
}

/// Pairs of shapes that overlap by more than touching: an edge of one crosses an edge of the other, or a
/// vertex or interior point of one lies well inside the other. `labels` name the shapes in messages.
pub fn overlaps(shapes: &[(String, Shape)], margin_m: f64) -> Vec<Problem> {
    overlaps_of_first(shapes, shapes.len(), margin_m)
}

/// As [`overlaps`], but only pairs in which at least one of the first `checked` shapes takes part: the rest
/// are already known to lie side by side (grids on the map, when a file adds more).
pub fn overlaps_of_first(shapes: &[(String, Shape)], checked: usize, margin_m: f64) -> Vec<Problem> {
    let index = ShapeIndex::new(shapes.iter().enumerate().map(|(i, (_, shape))| (shape.clone(), i)));
    let mut problems = Vec::new();
    for (i, (label, shape)) in shapes.iter().enumerate().take(checked) {
        let mut others = Vec::new();
        index.for_each_intersecting(shape.bbox(), |&j| {
            if j > i {
                others.push(j);
            }
        });
        others.sort_unstable();
        for j in others {
            let (other_label, other) = &shapes[j];
            let probes = shape.0.iter().flat_map(|p| p.exterior.0.iter().copied().chain(interior_points(p)));
            let reverse = other.0.iter().flat_map(|p| p.exterior.0.iter().copied().chain(interior_points(p)));
            let inside = probes
                .filter(|p| well_inside(other, *p, margin_m))
                .chain(reverse.filter(|p| well_inside(shape, *p, margin_m)))
                .next();
            let crossing = || {
                let edges =
                    |s: &Shape| s.0.iter().flat_map(Polygon::rings).flat_map(Ring::edges).collect::<Vec<_>>();
                let theirs = edges(other);
                edges(shape)
                    .into_iter()
                    .find_map(|(a, b)| theirs.iter().find(|&&(c, d)| segments_cross(a, b, c, d)).map(|_| a))
            };
            if let Some(at) = inside.or_else(crossing) {
                problems.push(problem(format!("{label} overlaps {other_label}"), Some(at)));
            }
        }
    }
    problems
}

/// Children that reach outside their parent by more than `margin_m` metres.
pub fn outside_parent(parent: &Shape, children: &[(String, Shape)], margin_m: f64) -> Vec<Problem> {
    children
        .iter()
        .filter_map(|(label, child)| {
            let vertex = child
                .0
                .iter()
                .flat_map(|p| p.exterior.0.iter())
                .find(|p| parent.distance_m(**p) > margin_m)?;
            Some(problem(format!("{label} reaches outside its parent"), Some(*vertex)))
        })
        .collect()
}

/// Places inside `parent` that no child covers, found on a lattice of about `spacing_m` metres and ignoring
/// anything within `margin_m` of a child: one problem per connected gap, at most `limit`.
pub fn gaps(
    parent: &Shape,
    children: &[(String, Shape)],
    spacing_m: f64,
    margin_m: f64,
    limit: usize,
) -> Vec<Problem> {
    let index = ShapeIndex::new(children.iter().map(|(_, shape)| (shape.clone(), ())));
    let bbox = parent.bbox();
    let lat_step = spacing_m / crate::shape::METRES_PER_DEGREE;
    let lon_step = lat_step / bbox.centre().lat.to_radians().cos().max(0.01);
    let columns = ((bbox.max.lon - bbox.min.lon) / lon_step).ceil() as i64;
    let rows = ((bbox.max.lat - bbox.min.lat) / lat_step).ceil() as i64;
    let at = |(i, j): (i64, i64)| {
        Point::new(bbox.min.lon + (i as f64 + 0.5) * lon_step, bbox.min.lat + (j as f64 + 0.5) * lat_step)
    };
    let mut uncovered = std::collections::BTreeSet::new();
    for j in 0..rows {
        for i in 0..columns {
            let p = at((i, j));
            if well_inside(parent, p, margin_m)
                && matches!(index.locate_or_nearest(p, margin_m), crate::Located::Outside)
            {
                uncovered.insert((i, j));
            }
        }
    }
    let mut found = Vec::new();
    while let Some(&start) = uncovered.iter().next() {
        if found.len() == limit {
            break;
        }
        found.push(problem("a gap: no grid covers this place", Some(at(start))));
        // Everything connected to this cell is the same gap.
        let mut pending = vec![start];
        while let Some(cell) = pending.pop() {
            if uncovered.remove(&cell) {
                let (i, j) = cell;
                pending.extend([(i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)]);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(points: &[(f64, f64)]) -> Ring {
        Ring(points.iter().map(|&(lon, lat)| Point::new(lon, lat)).collect())
    }

    fn square(lon: f64, lat: f64, size: f64) -> Shape {
        Shape(vec![Polygon {
            exterior: ring(&[(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]),
            holes: vec![],
        }])
    }

    #[test]
    fn broken_rings_are_named_with_a_place() {
        assert!(ring_problems(&ring(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)])).is_empty());
        let bow_tie = ring(&[(120.0, 32.0), (120.1, 32.1), (120.1, 32.0), (120.0, 32.1)]);
        let problems = ring_problems(&bow_tie);
        assert_eq!(problems[0].what, "the ring intersects itself");
        assert!(problems[0].at.is_some());
        assert_eq!(
            ring_problems(&ring(&[(0.0, 0.0), (1.0, 1.0)]))[0].what,
            "a ring needs at least three distinct points"
        );
        assert!(
            !ring_problems(&ring(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)])).is_empty(),
            "a ring on one line"
        );
        let spike = ring(&[(0.0, 0.0), (2.0, 0.0), (1.0, 0.0), (1.0, 1.0)]);
        assert!(!ring_problems(&spike).is_empty(), "an edge folding back on its neighbour");
    }

    #[test]
    fn neighbours_touch_without_overlapping_but_overlaps_are_found() {
        let tiles =
            vec![("a".to_string(), square(120.0, 32.0, 0.01)), ("b".to_string(), square(120.01, 32.0, 0.01))];
        assert!(overlaps(&tiles, 0.5).is_empty());
        let mut shifted = tiles.clone();
        shifted[1].1 = square(120.005, 32.0, 0.01);
        let found = overlaps(&shifted, 0.5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].what, "a overlaps b");
        let same =
            vec![("a".to_string(), square(120.0, 32.0, 0.01)), ("c".to_string(), square(120.0, 32.0, 0.01))];
        assert_eq!(overlaps(&same, 0.5).len(), 1, "identical shapes overlap though no edge crosses");
    }

    #[test]
    fn gaps_and_strays_are_located() {
        let parent = square(120.0, 32.0, 0.02);
        let quarters: Vec<(String, Shape)> = [(0.0, 0.0), (0.01, 0.0), (0.0, 0.01)]
            .iter()
            .map(|&(dx, dy)| (format!("q{dx}{dy}"), square(120.0 + dx, 32.0 + dy, 0.01)))
            .collect();
        let found = gaps(&parent, &quarters, 100.0, 1.0, 10);
        assert_eq!(found.len(), 1, "{found:?}");
        let at = found[0].at.unwrap();
        assert!(at.lon > 120.01 && at.lat > 32.01, "the missing quarter: {at:?}");
        assert!(gaps(&parent, &[("all".to_string(), parent.clone())], 100.0, 1.0, 10).is_empty());
        let stray = vec![("x".to_string(), square(120.015, 32.015, 0.01))];
        assert_eq!(outside_parent(&parent, &stray, 10.0).len(), 1);
        assert!(outside_parent(&parent, &quarters, 10.0).is_empty());
    }
}
