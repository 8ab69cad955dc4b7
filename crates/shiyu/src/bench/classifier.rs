//! `shiyu bench classifier`: the matter classifier's accuracy on phrasings it has never seen, against the
//! figure `shiyu train-classifier` reports (every fifth case held out), on the same descriptions.
//!
//! The demo's descriptions come from six or seven phrasings per matter with places filled in, so a held-out
//! case nearly always shares its phrasing with cases the model learned from, and that figure is close to
//! 100%. Holding out whole phrasings (each matter's phrasing k in round k) asks what a report in words of its
//! own would meet: the words that carry over between phrasings (燃气, 噪音, 井盖 …) are all the model has.

use super::{ratio, round3, Report};
use shiyu_domain::Rules;
use shiyu_sim::history::{CityData, World};
use shiyu_text::classify::{catalog_prior, evaluate_unseen_groups, train_and_evaluate};
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct ClassifierOptions {
    /// Descriptions written of each phrasing of each matter.
    pub each: usize,
    pub seed: u64,
}

pub async fn run(options: &ClassifierOptions) -> anyhow::Result<Report> {
    let city = shiyu_sim::city::nantong()?;
    let world =
        World::new(Rules::default(), CityData::of(&city), shiyu_sim::simulate::URBAN_COUNTIES, options.seed)?;
    let phrased = world.phrased_descriptions(options.each, options.seed);
    let matters = phrased.iter().map(|p| p.matter.as_str()).collect::<std::collections::HashSet<_>>().len();
    let grouped: Vec<(String, String, usize)> =
        phrased.into_iter().map(|p| (p.text, p.matter, p.phrasing)).collect();
    let phrasings = grouped.iter().map(|(_, m, g)| (m, g)).collect::<std::collections::HashSet<_>>().len();
    say!("{} descriptions of {matters} matters in {phrasings} phrasings", grouped.len());

    let started = Instant::now();
    let by_case: Vec<(String, String)> = grouped.iter().map(|(t, m, _)| (t.clone(), m.clone())).collect();
    // The catalog's names, as the server trains with them.
    let prior = catalog_prior(city.matters.iter().map(|m| (m.name.as_str(), m.code.as_str())));
    let (_, seen) = train_and_evaluate(&by_case, 5, &prior)
        .ok_or_else(|| anyhow::anyhow!("the catalog has no phrasings to learn from"))?;
    say!("every fifth description held out: top-1 {:.1}%", seen.top1 * 100.0);
    let unseen = evaluate_unseen_groups(&grouped, &prior);
    say!("whole phrasings held out: top-1 {:.1}%", unseen.top1 * 100.0);

    let mut report = Report::new("classifier");
    report.set("matters", matters);
    report.set("phrasings", phrasings);
    report.set("descriptions", grouped.len());
    report.set("by_case_trained_on", seen.trained_on);
    report.set("by_case_held_out", seen.held_out);
    report.set("by_case_top1", round3(seen.top1));
    report.set("by_case_top3", round3(seen.top3));
    report.set("unseen_phrasing_trained_on", unseen.trained_on);
    report.set("unseen_phrasing_held_out", unseen.held_out);
    report.set("unseen_phrasing_top1", round3(unseen.top1));
    report.set("unseen_phrasing_top3", round3(unseen.top3));
    report.set("top1_ratio_unseen_to_by_case", ratio(unseen.top1, seen.top1));
    report.set("seconds", round3(started.elapsed().as_secs_f64()));
    Ok(report)
}
