//! Chinese text: words for classifiers and, later, for search. No IO; the dictionary and the stop-word list
//! are compiled in.

pub mod classify;
pub mod words;

pub use classify::{Classifier, Evaluation, Suggestion};
pub use words::words;
