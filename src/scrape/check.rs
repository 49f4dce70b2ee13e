//! `tradewatch check metrics`: validates an exposition and lints it as promtool does, in one
//! pass, with promtool's exit codes (0 valid, 1 invalid, 3 lint findings only).

use std::fmt;

use super::error::ParseError;
use super::lint::{LintFinding, Linter};
use super::parse::{Format, parse};

/// The outcome of checking one exposition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// Every problem, in line order (`line N: message`).
    pub problems: Vec<ParseError>,
    /// Lint findings (`name message`, as promtool prints them), sorted as promtool sorts
    /// them. Empty when the exposition is invalid: like promtool, lint runs only on a valid
    /// one.
    pub findings: Vec<LintFinding>,
}

impl CheckReport {
    /// Whether the exposition is valid (lint findings aside).
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// promtool's exit code: 0 valid and clean, 1 invalid, 3 valid with lint findings.
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() {
            1
        } else if !self.findings.is_empty() {
            3
        } else {
            0
        }
    }
}

impl fmt::Display for CheckReport {
    /// One line per problem, then one per finding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        for l in &self.findings {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Checks `input` in `format`; with `lint`, also runs promtool's lint checks.
///
/// ```
/// use tradewatch::scrape::{Format, check_metrics};
///
/// let report = check_metrics(b"# HELP up Up.\n# TYPE up gauge\nup 1\n", Format::Text, true);
/// assert_eq!(report.exit_code(), 0);
/// let report = check_metrics(b"# TYPE up gauge\nup 1\n", Format::Text, true);
/// assert_eq!(report.to_string(), "up no help text\n");
/// assert_eq!(report.exit_code(), 3);
/// let report = check_metrics(b"up 1\n", Format::OpenMetrics, true);
/// assert_eq!(report.to_string(), "line 2: data does not end with # EOF\n");
/// assert_eq!(report.exit_code(), 1);
/// ```
pub fn check_metrics(input: &[u8], format: Format, lint: bool) -> CheckReport {
    let mut problems = Vec::new();
    let mut linter = lint.then(|| Linter::new(format));
    for item in parse(input, format) {
        match item {
            Ok(entry) => {
                if let Some(linter) = &mut linter {
                    linter.observe(&entry);
                }
            }
            Err(e) => problems.push(e),
        }
    }
    problems.sort_by_key(|p| p.line);
    let findings = match linter {
        Some(linter) if problems.is_empty() => linter.finish(),
        _ => Vec::new(),
    };
    CheckReport { problems, findings }
}
