//! Shiyu's map, with no IO: shapes of jurisdictions and grids, the index that resolves a point to its grid,
//! the checks an import must pass, GeoJSON in and out, and grid synthesis for cities without grid data.

pub mod gazetteer;
pub mod geojson;
pub mod grid_map;
pub mod import;
pub mod index;
pub mod shape;
pub mod synth;
pub mod validate;

pub use grid_map::GridMap;
pub use index::{Located, ShapeIndex};
pub use shape::{BBox, Point, Polygon, Ring, Shape};
