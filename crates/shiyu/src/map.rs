//! `shiyu import divisions|boundaries|grids FILE` and `shiyu export grids`: the map in and out. Every
//! import is planned and checked in full first (`shiyu_geo::import`) and then written in one transaction,
//! so a file with any problem changes nothing.

use anyhow::{bail, Context};
use shiyu_domain::JurisdictionId;
use shiyu_geo::import::{export_grids, plan_boundaries, plan_divisions, plan_grids, MapPlan};
use shiyu_geo::{geojson, Shape};
use shiyu_store::Store;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// `level,code,name,parent_code` lines
    Divisions,
    /// GeoJSON outlines of known jurisdictions (features with `code`, `name`, `level`)
    Boundaries,
    /// GeoJSON grids and micro-grids (features with `code`, `name`, `level`, `parent_code`)
    Grids,
}

/// A progress line on standard error, redrawn at most five times a second.
struct ProgressLine {
    drawn: Option<Instant>,
}

impl ProgressLine {
    fn show(&mut self, what: &str, done: usize, total: usize) {
        let finished = done >= total;
        if !finished && self.drawn.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.drawn = Some(Instant::now());
        let percent = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let filled = percent / 5;
        let mut err = std::io::stderr();
        let _ =
            write!(err, "\r{what:<18} [{}{}] {done}/{total}", "#".repeat(filled), " ".repeat(20 - filled));
        if finished {
            let _ = writeln!(err);
        }
    }
}

pub async fn outlines(store: &dyn Store) -> anyhow::Result<HashMap<JurisdictionId, Shape>> {
    store
        .shapes()
        .await?
        .into_iter()
        .map(|(id, text)| {
            let shape = geojson::parse_geometry(&text).map_err(anyhow::Error::msg)?;
            Ok((id, shape))
        })
        .collect()
}

pub async fn import(
    store: &dyn Store,
    kind: ImportKind,
    file: &Path,
    tolerance_m: f64,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let existing = store.jurisdictions().await?;
    let mut progress = ProgressLine { drawn: None };
    let planned = match kind {
        ImportKind::Divisions => plan_divisions(&existing, &text)
            .map_err(|problems| problems.iter().map(ToString::to_string).collect()),
        ImportKind::Boundaries => plan_boundaries(&existing, &text),
        ImportKind::Grids => {
            let outlines = outlines(store).await?;
            plan_grids(&existing, &outlines, &text, tolerance_m, &mut |what, done, total| {
                progress.show(what, done, total)
            })
        }
    };
    let plan: MapPlan = match planned {
        Ok(plan) => plan,
        Err(problems) => {
            for problem in &problems {
                eprintln!("  {problem}");
            }
            bail!("{} problem(s) in {}; nothing was imported", problems.len(), file.display());
        }
    };
    store.put_map(&plan.jurisdictions, &plan.shapes).await.context("writing the import")?;
    println!(
        "imported {}: {} new, {} updated, {} outlines",
        file.display(),
        plan.added,
        plan.changed,
        plan.shapes.len()
    );
    Ok(())
}

pub async fn export(store: &dyn Store, to: Option<&Path>) -> anyhow::Result<()> {
    let collection = export_grids(&store.jurisdictions().await?, &outlines(store).await?);
    let count = collection["features"].as_array().map_or(0, Vec::len);
    let text = collection.to_string();
    match to {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported {count} grids to {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}
