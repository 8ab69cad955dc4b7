//! `shiyu bench geo`: point → grid lookups on the demo city's 10,238 grids (through `GridMap`, as the server
//! does: inside a grid, or the nearest grid of the point's county), one core; full routing
//! decisions (lookup, path, catalog, department, verifier); and, with `--database`, the same points against
//! the same polygons in PostgreSQL with PostGIS (`ST_Contains` over a GiST index) in the same run.

use super::{percentile_ms, ratio, round3, Report};
use anyhow::Context;
use shiyu_domain::{route, Directory, Jurisdiction, JurisdictionId};
use shiyu_geo::{geojson, GridMap, Located, Point, Shape};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Executor as _};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct GeoOptions {
    pub lookups: usize,
    pub routes: usize,
    pub postgis_lookups: usize,
    pub database: Option<String>,
}

/// Points spread over the city's bounding box, kept when they fall inside a county (where people live and
/// report), from a fixed generator so that every run asks the same questions.
fn points_in(counties: &[Shape], count: usize) -> Vec<Point> {
    let bbox = counties.iter().fold(shiyu_geo::BBox::EMPTY, |b, s| b.union(s.bbox()));
    let mut state = 0x5EED_2026_u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut points = Vec::with_capacity(count);
    while points.len() < count {
        let p = Point::new(
            bbox.min.lon + next() * (bbox.max.lon - bbox.min.lon),
            bbox.min.lat + next() * (bbox.max.lat - bbox.min.lat),
        );
        if counties.iter().any(|c| c.contains(p)) {
            points.push(p);
        }
    }
    points
}

pub async fn run(options: &GeoOptions) -> anyhow::Result<Report> {
    let city = shiyu_sim::city::nantong()?;
    let map = shiyu_sim::map::nantong_map(&city, 2026).map_err(anyhow::Error::msg)?;
    let county_features =
        geojson::read(shiyu_sim::map::NANTONG_DISTRICTS).map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    let counties: Vec<Shape> = county_features.iter().map(|f| f.shape.clone()).collect();
    let mut jurisdictions: HashMap<JurisdictionId, Jurisdiction> =
        city.jurisdictions.iter().map(|j| (j.id, j.clone())).collect();
    jurisdictions.extend(map.jurisdictions.iter().map(|j| (j.id, j.clone())));
    let id_of = |code: &str| city.jurisdictions.iter().find(|j| j.code == code).map(|j| j.id);
    let county_of = |grid: JurisdictionId| {
        let mut next = Some(grid);
        while let Some(j) = next.and_then(|n| jurisdictions.get(&n)) {
            if j.level == shiyu_domain::Level::County {
                return Some(j.id);
            }
            next = j.parent;
        }
        None
    };
    // Grids only, as the figures in BENCHMARKS.md were measured; 崇川区's micro-grids lie inside them.
    let grid_ids: std::collections::HashSet<JurisdictionId> =
        map.jurisdictions.iter().filter(|j| j.level == shiyu_domain::Level::Grid).map(|j| j.id).collect();
    let grids: Vec<(Shape, JurisdictionId)> = map
        .shapes
        .iter()
        .filter(|(id, _)| grid_ids.contains(id))
        .map(|(id, g)| Ok((geojson::parse_geometry(g).map_err(anyhow::Error::msg)?, *id)))
        .collect::<anyhow::Result<_>>()?;
    let vertices: usize = grids.iter().map(|(s, _)| s.vertex_count()).sum();
    // What the server looks points up in: the grids, with the county boundaries for points outside them.
    let built = Instant::now();
    let index = GridMap::new(
        grids.iter().map(|(shape, id)| (shape.clone(), *id, county_of(*id))).collect(),
        county_features.iter().filter_map(|f| Some((f.shape.clone(), id_of(f.text("code")?)?))).collect(),
    );
    let build_ms = built.elapsed().as_secs_f64() * 1000.0;
    let points = points_in(&counties, options.lookups.max(1));

    // Throughput: the whole batch in a tight loop on this one thread.
    let started = Instant::now();
    let mut found = 0usize;
    for p in &points {
        found += usize::from(matches!(index.locate(*p, 200.0), Located::Inside(_)));
    }
    let lookups_per_s = points.len() as f64 / started.elapsed().as_secs_f64();
    // Latency: each lookup timed on its own (the clock read costs tens of nanoseconds, included).
    let mut latencies: Vec<Duration> = points
        .iter()
        .map(|p| {
            let t = Instant::now();
            std::hint::black_box(index.locate(*p, 200.0));
            t.elapsed()
        })
        .collect();
    latencies.sort();
    let lookup_p99_us = round3(latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e6);

    // Full routing: lookup (or nearest), the chain up to the city, the catalog, the department, the verifier.
    let directory =
        Directory { jurisdictions: &jurisdictions, departments: &city.departments, users: &city.users };
    let path_to =
        |id: JurisdictionId| shiyu_domain::chain_to(id, |j| jurisdictions.get(&j)).unwrap_or_default();
    let mut route_times = Vec::with_capacity(options.routes);
    let mut routed = 0usize;
    for (n, p) in points.iter().cycle().take(options.routes.max(1)).enumerate() {
        let matter = &city.matters[n % city.matters.len()];
        let t = Instant::now();
        if let Some(grid) = index.locate(*p, 200.0).value() {
            let path = path_to(*grid);
            routed += usize::from(route(directory, &path, Some(matter)).is_ok_and(|r| r.lead.is_some()));
        }
        route_times.push(t.elapsed());
    }
    route_times.sort();

    let mut report = Report::new("geo");
    report.set("grids", grids.len() as u64);
    report.set("grid_vertices", vertices as u64);
    report.set("index_build_ms", round3(build_ms));
    report.set("lookups", points.len() as u64);
    report.set("found", found as u64);
    report.set("lookups_per_s", lookups_per_s.round());
    report.set("lookup_p99_us", lookup_p99_us);
    report.set("routes", route_times.len() as u64);
    report.set("routed_to_a_department", routed as u64);
    report.set("route_p99_ms", percentile_ms(&route_times, 990));
    if let Some(url) = &options.database {
        let sample = &points[..options.postgis_lookups.clamp(1, points.len())];
        let postgis = postgis_lookups_per_s(url, &grids, sample).await?;
        report.set("postgis_lookups", sample.len() as u64);
        report.set("postgis_lookups_per_s", postgis.round());
        report.set("ratio_vs_postgis", ratio(lookups_per_s, postgis));
    }
    Ok(report)
}

/// The same polygons in a PostGIS table with a GiST index, the same points asked one by one over one
/// connection, as a service would.
async fn postgis_lookups_per_s(
    url: &str,
    grids: &[(Shape, JurisdictionId)],
    points: &[Point],
) -> anyhow::Result<f64> {
    let options = PgConnectOptions::from_str(url).context("parsing --database")?;
    let mut conn = options.connect().await.context("connecting to PostgreSQL")?;
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        .await
        .context("PostGIS is needed for the comparison (Debian: apt-get install postgresql-15-postgis-3)")?;
    conn.execute("DROP TABLE IF EXISTS shiyu_bench_grids; CREATE TABLE shiyu_bench_grids (id BIGINT PRIMARY KEY, geom geometry(MultiPolygon, 4326) NOT NULL)")
        .await?;
    for chunk in grids.chunks(500) {
        let mut query =
            sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO shiyu_bench_grids (id, geom) ");
        query.push_values(chunk, |mut row, (shape, id)| {
            row.push_bind(id.0)
                .push("ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(")
                .push_bind_unseparated(geojson::geometry_json(shape).to_string())
                .push_unseparated("), 4326))");
        });
        query.build().execute(&mut conn).await?;
    }
    conn.execute("CREATE INDEX ON shiyu_bench_grids USING gist (geom); ANALYZE shiyu_bench_grids").await?;
    let started = Instant::now();
    for p in points {
        let _: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM shiyu_bench_grids WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY id LIMIT 1",
        )
        .bind(p.lon)
        .bind(p.lat)
        .fetch_optional(&mut conn)
        .await?;
    }
    let per_s = points.len() as f64 / started.elapsed().as_secs_f64();
    conn.execute("DROP TABLE shiyu_bench_grids").await?;
    Ok(per_s)
}
