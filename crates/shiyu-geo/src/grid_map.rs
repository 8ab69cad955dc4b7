//! The city's grids for lookups, with the county boundaries beside them: a point that falls in no grid goes
//! to the nearest grid of the county it lies in, never across a county line (the margins along boundaries
//! are where the nearest grid is most often on the other side).

use crate::index::{Located, ShapeIndex};
use crate::shape::{Point, Shape};
use shiyu_domain::JurisdictionId;

#[derive(Debug)]
pub struct GridMap {
    grids: ShapeIndex<(JurisdictionId, Option<JurisdictionId>)>,
    counties: ShapeIndex<JurisdictionId>,
}

impl Default for GridMap {
    fn default() -> Self {
        GridMap::new(Vec::new(), Vec::new())
    }
}

impl GridMap {
    /// `grids`: outline, grid (or micro-grid) id and its county, in the order that decides overlaps
    /// (micro-grids first); `counties`: county outlines.
    pub fn new(
        grids: Vec<(Shape, JurisdictionId, Option<JurisdictionId>)>,
        counties: Vec<(Shape, JurisdictionId)>,
    ) -> GridMap {
        GridMap {
            grids: ShapeIndex::new(grids.into_iter().map(|(shape, id, county)| (shape, (id, county)))),
            counties: ShapeIndex::new(counties),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// The grid containing `p`, or the nearest grid of `p`'s county within `tolerance_m` metres.
    pub fn locate(&self, p: Point, tolerance_m: f64) -> Located<'_, JurisdictionId> {
        if let Some((id, _)) = self.grids.locate(p) {
            return Located::Inside(id);
        }
        // Only a point outside every grid needs to know its county.
        let county = self.counties.locate(p).copied();
        match self.grids.locate_or_nearest_where(p, tolerance_m, |(_, of)| county.is_none() || *of == county)
        {
            Located::Inside((id, _)) => Located::Inside(id),
            Located::Near((id, _), d) => Located::Near(id, d),
            Located::Outside => Located::Outside,
        }
    }
}
