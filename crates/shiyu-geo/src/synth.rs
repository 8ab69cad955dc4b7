//! Grids for a city that has none to import. Real grid boundaries are not published anywhere, so the demo
//! (and any city trying Shiyu before its survey data is ready) gets believable ones, made like this:
//!
//! 1. A lattice of square cells (100 m by default) is laid over the city. A cell belongs to a county when
//!    its centre and its four corners lie inside the county's real boundary and no boundary vertex falls in
//!    it, so every synthesised shape stays inside the real boundaries; the thin margins left along them are
//!    what the lookup's nearest-grid tolerance is for.
//! 2. Each county's cells are shared out among its townships, each township's among its communities, and
//!    each community's among its grids, by growing regions from seed cells across neighbouring cells
//!    (Dijkstra, so every region is one connected piece wherever the land is). Seeds come from a few rounds
//!    of k-means over the cells; growth speeds make streets (街道) smaller than towns and villages, so urban
//!    areas are denser.
//! 3. Grid counts follow area: a grid covers about `urban_grid_km2` in urban counties and `rural_grid_km2`
//!    elsewhere.
//! 4. In the counties named in `micro_grid_counties`, each grid's cells are shared out again, the same way,
//!    among three to five micro-grids (微网格); a grid of fewer than three cells is one micro-grid. Their
//!    draws come from a generator of their own, so adding micro-grids leaves every grid as it was.
//! 5. Each region's outline is traced along its cells' outer edges, so neighbours share their edges exactly:
//!    no overlap and no gap, by construction.
//!
//! Everything is a function of the inputs and the seed.

use crate::shape::{BBox, Point, Polygon, Ring, Shape, METRES_PER_DEGREE};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// A unit of the division list to be given a shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Division {
    pub code: String,
    pub name: String,
    pub parent_code: String,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub cell_m: f64,
    pub urban_grid_km2: f64,
    pub rural_grid_km2: f64,
    /// Counties whose grids are small (city districts).
    pub urban_counties: Vec<String>,
    /// Counties without a published boundary, each carved out of the named host county's cells (the part
    /// furthest south-east, in proportion to its communities).
    pub carved: Vec<(String, String)>,
    /// Counties whose grids are divided into micro-grids (微网格), three to five each.
    pub micro_grid_counties: Vec<String>,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub parent_code: String,
    pub shape: Shape,
}

#[derive(Clone, Debug, Default)]
pub struct Synthesised {
    /// Counties carved out of others (their shape is the union of their cells).
    pub carved_counties: Vec<Region>,
    pub townships: Vec<Region>,
    pub communities: Vec<Region>,
    pub grids: Vec<Region>,
    /// Micro-grids, in the order of their grids; the parent is the grid.
    pub micro_grids: Vec<Region>,
}

/// The lattice: cell (i, j) spans [lon(i), lon(i + 1)] × [lat(j), lat(j + 1)].
#[derive(Clone, Copy, Debug)]
struct Lattice {
    origin: Point,
    dlon: f64,
    dlat: f64,
    columns: usize,
    rows: usize,
}

impl Lattice {
    fn over(bbox: BBox, cell_m: f64) -> Lattice {
        let dlat = cell_m / METRES_PER_DEGREE;
        let dlon = dlat / bbox.centre().lat.to_radians().cos();
        Lattice {
            origin: bbox.min,
            dlon,
            dlat,
            columns: ((bbox.max.lon - bbox.min.lon) / dlon).ceil() as usize + 1,
            rows: ((bbox.max.lat - bbox.min.lat) / dlat).ceil() as usize + 1,
        }
    }

    /// One formula for every corner, so that neighbouring cells share their corners bit for bit.
    fn corner(&self, i: usize, j: usize) -> Point {
        Point::new(self.origin.lon + i as f64 * self.dlon, self.origin.lat + j as f64 * self.dlat)
    }

    fn centre(&self, cell: usize) -> Point {
        let (i, j) = (cell % self.columns, cell / self.columns);
        Point::new(
            self.origin.lon + (i as f64 + 0.5) * self.dlon,
            self.origin.lat + (j as f64 + 0.5) * self.dlat,
        )
    }

    fn cell_of(&self, p: Point) -> Option<usize> {
        let i = ((p.lon - self.origin.lon) / self.dlon).floor();
        let j = ((p.lat - self.origin.lat) / self.dlat).floor();
        (i >= 0.0 && j >= 0.0 && (i as usize) < self.columns && (j as usize) < self.rows)
            .then(|| j as usize * self.columns + i as usize)
    }

    fn neighbours(&self, cell: usize) -> impl Iterator<Item = usize> {
        let (i, j, columns, rows) = (cell % self.columns, cell / self.columns, self.columns, self.rows);
        [
            (i > 0).then(|| cell - 1),
            (i + 1 < columns).then(|| cell + 1),
            (j > 0).then(|| cell - columns),
            (j + 1 < rows).then(|| cell + columns),
        ]
        .into_iter()
        .flatten()
    }
}

/// A small deterministic generator (SplitMix64): the synthesis must not change with a library's version.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Builds townships, communities, grids and micro-grids inside `counties` (code and real boundary).
pub fn synthesise(
    counties: &[(String, Shape)],
    townships: &[Division],
    communities: &[Division],
    options: &Options,
) -> Synthesised {
    let bbox = counties.iter().fold(BBox::EMPTY, |b, (_, s)| b.union(s.bbox()));
    let lattice = Lattice::over(bbox, options.cell_m);
    let mut rng = Mix(options.seed);
    // Micro-grids draw from their own stream, so that the grids do not depend on which counties have them.
    let mut micro_rng = Mix(options.seed ^ 0x6D69_6372_6F67_7269);
    let mut county_cells = county_cells(&lattice, counties);
    let children = |parent: &str, list: &[Division]| -> Vec<Division> {
        let mut found: Vec<Division> = list.iter().filter(|d| d.parent_code == parent).cloned().collect();
        found.sort_by(|a, b| a.code.cmp(&b.code));
        found
    };
    let community_count = |county: &str| -> usize {
        children(county, townships).iter().map(|t| children(&t.code, communities).len()).sum()
    };
    let mut out = Synthesised::default();
    for (carved, host) in &options.carved {
        let Some(host_cells) = county_cells.get_mut(host) else { continue };
        let share =
            community_count(carved) as f64 / (community_count(carved) + community_count(host)).max(1) as f64;
        // The south-east of the host: largest (lon − lat) first.
        host_cells.sort_by(|&a, &b| {
            let (pa, pb) = (lattice.centre(a), lattice.centre(b));
            (pb.lon - pb.lat).total_cmp(&(pa.lon - pa.lat)).then(a.cmp(&b))
        });
        let taken: Vec<usize> =
            host_cells.drain(..(host_cells.len() as f64 * share).round() as usize).collect();
        host_cells.sort_unstable();
        out.carved_counties.push(Region {
            code: carved.clone(),
            name: carved.clone(),
            parent_code: String::new(),
            shape: trace(&lattice, &taken),
        });
        county_cells.insert(carved.clone(), taken);
    }
    let mut codes: Vec<&String> = county_cells.keys().collect();
    codes.sort();
    for county in codes {
        let cells = &county_cells[county];
        let urban = options.urban_counties.contains(county);
        let micro = options.micro_grid_counties.contains(county);
        let towns = children(county, townships);
        // Streets (街道) are the built-up part of a county: their regions grow slower, so they come out smaller.
        let speeds: Vec<f64> =
            towns.iter().map(|t| if t.name.ends_with("街道") { 0.5 } else { 1.0 }).collect();
        for (town, town_cells) in towns.iter().zip(split(&lattice, cells, &speeds, &mut rng)) {
            out.townships.push(region(town, &lattice, &town_cells));
            let villages = children(&town.code, communities);
            let even = vec![1.0; villages.len()];
            for (village, village_cells) in villages.iter().zip(split(&lattice, &town_cells, &even, &mut rng))
            {
                out.communities.push(region(village, &lattice, &village_cells));
                let km2 = village_cells.len() as f64 * options.cell_m * options.cell_m / 1e6;
                let per_grid = if urban { options.urban_grid_km2 } else { options.rural_grid_km2 };
                let count = ((km2 / per_grid).round() as usize).clamp(1, 30).min(village_cells.len().max(1));
                for (n, grid_cells) in
                    split(&lattice, &village_cells, &vec![1.0; count], &mut rng).iter().enumerate()
                {
                    let grid = Division {
                        code: format!("{}{:03}", village.code, n + 1),
                        name: format!("{}第{}网格", village.name, n + 1),
                        parent_code: village.code.clone(),
                    };
                    out.grids.push(region(&grid, &lattice, grid_cells));
                    if micro {
                        out.micro_grids.extend(micro_grids(&lattice, &grid, grid_cells, &mut micro_rng));
                    }
                }
            }
        }
    }
    out
}

/// A grid's cells shared out among three to five micro-grids (no more than it has cells), or one micro-grid
/// the same as the grid when it has fewer than three. Codes add two digits to the grid's.
fn micro_grids(lattice: &Lattice, grid: &Division, cells: &[usize], rng: &mut Mix) -> Vec<Region> {
    let parts = match cells.len() {
        0 => Vec::new(),
        1 | 2 => vec![cells.to_vec()],
        n => split(lattice, cells, &vec![1.0; (3 + rng.below(3)).min(n)], rng),
    };
    parts
        .iter()
        .enumerate()
        .map(|(n, micro_cells)| {
            let micro = Division {
                code: format!("{}{:02}", grid.code, n + 1),
                name: format!("{}第{}微网格", grid.name, n + 1),
                parent_code: grid.code.clone(),
            };
            region(&micro, lattice, micro_cells)
        })
        .collect()
}

fn region(division: &Division, lattice: &Lattice, cells: &[usize]) -> Region {
    Region {
        code: division.code.clone(),
        name: division.name.clone(),
        parent_code: division.parent_code.clone(),
        shape: trace(lattice, cells),
    }
}

/// Which of the longitudes `lons` (ascending) on the line of latitude `lat` are inside `shape`, by the same
/// half-open rule as [`Shape::contains`], but for a whole row at once.
fn row_inside(shape: &Shape, lat: f64, lons: &[f64]) -> Vec<bool> {
    let mut crossings: Vec<f64> = shape
        .0
        .iter()
        .flat_map(Polygon::rings)
        .flat_map(Ring::edges)
        .filter(|(a, b)| (a.lat > lat) != (b.lat > lat))
        .map(|(a, b)| a.lon + (lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat))
        .collect();
    crossings.sort_by(f64::total_cmp);
    // Inside when an odd number of crossings lie strictly east of the point.
    let mut east = 0;
    lons.iter()
        .map(|&lon| {
            while east < crossings.len() && crossings[east] <= lon {
                east += 1;
            }
            (crossings.len() - east) % 2 == 1
        })
        .collect()
}

/// The cells lying wholly inside each county.
fn county_cells(lattice: &Lattice, counties: &[(String, Shape)]) -> HashMap<String, Vec<usize>> {
    let mut result = HashMap::new();
    let corner_lons: Vec<f64> = (0..=lattice.columns).map(|i| lattice.corner(i, 0).lon).collect();
    let centre_lons: Vec<f64> = (0..lattice.columns).map(|i| lattice.centre(i).lon).collect();
    for (code, shape) in counties {
        let vertex_cells: HashSet<usize> = shape
            .0
            .iter()
            .flat_map(Polygon::rings)
            .flat_map(|r| r.0.iter())
            .filter_map(|p| lattice.cell_of(*p))
            .collect();
        let corners_in = |j: usize| row_inside(shape, lattice.corner(0, j).lat, &corner_lons);
        let mut below = corners_in(0);
        let mut cells = Vec::new();
        for j in 0..lattice.rows {
            let above = corners_in(j + 1);
            let centres = row_inside(shape, lattice.centre(j * lattice.columns).lat, &centre_lons);
            for i in 0..lattice.columns {
                let cell = j * lattice.columns + i;
                if centres[i]
                    && below[i]
                    && below[i + 1]
                    && above[i]
                    && above[i + 1]
                    && !vertex_cells.contains(&cell)
                {
                    cells.push(cell);
                }
            }
            below = above;
        }
        result.insert(code.clone(), cells);
    }
    result
}

/// Shares `cells` out among `speeds.len()` connected regions, roughly in proportion to the speeds.
fn split(lattice: &Lattice, cells: &[usize], speeds: &[f64], rng: &mut Mix) -> Vec<Vec<usize>> {
    let n = speeds.len();
    if n == 0 {
        return Vec::new();
    }
    if cells.len() <= n {
        // Too little land: one cell each while they last (a region may stay empty only if cells run out).
        return (0..n).map(|k| cells.get(k).map(|c| vec![*c]).unwrap_or_default()).collect();
    }
    let seeds = seed_cells(lattice, cells, n, rng);
    let member: HashSet<usize> = cells.iter().copied().collect();
    let mut owner: HashMap<usize, usize> = HashMap::with_capacity(cells.len());
    // Dijkstra from every seed at once; a region's cost per step is the inverse of its speed.
    let mut queue: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    for (region, &seed) in seeds.iter().enumerate() {
        queue.push(Reverse((0, region, seed)));
    }
    let step = |region: usize| (1000.0 / speeds[region].max(0.01)) as u64;
    let grow = |queue: &mut BinaryHeap<Reverse<(u64, usize, usize)>>, owner: &mut HashMap<usize, usize>| {
        while let Some(Reverse((cost, region, cell))) = queue.pop() {
            if owner.contains_key(&cell) {
                continue;
            }
            owner.insert(cell, region);
            for next in lattice.neighbours(cell) {
                if member.contains(&next) && !owner.contains_key(&next) {
                    queue.push(Reverse((cost + step(region), region, next)));
                }
            }
        }
    };
    grow(&mut queue, &mut owner);
    // Islands no seed could reach join the region whose seed is nearest, and grow from there.
    while let Some(&stray) = cells.iter().find(|c| !owner.contains_key(c)) {
        let p = lattice.centre(stray);
        let nearest = (0..n)
            .min_by(|&a, &b| {
                p.distance_m(lattice.centre(seeds[a])).total_cmp(&p.distance_m(lattice.centre(seeds[b])))
            })
            .unwrap_or(0);
        queue.push(Reverse((0, nearest, stray)));
        grow(&mut queue, &mut owner);
    }
    let mut regions = vec![Vec::new(); n];
    for &cell in cells {
        if let Some(&region) = owner.get(&cell) {
            regions[region].push(cell);
        }
    }
    regions
}

/// `n` distinct seed cells spread over `cells`: random starts, then three rounds of k-means.
fn seed_cells(lattice: &Lattice, cells: &[usize], n: usize, rng: &mut Mix) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    while chosen.len() < n {
        let cell = cells[rng.below(cells.len())];
        if !chosen.contains(&cell) {
            chosen.push(cell);
        }
    }
    let mut centres: Vec<Point> = chosen.iter().map(|&c| lattice.centre(c)).collect();
    for _ in 0..3 {
        let mut sums = vec![(0.0, 0.0, 0usize); n];
        for &cell in cells {
            let p = lattice.centre(cell);
            let k = nearest(&centres, p);
            sums[k] = (sums[k].0 + p.lon, sums[k].1 + p.lat, sums[k].2 + 1);
        }
        for (centre, (lon, lat, count)) in centres.iter_mut().zip(sums) {
            if count > 0 {
                *centre = Point::new(lon / count as f64, lat / count as f64);
            }
        }
    }
    // Each centre's nearest cell that no other seed has taken.
    let mut seeds = Vec::with_capacity(n);
    let mut taken = HashSet::new();
    for centre in centres {
        let best = cells
            .iter()
            .filter(|c| !taken.contains(*c))
            .min_by(|&&a, &&b| {
                centre
                    .distance_m(lattice.centre(a))
                    .total_cmp(&centre.distance_m(lattice.centre(b)))
                    .then(a.cmp(&b))
            })
            .copied()
            .unwrap_or(cells[0]);
        taken.insert(best);
        seeds.push(best);
    }
    seeds
}

fn nearest(centres: &[Point], p: Point) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (k, c) in centres.iter().enumerate() {
        // Squared degrees with the longitude scaled: enough to rank within a city.
        let d = ((c.lon - p.lon) * 0.85).powi(2) + (c.lat - p.lat).powi(2);
        if d < best.0 {
            best = (d, k);
        }
    }
    best.1
}

/// The outline of a set of cells: its outer rings counter-clockwise, holes clockwise, collinear points
/// dropped. Cells that touch only at a corner are kept apart, so every ring is simple.
fn trace(lattice: &Lattice, cells: &[usize]) -> Shape {
    let set: HashSet<usize> = cells.iter().copied().collect();
    let inside = |i: i64, j: i64| {
        i >= 0
            && j >= 0
            && (i as usize) < lattice.columns
            && (j as usize) < lattice.rows
            && set.contains(&(j as usize * lattice.columns + i as usize))
    };
    // Directed edges between lattice corners with the region on their left.
    let mut outgoing: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
    for &cell in cells {
        let (i, j) = ((cell % lattice.columns) as i64, (cell / lattice.columns) as i64);
        if !inside(i, j - 1) {
            outgoing.entry((i, j)).or_default().push((i + 1, j));
        }
        if !inside(i + 1, j) {
            outgoing.entry((i + 1, j)).or_default().push((i + 1, j + 1));
        }
        if !inside(i, j + 1) {
            outgoing.entry((i + 1, j + 1)).or_default().push((i, j + 1));
        }
        if !inside(i - 1, j) {
            outgoing.entry((i, j + 1)).or_default().push((i, j));
        }
    }
    let mut starts: Vec<(i64, i64)> = outgoing.keys().copied().collect();
    starts.sort_unstable();
    let mut rings: Vec<Vec<(i64, i64)>> = Vec::new();
    for start in starts {
        while let Some(first) = outgoing.get_mut(&start).and_then(Vec::pop) {
            let mut ring = vec![start];
            let (mut from, mut at) = (start, first);
            while at != start {
                ring.push(at);
                let heading = (at.0 - from.0, at.1 - from.1);
                let Some(options) = outgoing.get_mut(&at) else { break };
                // Prefer turning left, then straight on, then right: that keeps to the cell just passed.
                let rank = |to: &(i64, i64)| {
                    let turn = heading.0 * (to.1 - at.1) - heading.1 * (to.0 - at.0);
                    Reverse(turn)
                };
                options.sort_by_key(rank);
                let next = options.remove(0);
                from = at;
                at = next;
            }
            rings.push(simplify(&ring));
        }
    }
    let to_ring =
        |r: &[(i64, i64)]| Ring(r.iter().map(|&(i, j)| lattice.corner(i as usize, j as usize)).collect());
    let mut polygons: Vec<Polygon> = Vec::new();
    let mut holes = Vec::new();
    for ring in &rings {
        let ring = to_ring(ring);
        if ring.signed_area_m2() > 0.0 {
            polygons.push(Polygon { exterior: ring, holes: Vec::new() });
        } else {
            holes.push(ring);
        }
    }
    for hole in holes {
        // A point just to the left of the hole's first edge lies in the region, inside the hole's polygon.
        let (a, b) = (hole.0[0], hole.0[1]);
        let probe = Point::new(
            (a.lon + b.lon) / 2.0 - (b.lat - a.lat) * 1e-3,
            (a.lat + b.lat) / 2.0 + (b.lon - a.lon) * 1e-3,
        );
        let owner = polygons
            .iter()
            .position(|p| Polygon { exterior: p.exterior.clone(), holes: vec![] }.contains(probe));
        if let Some(k) = owner {
            polygons[k].holes.push(hole);
        }
    }
    Shape(polygons)
}

/// Drops corners where the outline runs straight on.
fn simplify(ring: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let n = ring.len();
    (0..n)
        .filter(|&k| {
            let (prev, here, next) = (ring[(k + n - 1) % n], ring[k], ring[(k + 1) % n]);
            (here.0 - prev.0) * (next.1 - here.1) != (here.1 - prev.1) * (next.0 - here.0)
        })
        .map(|k| ring[k])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;

    fn lattice() -> Lattice {
        Lattice::over(BBox { min: Point::new(120.0, 32.0), max: Point::new(120.1, 32.1) }, 1000.0)
    }

    #[test]
    fn outlines_of_cells_are_simple_rings_with_holes_and_corner_touches_kept_apart() {
        let lattice = lattice();
        let c = |i: usize, j: usize| j * lattice.columns + i;
        // A 3 × 3 block with its middle missing, plus a cell touching its corner diagonally.
        let mut cells: Vec<usize> = (0..3)
            .flat_map(|j| (0..3).map(move |i| (i, j)))
            .filter(|&(i, j)| (i, j) != (1, 1))
            .map(|(i, j)| c(i, j))
            .collect();
        cells.push(c(3, 3));
        let shape = trace(&lattice, &cells);
        assert_eq!(shape.0.len(), 2, "the block and the lone cell");
        let block = shape
            .0
            .iter()
            .find(|p| p.exterior.0.len() == 4 && !p.holes.is_empty())
            .expect("the block with its hole");
        assert_eq!(block.holes[0].0.len(), 4);
        for polygon in &shape.0 {
            assert!(
                validate::polygon_problems(polygon).is_empty(),
                "{:?}",
                validate::polygon_problems(polygon)
            );
        }
        let cells_km2 = shape.area_m2() / 1e6;
        assert!((cells_km2 - 9.0).abs() < 0.05, "nine cells of a square kilometre: {cells_km2}");
        assert!(!shape.contains(lattice.centre(c(1, 1))), "the hole is outside");
        assert!(shape.contains(lattice.centre(c(3, 3))));
    }

    /// A square county of about `km` kilometres a side, south-west corner at (`lon`, 32°N).
    fn square_county(code: &str, lon: f64, km: f64) -> (String, Shape) {
        let dlat = km * 1000.0 / METRES_PER_DEGREE;
        let dlon = dlat / 32.0_f64.to_radians().cos();
        let corners = [(lon, 32.0), (lon + dlon, 32.0), (lon + dlon, 32.0 + dlat), (lon, 32.0 + dlat)];
        let ring = Ring(corners.iter().map(|&(lon, lat)| Point::new(lon, lat)).collect());
        (code.to_string(), Shape(vec![Polygon { exterior: ring, holes: vec![] }]))
    }

    fn division(code: &str, name: &str, parent_code: &str) -> Division {
        Division { code: code.into(), name: name.into(), parent_code: parent_code.into() }
    }

    #[test]
    fn grids_of_the_counties_named_split_into_three_to_five_micro_grids_that_tile_them() {
        let counties = [square_county("320613", 120.0, 1.5), square_county("320612", 120.1, 1.5)];
        let townships =
            [division("320613001", "和平桥街道", "320613"), division("320612001", "金沙街道", "320612")];
        let communities = [
            division("320613001001", "桃坞路社区", "320613001"),
            division("320612001001", "南苑社区", "320612001"),
        ];
        let options = Options {
            cell_m: 100.0,
            urban_grid_km2: 0.15,
            rural_grid_km2: 0.15,
            urban_counties: vec!["320613".into(), "320612".into()],
            carved: Vec::new(),
            micro_grid_counties: vec!["320613".into()],
            seed: 11,
        };
        let made = synthesise(&counties, &townships, &communities, &options);
        let ours: Vec<&Region> = made.grids.iter().filter(|g| g.code.starts_with("320613")).collect();
        assert!(ours.len() >= 5, "{} grids in 320613", ours.len());
        assert!(made.micro_grids.iter().all(|m| m.code.starts_with("320613")), "only the county named");
        for grid in &ours {
            let micro: Vec<&Region> =
                made.micro_grids.iter().filter(|m| m.parent_code == grid.code).collect();
            let cells = (grid.shape.area_m2() / 1e4).round() as usize;
            let expected = if cells < 3 { 1..=1 } else { 3..=5.min(cells) };
            assert!(
                expected.contains(&micro.len()),
                "{}: {} cells, {} micro-grids",
                grid.code,
                cells,
                micro.len()
            );
            for (n, m) in micro.iter().enumerate() {
                assert_eq!(m.code, format!("{}{:02}", grid.code, n + 1));
                assert_eq!(m.name, format!("{}第{}微网格", grid.name, n + 1));
                assert!(validate::shape_problems(&m.shape).is_empty(), "{}", m.code);
                assert!(m.shape.area_m2() > 0.0, "{} has land", m.code);
            }
            let total: f64 = micro.iter().map(|m| m.shape.area_m2()).sum();
            let own = grid.shape.area_m2();
            assert!(
                (total - own).abs() <= own * 1e-9,
                "{}: micro-grids {total} m², grid {own} m²",
                grid.code
            );
            let labelled: Vec<(String, Shape)> =
                micro.iter().map(|m| (m.code.clone(), m.shape.clone())).collect();
            assert!(validate::overlaps(&labelled, 0.01).is_empty(), "{}", grid.code);
            assert!(validate::outside_parent(&grid.shape, &labelled, 0.001).is_empty(), "{}", grid.code);
        }
        // Deterministic, and the grids are the same as without micro-grids.
        let again = synthesise(&counties, &townships, &communities, &options);
        assert_eq!(again.micro_grids, made.micro_grids);
        let without = synthesise(
            &counties,
            &townships,
            &communities,
            &Options { micro_grid_counties: Vec::new(), ..options.clone() },
        );
        assert!(without.micro_grids.is_empty());
        assert_eq!(without.grids, made.grids);
    }

    #[test]
    fn a_grid_too_small_to_split_is_one_micro_grid_and_small_ones_keep_a_cell_each() {
        let lattice = lattice();
        let grid = division("320613001001001", "桃坞路社区第1网格", "320613001001");
        let mut rng = Mix(3);
        for cells in [vec![0], vec![0, 1]] {
            let micro = micro_grids(&lattice, &grid, &cells, &mut rng);
            assert_eq!(micro.len(), 1);
            assert_eq!(micro[0].shape, trace(&lattice, &cells), "the same land as the grid");
            assert_eq!(micro[0].code, "32061300100100101");
            assert_eq!(micro[0].name, "桃坞路社区第1网格第1微网格");
            assert_eq!(micro[0].parent_code, grid.code);
        }
        let micro = micro_grids(&lattice, &grid, &[0, 1, 2], &mut rng);
        assert_eq!(micro.len(), 3, "three cells, three micro-grids of one cell");
        assert!(micro.iter().all(|m| (m.shape.area_m2() / 1e6 - 1.0).abs() < 0.05));
        assert!(micro_grids(&lattice, &grid, &[], &mut rng).is_empty(), "no land, no micro-grids");
    }
}
