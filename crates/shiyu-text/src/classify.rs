//! The matter classifier (智能分拨): from a report's description, the three likeliest matters of the
//! catalog with a confidence each. Multinomial naive Bayes over the description's words (each word counted
//! once per description, which suits short texts), trained on cases whose matter an operator confirmed or
//! corrected at registration — so every correction is a label for the next training.

use crate::words::words;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Additive smoothing. With a whole unit, a word met in only a few descriptions of a matter weighs less
/// against the words many matters share: the model leans less on one phrasing's wording, which is what a
/// report in words of its own needs (`shiyu bench classifier`: a tenth more right on unseen phrasings than
/// with 0.1, none less on seen ones).
const ALPHA: f64 = 1.0;

/// What the model counts in a description: its words, and each character of them, so that 燃气味 and
/// 燃气泄漏 have something in common although jieba cuts them into different words (marked with `·`, which
/// jieba never leaves inside a word, so that a character is not mistaken for a one-character word).
fn features(text: &str) -> HashSet<String> {
    let words = words(text);
    let characters: Vec<String> = words.iter().flat_map(|w| w.chars()).map(|c| format!("·{c}")).collect();
    words.into_iter().chain(characters).collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    labels: Vec<String>,
    log_prior: Vec<f64>,
    vocabulary: HashMap<String, usize>,
    /// `log_likelihood[label][word]`: log P(word | label).
    log_likelihood: Vec<Vec<f64>>,
    /// How many descriptions it learned from.
    pub examples: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestion {
    pub label: String,
    /// Between 0 and 1; the suggestions of one text sum to at most 1.
    pub confidence: f64,
}

/// Accuracy on descriptions the model did not learn from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Examples the measuring model learned from (the kept model learns from these and the held-out ones).
    pub trained_on: usize,
    pub held_out: usize,
    /// Share of held-out descriptions whose matter was the first suggestion.
    pub top1: f64,
    /// … among the first three.
    pub top3: f64,
}

impl Classifier {
    /// Learns from `(description, matter code)` pairs; `None` without any.
    pub fn train(examples: &[(String, String)]) -> Option<Classifier> {
        if examples.is_empty() {
            return None;
        }
        let mut labels: Vec<String> =
            examples.iter().map(|(_, l)| l.clone()).collect::<HashSet<_>>().into_iter().collect();
        labels.sort();
        let label_index: HashMap<&str, usize> =
            labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
        let mut vocabulary: HashMap<String, usize> = HashMap::new();
        let mut documents = vec![0usize; labels.len()];
        let mut counts: Vec<HashMap<usize, f64>> = vec![HashMap::new(); labels.len()];
        for (text, label) in examples {
            let Some(&k) = label_index.get(label.as_str()) else { continue };
            documents[k] += 1;
            let distinct: HashSet<String> = features(text);
            for word in distinct {
                let next = vocabulary.len();
                let w = *vocabulary.entry(word).or_insert(next);
                *counts[k].entry(w).or_default() += 1.0;
            }
        }
        let size = vocabulary.len() as f64;
        let log_likelihood = counts
            .iter()
            .map(|label_counts| {
                let total: f64 = label_counts.values().sum();
                let denominator = (total + ALPHA * size).ln();
                let mut row = vec![ALPHA.ln() - denominator; vocabulary.len()];
                for (&w, &c) in label_counts {
                    row[w] = (c + ALPHA).ln() - denominator;
                }
                row
            })
            .collect();
        let all = examples.len() as f64;
        Some(Classifier {
            log_prior: documents.iter().map(|&d| (d as f64 / all).ln()).collect(),
            labels,
            vocabulary,
            log_likelihood,
            examples: examples.len(),
        })
    }

    /// The `k` likeliest matters for `text`, most likely first.
    pub fn suggest(&self, text: &str, k: usize) -> Vec<Suggestion> {
        let known: HashSet<usize> =
            features(text).into_iter().filter_map(|w| self.vocabulary.get(&w).copied()).collect();
        let scores: Vec<f64> = (0..self.labels.len())
            .map(|l| self.log_prior[l] + known.iter().map(|&w| self.log_likelihood[l][w]).sum::<f64>())
            .collect();
        // Softmax, shifted by the best score so that nothing overflows.
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - best).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut ranked: Vec<Suggestion> = self
            .labels
            .iter()
            .zip(weights)
            .map(|(label, w)| Suggestion { label: label.clone(), confidence: w / total })
            .collect();
        ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.label.cmp(&b.label)));
        ranked.truncate(k);
        ranked
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

/// Holds out every `every`-th example, trains on the rest and measures; then trains the model to keep on
/// all of them. `prior` is learned from both times and never held out: what is known before any case (the
/// catalog's names of the matters), so that a matter with few cases, or none yet, is still suggested.
/// `None` when there is nothing to learn from.
pub fn train_and_evaluate(
    examples: &[(String, String)],
    every: usize,
    prior: &[(String, String)],
) -> Option<(Classifier, Evaluation)> {
    let every = every.max(2);
    let (held, learn): (Vec<_>, Vec<_>) =
        examples.iter().cloned().enumerate().partition(|(i, _)| i % every == 0);
    let mut learn: Vec<(String, String)> = learn.into_iter().map(|(_, e)| e).collect();
    let held: Vec<(String, String)> = held.into_iter().map(|(_, e)| e).collect();
    let trained_on = learn.len();
    learn.extend(prior.iter().cloned());
    let evaluation = match Classifier::train(&learn) {
        Some(model) => measure(&model, &held, trained_on),
        None => Evaluation { trained_on, held_out: 0, top1: 0.0, top3: 0.0 },
    };
    let everything: Vec<(String, String)> = examples.iter().chain(prior).cloned().collect();
    let mut model = Classifier::train(&everything)?;
    // What it says it learned from is cases; the prior is not a case.
    model.examples = examples.len();
    Some((model, evaluation))
}

/// How many cases a matter's name from the catalog counts as: enough for a matter with few cases to be
/// suggested from its name's words, too few to matter beside the many cases of a common one
/// (`shiyu bench classifier`: 27.8% → 30.7% right first on wording never seen, 48.1% → 52.1% among three).
pub const NAME_COUNTS_AS: usize = 20;

/// The catalog as training examples: each matter's name, as `(name, code)`, `NAME_COUNTS_AS` times.
pub fn catalog_prior<'a>(matters: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    matters
        .into_iter()
        .flat_map(|(name, code)| std::iter::repeat_n((name.to_string(), code.to_string()), NAME_COUNTS_AS))
        .collect()
}

/// How often the model's first suggestion, and its first three, hold the right matter for `held`.
fn measure(model: &Classifier, held: &[(String, String)], trained_on: usize) -> Evaluation {
    let (mut top1, mut top3) = (0usize, 0usize);
    for (text, label) in held {
        let suggested = model.suggest(text, 3);
        top1 += usize::from(suggested.first().is_some_and(|s| &s.label == label));
        top3 += usize::from(suggested.iter().any(|s| &s.label == label));
    }
    let share = |n: usize| if held.is_empty() { 0.0 } else { n as f64 / held.len() as f64 };
    Evaluation { trained_on, held_out: held.len(), top1: share(top1), top3: share(top3) }
}

/// Accuracy on ways of putting things the model has never seen: each example is `(text, label, group)`,
/// where a group is one way of wording a label (a phrasing). Every group is held out once, with the other
/// groups of its label in training, so a text is judged only by words learned from differently worded
/// texts. Labels with a single group are always learned from, never held out (they could not be learned).
/// `trained_on` is the average training set.
pub fn evaluate_unseen_groups(
    examples: &[(String, String, usize)],
    prior: &[(String, String)],
) -> Evaluation {
    let mut groups_of: HashMap<&str, HashSet<usize>> = HashMap::new();
    for (_, label, group) in examples {
        groups_of.entry(label.as_str()).or_default().insert(*group);
    }
    let folds = examples.iter().map(|(_, _, g)| g + 1).max().unwrap_or(0);
    let (mut held_out, mut trained, mut top1, mut top3) = (0usize, 0usize, 0.0, 0.0);
    let mut rounds = 0usize;
    for fold in 0..folds {
        let (held, learn): (Vec<_>, Vec<_>) =
            examples.iter().partition(|(_, label, g)| *g == fold && groups_of[label.as_str()].len() > 1);
        let held: Vec<(String, String)> = held.into_iter().map(|(t, l, _)| (t.clone(), l.clone())).collect();
        let mut learn: Vec<(String, String)> =
            learn.into_iter().map(|(t, l, _)| (t.clone(), l.clone())).collect();
        let trained_on = learn.len();
        learn.extend(prior.iter().cloned());
        let Some(model) = Classifier::train(&learn).filter(|_| !held.is_empty()) else { continue };
        let measured = measure(&model, &held, trained_on);
        top1 += measured.top1 * held.len() as f64;
        top3 += measured.top3 * held.len() as f64;
        held_out += held.len();
        trained += trained_on;
        rounds += 1;
    }
    let share = |hits: f64| if held_out == 0 { 0.0 } else { hits / held_out as f64 };
    Evaluation { trained_on: trained / rounds.max(1), held_out, top1: share(top1), top3: share(top3) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<(String, String)> {
        let data = [
            (
                "street_vending",
                [
                    "路口有流动摊贩占道经营",
                    "人行道上摆摊卖水果",
                    "夜市摊贩占用人行道经营",
                    "商户店外占道摆放货物",
                ],
            ),
            (
                "gas_leak",
                [
                    "楼道里闻到很重的燃气味",
                    "厨房燃气管道漏气",
                    "小区燃气泄漏有异味",
                    "天然气阀门漏气需要抢修",
                ],
            ),
            ("noise", ["楼上装修噪音太大", "夜间施工噪音扰民", "广场舞音响声音太吵", "酒吧深夜噪音扰民"]),
        ];
        data.iter()
            .flat_map(|(label, texts)| texts.iter().map(|t| (t.to_string(), label.to_string())))
            .collect()
    }

    #[test]
    fn it_learns_matters_from_descriptions_and_ranks_with_confidence() {
        let model = Classifier::train(&examples()).unwrap();
        let suggested = model.suggest("闻到燃气味，怀疑管道漏气", 3);
        assert_eq!(suggested[0].label, "gas_leak");
        assert!(suggested[0].confidence > 0.8, "{suggested:?}");
        assert_eq!(suggested.len(), 3);
        let sum: f64 = suggested.iter().map(|s| s.confidence).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert_eq!(model.suggest("凌晨工地施工噪音", 1)[0].label, "noise");
        // Nothing it knows: the priors, still three ranked answers.
        assert_eq!(model.suggest("今天天气不错", 3).len(), 3);
        assert!(Classifier::train(&[]).is_none());
    }

    #[test]
    fn unseen_phrasings_are_judged_by_words_learned_from_other_phrasings() {
        // Two phrasings each, sharing the words that matter; a third label with one phrasing only.
        let grouped = |label: &str, phrasings: [[&str; 2]; 2]| -> Vec<(String, String, usize)> {
            phrasings
                .iter()
                .enumerate()
                .flat_map(|(g, texts)| texts.iter().map(move |t| (t.to_string(), label.to_string(), g)))
                .collect()
        };
        let mut examples =
            grouped("gas_leak", [["燃气泄漏很危险", "燃气泄漏了快来"], ["闻到燃气味", "楼道燃气味重"]]);
        examples
            .extend(grouped("noise", [["装修噪音太大", "噪音吵得睡不着"], ["夜里噪音扰民", "广场噪音扰民"]]));
        examples.push(("路灯坏了".to_string(), "street_light".to_string(), 0));
        let evaluation = evaluate_unseen_groups(&examples, &[]);
        assert_eq!(
            evaluation.held_out, 8,
            "every text of a label with two phrasings, once; not the lone one"
        );
        assert_eq!(evaluation.top1, 1.0, "燃气 and 噪音 carry over between phrasings: {evaluation:?}");
        assert_eq!(evaluation.trained_on, 5, "half the phrasings and the lone label, in each round");
        // Nothing carries over: the held-out phrasing shares no word with the other one.
        let mut disjoint = grouped("gas_leak", [["燃气泄漏", "燃气泄漏"], ["阀门坏了", "阀门坏了"]]);
        disjoint.extend(grouped("noise", [["噪音扰民", "噪音扰民"], ["吵得睡不着", "吵得睡不着"]]));
        assert!(evaluate_unseen_groups(&disjoint, &[]).top1 < 1.0);
        assert_eq!(evaluate_unseen_groups(&[], &[]).held_out, 0);
    }

    #[test]
    fn the_catalogs_names_teach_a_matter_no_case_has_shown_yet() {
        let few: Vec<(String, String)> = examples().into_iter().filter(|(_, l)| l != "gas_leak").collect();
        let prior = catalog_prior([("燃气泄漏", "gas_leak"), ("噪声扰民", "noise")]);
        assert_eq!(prior.len(), 2 * NAME_COUNTS_AS);
        let (model, evaluation) = train_and_evaluate(&few, 4, &prior).unwrap();
        assert_eq!(model.suggest("楼下好像燃气泄漏了", 1)[0].label, "gas_leak");
        assert_eq!((model.examples, evaluation.trained_on + evaluation.held_out), (8, 8), "cases, not names");
        let (without, _) = train_and_evaluate(&few, 4, &[]).unwrap();
        assert!(!without.labels().contains(&"gas_leak".to_string()));
    }

    #[test]
    fn held_out_accuracy_is_measured_on_unseen_descriptions() {
        let (model, evaluation) = train_and_evaluate(&examples(), 4, &[]).unwrap();
        assert_eq!(evaluation.held_out, 3);
        assert_eq!(evaluation.trained_on + evaluation.held_out, 12);
        assert!(evaluation.top3 >= evaluation.top1);
        assert_eq!(model.examples, 12, "the kept model learns from everything");
    }
}
