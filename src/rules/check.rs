//! `tradewatch rules check`: validates rule files with `promtool check rules`'s output and exit
//! codes (0 valid, 1 errors, 3 lint findings only when lint is fatal).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::file::RuleFile;

/// Which lint checks run and whether their findings fail the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lint {
    /// Report rules with the same name and labels (promtool's `duplicate-rules`).
    pub duplicate_rules: bool,
    /// Exit with code 3 when lint finds something and nothing else is wrong (`--lint-fatal`).
    pub fatal: bool,
}

/// An unknown `--lint` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lint option {0:?}: want all, duplicate-rules or none")]
pub struct UnknownLint(pub String);

impl Lint {
    /// Parses promtool's `--lint` value: a comma-separated list of `all`, `duplicate-rules`,
    /// `none`.
    pub fn parse(value: &str, fatal: bool) -> Result<Lint, UnknownLint> {
        let mut lint = Lint {
            duplicate_rules: false,
            fatal,
        };
        for option in value.split(',') {
            match option {
                "all" | "duplicate-rules" => lint.duplicate_rules = true,
                "none" => {}
                other => return Err(UnknownLint(other.to_owned())),
            }
        }
        Ok(lint)
    }
}

/// Checks each file and gives promtool's report and exit code: `Checking FILE` then
/// `  SUCCESS: N rules found` or `  FAILED:` and the problems, a blank line after each file.
///
/// ```
/// use tradewatch::rules::{Lint, check_files};
///
/// let (_, code) = check_files(&["tests/data/rules/valid.yml".into()], Lint::default());
/// assert_eq!(code, 0);
/// ```
pub fn check_files(paths: &[PathBuf], lint: Lint) -> (String, u8) {
    let mut out = String::new();
    let mut failed = false;
    let mut has_errors = false;
    for path in paths {
        let _ = writeln!(out, "Checking {}", path.display());
        match RuleFile::load(path) {
            Err(error) => {
                failed = true;
                has_errors = true;
                let _ = writeln!(out, "  FAILED:\n{error}");
            }
            Ok(loaded) => {
                let duplicates = if lint.duplicate_rules {
                    duplicate_rules(&loaded.file)
                } else {
                    Vec::new()
                };
                if duplicates.is_empty() {
                    let _ = writeln!(out, "  SUCCESS: {} rules found", loaded.file.rule_count());
                } else {
                    failed = true;
                    let _ = writeln!(out, "  FAILED:\n{}", lint_message(&duplicates));
                }
            }
        }
        out.push('\n');
    }
    let code = if failed && has_errors {
        1
    } else if failed && lint.fatal {
        3
    } else {
        0
    };
    (out, code)
}

/// A rule's name and labels: what two duplicate rules share.
type RuleKey = (String, BTreeMap<String, String>);

/// The rules that appear more than once in the file (by name and labels), each once, sorted.
pub fn duplicate_rules(file: &RuleFile) -> Vec<RuleKey> {
    let mut counts: BTreeMap<RuleKey, usize> = BTreeMap::new();
    for rule in file.groups.iter().flat_map(|g| &g.rules) {
        *counts
            .entry((rule.name().to_owned(), rule.labels.clone()))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(key, _)| key)
        .collect()
}

/// promtool's lint message for duplicate rules.
fn lint_message(duplicates: &[RuleKey]) -> String {
    let mut message = format!("lint error {} duplicate rule(s) found.\n", duplicates.len());
    for (metric, labels) in duplicates {
        let _ = writeln!(message, "Metric: {metric}\nLabel(s):");
        for (name, value) in labels {
            let _ = writeln!(message, "\t{name}: {value}");
        }
    }
    message.push_str("Might cause inconsistency while recording expressions");
    message
}
