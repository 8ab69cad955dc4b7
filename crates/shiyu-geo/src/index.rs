//! Point → shape lookup: a static R-tree packed by sort-tile-recursive, in flat arrays, over the bounding
//! boxes of every shape; candidates are then tested exactly. Built once per import, read by every request.

use crate::shape::{BBox, Point, Shape};

/// Children per node: wide enough that the tree stays three or four levels deep for a city's grids.
const FANOUT: usize = 16;
/// Room for the depth-first walk: FANOUT children per level for more levels than any city needs
/// (16⁸ shapes, far beyond any city).
const STACK: usize = FANOUT * 8;

#[derive(Clone, Copy, Debug)]
struct Node {
    bbox: BBox,
    /// Index of the first child in the level below (or of the first entry, on the lowest level).
    first: usize,
    count: usize,
}

/// Where a point fell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located<'a, T> {
    /// Inside this shape.
    Inside(&'a T),
    /// Outside every shape, but this one is the nearest and within the tolerance (metres away).
    Near(&'a T, f64),
    /// Nothing within the tolerance.
    Outside,
}

impl<'a, T> Located<'a, T> {
    pub fn value(self) -> Option<&'a T> {
        match self {
            Located::Inside(v) | Located::Near(v, _) => Some(v),
            Located::Outside => None,
        }
    }
}

/// Shapes with a value each (a grid's id, say), for lookups by point.
#[derive(Debug)]
struct Entry<T> {
    bbox: BBox,
    shape: Shape,
    value: T,
    /// Position in the input: where shapes overlap, the earlier one wins.
    order: usize,
}

#[derive(Debug)]
pub struct ShapeIndex<T> {
    /// In tree order (sort-tile-recursive), not input order.
    entries: Vec<Entry<T>>,
    /// Levels from the leaves (over `entries`) up to the single root.
    levels: Vec<Vec<Node>>,
}

impl<T> ShapeIndex<T> {
    /// Builds the index. Where shapes overlap, the one given first wins, so callers order the input (by
    /// code, say) to make every lookup deterministic.
    pub fn new(shapes: impl IntoIterator<Item = (Shape, T)>) -> ShapeIndex<T> {
        let mut entries: Vec<Entry<T>> = shapes
            .into_iter()
            .enumerate()
            .map(|(order, (shape, value))| Entry { bbox: shape.bbox(), shape, value, order })
            .collect();
        // Sort-tile-recursive: slices by longitude, then runs of FANOUT by latitude within each slice.
        let leaves = entries.len().div_ceil(FANOUT).max(1);
        let slices = (leaves as f64).sqrt().ceil() as usize;
        let per_slice = slices.max(1) * FANOUT;
        entries.sort_by(|a, b| a.bbox.centre().lon.total_cmp(&b.bbox.centre().lon));
        for slice in entries.chunks_mut(per_slice) {
            slice.sort_by(|a, b| a.bbox.centre().lat.total_cmp(&b.bbox.centre().lat));
        }
        let mut levels = Vec::new();
        let mut boxes: Vec<BBox> = entries.iter().map(|e| e.bbox).collect();
        loop {
            let level: Vec<Node> = boxes
                .chunks(FANOUT)
                .enumerate()
                .map(|(i, chunk)| Node {
                    bbox: chunk.iter().fold(BBox::EMPTY, |b, c| b.union(*c)),
                    first: i * FANOUT,
                    count: chunk.len(),
                })
                .collect();
            boxes = level.iter().map(|n| n.bbox).collect();
            let done = level.len() <= 1;
            levels.push(level);
            if done {
                break;
            }
        }
        ShapeIndex { entries, levels }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Calls `visit` with the value of every shape whose bounding box intersects `area`.
    pub fn for_each_intersecting(&self, area: BBox, mut visit: impl FnMut(&T)) {
        self.visit_entries(area, |entry| visit(&entry.value));
    }

    fn visit_entries<'a>(&'a self, area: BBox, mut visit: impl FnMut(&'a Entry<T>)) {
        let Some(top) = self.levels.len().checked_sub(1) else { return };
        // Depth-first with a stack on the stack: a lookup allocates nothing. Each level pushes at most FANOUT
        // children, so the stack never holds more than FANOUT × levels entries.
        let mut stack = [(0usize, 0usize); STACK];
        let mut len = 0;
        for i in (0..self.levels[top].len()).rev() {
            if len < STACK {
                stack[len] = (top, i);
                len += 1;
            }
        }
        while len > 0 {
            len -= 1;
            let (level, i) = stack[len];
            let node = self.levels[level][i];
            if !node.bbox.intersects(area) {
                continue;
            }
            for child in node.first..node.first + node.count {
                if level > 0 {
                    if len < STACK {
                        stack[len] = (level - 1, child);
                        len += 1;
                    }
                } else if self.entries[child].bbox.intersects(area) {
                    visit(&self.entries[child]);
                }
            }
        }
    }

    /// The shape containing `p`.
    pub fn locate(&self, p: Point) -> Option<&T> {
        let mut found: Option<&Entry<T>> = None;
        self.visit_entries(BBox::of([p]), |entry| {
            if found.is_none_or(|f| entry.order < f.order) && entry.shape.contains(p) {
                found = Some(entry);
            }
        });
        found.map(|e| &e.value)
    }

    /// The shape containing `p`, or else the nearest one within `tolerance_m` metres.
    pub fn locate_or_nearest(&self, p: Point, tolerance_m: f64) -> Located<'_, T> {
        self.locate_or_nearest_where(p, tolerance_m, |_| true)
    }

    /// As [`ShapeIndex::locate_or_nearest`], but the nearest shape must be `acceptable`.
    pub fn locate_or_nearest_where(
        &self,
        p: Point,
        tolerance_m: f64,
        acceptable: impl Fn(&T) -> bool,
    ) -> Located<'_, T> {
        if let Some(value) = self.locate(p) {
            return Located::Inside(value);
        }
        let mut best: Option<(f64, &Entry<T>)> = None;
        self.visit_entries(BBox::of([p]).grown(tolerance_m), |entry| {
            if !acceptable(&entry.value) {
                return;
            }
            let d = entry.shape.distance_m(p);
            if d <= tolerance_m && best.is_none_or(|(bd, b)| d < bd || (d == bd && entry.order < b.order)) {
                best = Some((d, entry));
            }
        });
        match best {
            Some((d, entry)) => Located::Near(&entry.value, d),
            None => Located::Outside,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Shape, &T)> {
        self.entries.iter().map(|e| (&e.shape, &e.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{Polygon, Ring};

    fn square(lon: f64, lat: f64, size: f64) -> Shape {
        let corners = [(0.0, 0.0), (size, 0.0), (size, size), (0.0, size)];
        let ring = Ring(corners.iter().map(|&(dx, dy)| Point::new(lon + dx, lat + dy)).collect());
        Shape(vec![Polygon { exterior: ring, holes: vec![] }])
    }

    /// A 100 × 100 chessboard of 0.001° squares whose neighbours share their corners exactly: every lookup
    /// must agree with a scan of all squares.
    #[test]
    fn lookups_agree_with_a_full_scan() {
        let lon = |i: usize| 120.0 + i as f64 * 0.001;
        let lat = |j: usize| 32.0 + j as f64 * 0.001;
        let cell = |i: usize, j: usize| {
            let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let ring = Ring(corners.iter().map(|&(x, y)| Point::new(lon(x), lat(y))).collect());
            Shape(vec![Polygon { exterior: ring, holes: vec![] }])
        };
        let squares: Vec<(Shape, usize)> = (0..10_000).map(|n| (cell(n % 100, n / 100), n)).collect();
        let index = ShapeIndex::new(squares.clone());
        assert_eq!(index.len(), 10_000);
        let mut state = 12345_u64;
        for _ in 0..2_000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let p = Point::new(
                119.99 + (state >> 11) as f64 / (1u64 << 53) as f64 * 0.12,
                31.99 + (state % 1_000_003) as f64 / 1_000_003.0 * 0.12,
            );
            let scanned = squares.iter().find(|(s, _)| s.contains(p)).map(|(_, v)| v);
            assert_eq!(index.locate(p), scanned, "{p:?}");
        }
        // A corner shared by four squares goes to exactly one: the one north-east of it.
        assert_eq!(
            index.locate(Point::new(120.0 + 50.0 * 0.001, 32.0 + 50.0 * 0.001)),
            Some(&(50 * 100 + 50))
        );
    }

    #[test]
    fn outside_points_go_to_the_nearest_shape_within_the_tolerance() {
        let index =
            ShapeIndex::new(vec![(square(120.0, 32.0, 0.01), "a"), (square(120.02, 32.0, 0.01), "b")]);
        // 0.0005° east of "a" (about 47 m), 0.0095° west of "b".
        let p = Point::new(120.0105, 32.005);
        match index.locate_or_nearest(p, 100.0) {
            Located::Near(v, d) => assert!(*v == "a" && (d - 47.0).abs() < 1.0, "{v} {d}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(index.locate_or_nearest(p, 10.0), Located::Outside);
        assert_eq!(index.locate_or_nearest(Point::new(120.025, 32.005), 10.0), Located::Inside(&"b"));
    }

    #[test]
    fn where_shapes_overlap_the_earlier_one_wins() {
        let index = ShapeIndex::new(vec![(square(120.0, 32.0, 0.02), 1), (square(120.0, 32.0, 0.01), 2)]);
        assert_eq!(index.locate(Point::new(120.005, 32.005)), Some(&1));
        let reversed = ShapeIndex::new(vec![(square(120.0, 32.0, 0.01), 2), (square(120.0, 32.0, 0.02), 1)]);
        assert_eq!(reversed.locate(Point::new(120.005, 32.005)), Some(&2));
    }
}
