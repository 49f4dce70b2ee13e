//! Reading expositions: one strict parser for OpenMetrics 1.0 text and Prometheus text 0.0.4,
//! promtool's lint checks, and the `check metrics` report built on both.

pub mod check;
pub mod error;
mod families;
pub mod filter;
mod identity;
mod lexer;
pub mod lint;
pub mod local;
pub mod parse;
mod sample_rules;
pub mod scraper;
pub mod target;

pub use check::{CheckReport, check_metrics};
pub use error::{ErrorKind, ParseError};
pub use lint::{LintFinding, lint};
pub use parse::{Entry, Exemplar, FamilyType, Format, Labels, Parser, Sample, parse, validate};
