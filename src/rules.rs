//! Prometheus rule files: loading and validation as `promtool check rules` does them, and the
//! evaluation of their groups (recording rules into the store, alerting rules through
//! [`crate::alerts`]).
//!
//! ```
//! use tradewatch::rules::file::RuleFile;
//!
//! let text = "groups:\n  - name: g\n    rules:\n      - record: job:x:sum\n        expr: sum(x)\n";
//! let loaded = RuleFile::parse(text, "x.rules.yml").unwrap();
//! assert_eq!(loaded.file.rule_count(), 1);
//! ```

pub mod alerting;
pub mod check;
pub mod eval;
pub mod file;
pub mod notation;
pub mod recording;
pub mod rule;
pub mod schedule;
pub mod unittest;

pub use alerting::{ActiveAlert, AlertingError, RuleAlerts, TemplateEnv, alert_series};
pub use check::{Lint, check_files};
pub use eval::{GroupEvaluation, GroupState, RuleEvalError};
pub use file::{LoadedRules, Rule, RuleFile, RuleFileError, RuleGroup};
pub use recording::RecordingError;
pub use rule::{AlertingRule, CompiledRule, Group, RecordingRule, compile};
pub use schedule::{AlertSink, Rules, RulesHandle, RulesTask, Settings};
