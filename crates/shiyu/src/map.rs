//! `shiyu import divisions|boundaries|grids FILE` and `shiyu export grids`: the map in and out. Every
//! import is planned and checked in full first (`shiyu_geo::import`) and then written in one transaction,
//! so a file with any problem changes nothing.

use crate::progress::ProgressLine;
use anyhow::{bail, Context};
use shiyu_domain::JurisdictionId;
use shiyu_geo::import::{export_grids, plan_boundaries, plan_divisions, plan_grids, MapPlan};
use shiyu_geo::{geojson, Shape};
use shiyu_store::Store;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// `level,code,name,parent_code` lines
    Divisions,
    /// GeoJSON outlines of known jurisdictions (features with `code`, `name`, `level`)
    Boundaries,
    /// GeoJSON grids and micro-grids (features with `code`, `name`, `level`, `parent_code`)
    Grids,
}

pub async fn outlines(store: &dyn Store) -> anyhow::Result<HashMap<JurisdictionId, Shape>> {
    geojson::parse_outlines(store.shapes().await?).map_err(anyhow::Error::msg)
}

pub async fn import(
    store: &dyn Store,
    kind: ImportKind,
    file: &Path,
    tolerance_m: f64,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // Spreadsheet programs (and our own CSV reports) start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let existing = store.jurisdictions().await?;
    let mut progress = ProgressLine::default();
    let planned = match kind {
        ImportKind::Divisions => plan_divisions(&existing, text)
            .map_err(|problems| problems.iter().map(ToString::to_string).collect()),
        ImportKind::Boundaries => plan_boundaries(&existing, &outlines(store).await?, text, tolerance_m),
        ImportKind::Grids => {
            let outlines = outlines(store).await?;
            plan_grids(&existing, &outlines, text, tolerance_m, &mut |what, done, total| {
                progress.show(what, done, total, "")
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
    say!(
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
        None => say!("{text}"),
    }
    Ok(())
}
