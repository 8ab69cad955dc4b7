//! GeoJSON (RFC 7946) feature collections of Polygon and MultiPolygon features, in and out. Reading keeps
//! every feature's properties and reports each malformed feature by its position and, where it has one,
//! its code, instead of stopping at the first.

use crate::shape::{Point, Polygon, Ring, Shape};
use serde_json::{json, Map, Value};
use shiyu_domain::JurisdictionId;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    /// Position in the collection, from 0: how problems name a feature that lacks a code.
    pub position: usize,
    pub properties: Map<String, Value>,
    pub shape: Shape,
}

impl Feature {
    pub fn text(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }

    /// "feature 12 (320613001)", for messages.
    pub fn label(&self) -> String {
        label(self.position, &self.properties)
    }
}

fn label(position: usize, properties: &Map<String, Value>) -> String {
    match properties.get("code").and_then(Value::as_str) {
        Some(code) => format!("feature {position} ({code})"),
        None => format!("feature {position}"),
    }
}

/// Reads a FeatureCollection. `Err` holds one message per feature that could not be read (and a single
/// message when the document itself is not a feature collection).
pub fn read(text: &str) -> Result<Vec<Feature>, Vec<String>> {
    match read_each(text)? {
        (features, problems) if problems.is_empty() => Ok(features),
        (_, problems) => Err(problems),
    }
}

/// The features whose geometry reads, and a problem for each of the others, so that an import can check
/// the rest too and name every problem at once. Only a document that is no FeatureCollection is an `Err`.
pub fn read_each(text: &str) -> Result<(Vec<Feature>, Vec<String>), Vec<String>> {
    let document: Value = serde_json::from_str(text).map_err(|e| vec![format!("not JSON: {e}")])?;
    if document.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(vec!["not a GeoJSON FeatureCollection (\"type\": \"FeatureCollection\")".into()]);
    }
    let Some(features) = document.get("features").and_then(Value::as_array) else {
        return Err(vec!["the collection has no \"features\" array".into()]);
    };
    let mut read = Vec::new();
    let mut problems = Vec::new();
    for (position, feature) in features.iter().enumerate() {
        let properties = feature.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        match feature.get("geometry").ok_or("no geometry").and_then(geometry) {
            Ok(shape) => read.push(Feature { position, properties, shape }),
            Err(why) => problems.push(format!("{}: {why}", label(position, &properties))),
        }
    }
    Ok((read, problems))
}

/// Every stored outline (`Store::shapes`) back into shapes by jurisdiction; the error names the first one
/// that does not parse.
pub fn parse_outlines(
    stored: Vec<(JurisdictionId, String)>,
) -> Result<HashMap<JurisdictionId, Shape>, String> {
    stored
        .into_iter()
        .map(|(id, text)| {
            let shape =
                parse_geometry(&text).map_err(|e| format!("the outline of jurisdiction {}: {e}", id.0))?;
            Ok((id, shape))
        })
        .collect()
}

/// A stored geometry (the `geometry` member of a feature) back into a shape.
pub fn parse_geometry(text: &str) -> Result<Shape, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    geometry(&value).map_err(str::to_string)
}

fn geometry(value: &Value) -> Result<Shape, &'static str> {
    let coordinates = value.get("coordinates").ok_or("the geometry has no coordinates")?;
    match value.get("type").and_then(Value::as_str) {
        Some("Polygon") => Ok(Shape(vec![polygon(coordinates)?])),
        Some("MultiPolygon") => Ok(Shape(
            coordinates
                .as_array()
                .ok_or("MultiPolygon coordinates are not an array")?
                .iter()
                .map(polygon)
                .collect::<Result<_, _>>()?,
        )),
        _ => Err("the geometry is neither a Polygon nor a MultiPolygon"),
    }
}

fn polygon(value: &Value) -> Result<Polygon, &'static str> {
    let rings = value.as_array().ok_or("polygon coordinates are not an array of rings")?;
    let mut rings = rings.iter().map(ring);
    let exterior = rings.next().ok_or("a polygon without rings")??;
    Ok(Polygon { exterior, holes: rings.collect::<Result<_, _>>()? })
}

fn ring(value: &Value) -> Result<Ring, &'static str> {
    let positions = value.as_array().ok_or("a ring is not an array of positions")?;
    let mut points = positions
        .iter()
        .map(|position| match position.as_array().map(Vec::as_slice) {
            Some([lon, lat, ..]) => match (lon.as_f64(), lat.as_f64()) {
                (Some(lon), Some(lat)) if lon.is_finite() && lat.is_finite() => Ok(Point::new(lon, lat)),
                _ => Err("a position's longitude or latitude is not a number"),
            },
            _ => Err("a position is not [longitude, latitude]"),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // GeoJSON repeats the first position at the end; the ring type does not.
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    Ok(Ring(points))
}

/// The GeoJSON geometry of a shape (rings closed, as RFC 7946 wants).
pub fn geometry_json(shape: &Shape) -> Value {
    let ring = |r: &Ring| {
        let mut positions: Vec<Value> = r.0.iter().map(|p| json!([p.lon, p.lat])).collect();
        if let Some(first) = positions.first().cloned() {
            positions.push(first);
        }
        Value::Array(positions)
    };
    let polygon = |p: &Polygon| Value::Array(p.rings().map(ring).collect());
    match shape.0.as_slice() {
        [one] => json!({"type": "Polygon", "coordinates": polygon(one)}),
        many => json!({"type": "MultiPolygon", "coordinates": many.iter().map(polygon).collect::<Vec<_>>()}),
    }
}

/// A FeatureCollection of `(properties, shape)`.
pub fn write<'a>(features: impl IntoIterator<Item = (Map<String, Value>, &'a Shape)>) -> Value {
    let features: Vec<Value> = features
        .into_iter()
        .map(|(properties, shape)| json!({"type": "Feature", "properties": properties, "geometry": geometry_json(shape)}))
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_and_multipolygons_read_and_write_back() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"code":"1","name":"甲"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
            {"type":"Feature","properties":{"code":"2"},"geometry":{"type":"MultiPolygon","coordinates":[[[[2,0],[3,0],[3,1],[2,0]]],[[[4,0],[5,0],[5,1],[4,0]]]]}}]}"#;
        let features = read(text).unwrap();
        assert_eq!(features.len(), 2);
        assert_eq!(features[0].shape.0[0].exterior.0.len(), 4, "the closing position is dropped");
        assert_eq!(features[0].text("name"), Some("甲"));
        assert_eq!(features[1].shape.0.len(), 2);
        let written = write(features.iter().map(|f| (f.properties.clone(), &f.shape)));
        let again = read(&written.to_string()).unwrap();
        assert_eq!(again, features);
    }

    #[test]
    fn every_broken_feature_is_named() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"code":"A"},"geometry":{"type":"Point","coordinates":[0,0]}},
            {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],["x",1]]]}},
            {"type":"Feature","properties":{"code":"C"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,1]]]}}]}"#;
        let problems = read(text).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("feature 0 (A):"), "{problems:?}");
        assert!(problems[1].starts_with("feature 1:"), "{problems:?}");
        assert!(read("[]").is_err());
        assert!(read("{").is_err());
    }
}
