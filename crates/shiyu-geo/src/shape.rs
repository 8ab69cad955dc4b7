//! Points, rings, polygons with holes and multipolygons in longitude/latitude (CGCS2000 / WGS84 degrees),
//! with the few operations the platform needs: containment, area, distance and bounding boxes.
//!
//! Containment uses a half-open rule, so that a point on an edge shared by two neighbouring polygons belongs
//! to exactly one of them: the one to its right (greater longitude) on a north–south edge, the one above it
//! (greater latitude) on an east–west edge. Lookups are therefore deterministic on every boundary.

use serde::{Deserialize, Serialize};

/// Metres per degree of latitude (and of longitude at the equator), on the mean earth radius.
pub const METRES_PER_DEGREE: f64 = 111_195.0;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lon: f64,
    pub lat: f64,
}

impl Point {
    pub const fn new(lon: f64, lat: f64) -> Point {
        Point { lon, lat }
    }

    /// Distance in metres, on a local flat approximation (good to well under 1% within a city).
    pub fn distance_m(self, other: Point) -> f64 {
        let (dx, dy) = metres_between(self, other);
        dx.hypot(dy)
    }
}

/// East and north offsets in metres from `a` to `b`.
fn metres_between(a: Point, b: Point) -> (f64, f64) {
    let scale = ((a.lat + b.lat) / 2.0).to_radians().cos();
    ((b.lon - a.lon) * METRES_PER_DEGREE * scale, (b.lat - a.lat) * METRES_PER_DEGREE)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub min: Point,
    pub max: Point,
}

impl BBox {
    pub const EMPTY: BBox = BBox {
        min: Point::new(f64::INFINITY, f64::INFINITY),
        max: Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY),
    };

    pub fn of(points: impl IntoIterator<Item = Point>) -> BBox {
        points.into_iter().fold(BBox::EMPTY, |b, p| b.including(p))
    }

    pub fn including(self, p: Point) -> BBox {
        BBox {
            min: Point::new(self.min.lon.min(p.lon), self.min.lat.min(p.lat)),
            max: Point::new(self.max.lon.max(p.lon), self.max.lat.max(p.lat)),
        }
    }

    pub fn union(self, other: BBox) -> BBox {
        self.including(other.min).including(other.max)
    }

    pub fn contains(self, p: Point) -> bool {
        p.lon >= self.min.lon && p.lon <= self.max.lon && p.lat >= self.min.lat && p.lat <= self.max.lat
    }

    pub fn intersects(self, other: BBox) -> bool {
        self.min.lon <= other.max.lon
            && other.min.lon <= self.max.lon
            && self.min.lat <= other.max.lat
            && other.min.lat <= self.max.lat
    }

    /// Grown by `metres` on every side.
    pub fn grown(self, metres: f64) -> BBox {
        let dlat = metres / METRES_PER_DEGREE;
        let scale = self.min.lat.abs().max(self.max.lat.abs()).to_radians().cos().max(0.01);
        let dlon = dlat / scale;
        BBox {
            min: Point::new(self.min.lon - dlon, self.min.lat - dlat),
            max: Point::new(self.max.lon + dlon, self.max.lat + dlat),
        }
    }

    pub fn centre(self) -> Point {
        Point::new((self.min.lon + self.max.lon) / 2.0, (self.min.lat + self.max.lat) / 2.0)
    }

    /// Distance in metres from `p` to the box (0 inside).
    pub fn distance_m(self, p: Point) -> f64 {
        let nearest =
            Point::new(p.lon.clamp(self.min.lon, self.max.lon), p.lat.clamp(self.min.lat, self.max.lat));
        p.distance_m(nearest)
    }
}

/// A closed ring: the first point is not repeated at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ring(pub Vec<Point>);

impl Ring {
    /// Edges as pairs of consecutive points, the last joining back to the first.
    pub fn edges(&self) -> impl Iterator<Item = (Point, Point)> + '_ {
        let n = self.0.len();
        (0..n).map(move |i| (self.0[i], self.0[(i + 1) % n]))
    }

    /// How many times a ray from `p` towards greater longitude crosses the ring, by the half-open rule.
    fn crossings(&self, p: Point) -> usize {
        let Some(&last) = self.0.last() else { return 0 };
        let mut previous = last;
        let mut count = 0;
        for &point in &self.0 {
            let (a, b) = (previous, point);
            if (a.lat > p.lat) != (b.lat > p.lat)
                && a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat) > p.lon
            {
                count += 1;
            }
            previous = point;
        }
        count
    }

    /// Signed area in square metres, positive when counter-clockwise. Computed on Lambert's cylindrical
    /// equal-area projection: it preserves area, keeps meridians and parallels straight (so a run of grid
    /// edges along one stays one straight line) and maps a point the same way whichever ring it is in, so
    /// the areas of neighbours add up to the area of their union.
    pub fn signed_area_m2(&self) -> f64 {
        let radius = METRES_PER_DEGREE * 180.0 / std::f64::consts::PI;
        let project = |p: &Point| (p.lon.to_radians() * radius, p.lat.to_radians().sin() * radius);
        let projected: Vec<(f64, f64)> = self.0.iter().map(project).collect();
        let Some(&(x0, y0)) = projected.first() else { return 0.0 };
        let local: Vec<(f64, f64)> = projected.iter().map(|&(x, y)| (x - x0, y - y0)).collect();
        let n = local.len();
        (0..n).map(|i| local[i].0 * local[(i + 1) % n].1 - local[(i + 1) % n].0 * local[i].1).sum::<f64>()
            / 2.0
    }

    pub fn bbox(&self) -> BBox {
        BBox::of(self.0.iter().copied())
    }

    /// Distance in metres from `p` to the nearest edge.
    pub fn distance_m(&self, p: Point) -> f64 {
        self.edges().map(|(a, b)| segment_distance_m(p, a, b)).fold(f64::INFINITY, f64::min)
    }
}

fn segment_distance_m(p: Point, a: Point, b: Point) -> f64 {
    let (bx, by) = metres_between(a, b);
    let (px, py) = metres_between(a, p);
    let length2 = bx * bx + by * by;
    let t = if length2 > 0.0 { ((px * bx + py * by) / length2).clamp(0.0, 1.0) } else { 0.0 };
    (px - t * bx).hypot(py - t * by)
}

/// An outer ring with any number of holes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    pub exterior: Ring,
    #[serde(default)]
    pub holes: Vec<Ring>,
}

impl Polygon {
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.exterior).chain(&self.holes)
    }

    pub fn contains(&self, p: Point) -> bool {
        self.rings().map(|r| r.crossings(p)).sum::<usize>() % 2 == 1
    }

    pub fn area_m2(&self) -> f64 {
        self.exterior.signed_area_m2().abs()
            - self.holes.iter().map(|h| h.signed_area_m2().abs()).sum::<f64>()
    }
}

/// One or more polygons: the shape of a jurisdiction or grid (an enclave or an island makes several).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape(pub Vec<Polygon>);

impl Shape {
    pub fn contains(&self, p: Point) -> bool {
        self.0.iter().any(|polygon| polygon.contains(p))
    }

    pub fn area_m2(&self) -> f64 {
        self.0.iter().map(Polygon::area_m2).sum()
    }

    pub fn bbox(&self) -> BBox {
        self.0.iter().fold(BBox::EMPTY, |b, polygon| b.union(polygon.exterior.bbox()))
    }

    /// Distance in metres from `p` to the shape: 0 inside, else to the nearest edge.
    pub fn distance_m(&self, p: Point) -> f64 {
        if self.contains(p) {
            return 0.0;
        }
        self.0.iter().flat_map(Polygon::rings).map(|r| r.distance_m(p)).fold(f64::INFINITY, f64::min)
    }

    pub fn vertex_count(&self) -> usize {
        self.0.iter().flat_map(Polygon::rings).map(|r| r.0.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn square(lon: f64, lat: f64, size: f64) -> Polygon {
        Polygon {
            exterior: Ring(vec![
                Point::new(lon, lat),
                Point::new(lon + size, lat),
                Point::new(lon + size, lat + size),
                Point::new(lon, lat + size),
            ]),
            holes: vec![],
        }
    }

    #[test]
    fn a_point_on_a_shared_edge_belongs_to_exactly_one_neighbour() {
        let left = square(120.0, 32.0, 0.01);
        let right = square(120.01, 32.0, 0.01);
        let below = square(120.0, 31.99, 0.01);
        let on_vertical_edge = Point::new(120.01, 32.005);
        assert!(!left.contains(on_vertical_edge) && right.contains(on_vertical_edge), "goes east");
        let on_horizontal_edge = Point::new(120.005, 32.0);
        assert!(left.contains(on_horizontal_edge) && !below.contains(on_horizontal_edge), "goes north");
        let corner = Point::new(120.01, 32.0);
        let owners = [&left, &right, &below].iter().filter(|p| p.contains(corner)).count();
        assert_eq!(owners, 1);
    }

    #[test]
    fn holes_are_outside_and_areas_subtract_them() {
        let mut outer = square(120.0, 32.0, 0.02);
        let hole = square(120.005, 32.005, 0.01);
        outer.holes.push(hole.exterior.clone());
        assert!(!outer.contains(Point::new(120.01, 32.01)));
        assert!(outer.contains(Point::new(120.001, 32.001)));
        let ratio = outer.area_m2() / square(120.0, 32.0, 0.02).area_m2();
        assert!((ratio - 0.75).abs() < 1e-4, "{ratio}");
    }

    #[test]
    fn areas_and_distances_are_in_metres() {
        // About 1.1 km by 0.94 km at 32°N.
        let km = square(120.0, 32.0, 0.01);
        let area = km.area_m2();
        assert!((area - 1_048_600.0).abs() < 5_000.0, "{area}");
        let shape = Shape(vec![km]);
        assert_eq!(shape.distance_m(Point::new(120.005, 32.005)), 0.0);
        let north = shape.distance_m(Point::new(120.005, 32.02));
        assert!((north - 1_112.0).abs() < 2.0, "{north}");
    }
}
