//! The JUnit XML report of `promtool test rules --junit`: a `testsuite` per test file, a
//! `testcase` per test group (`unnamed#N` without a name), a `failure` per failed expectation and
//! an `error` when the file could not be tested, written as Go's `encoding/xml` writes it.

use std::fmt::Write as _;

/// One test file's results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JunitSuite {
    /// The test file, as given.
    pub name: String,
    /// The test groups run, in order.
    pub cases: Vec<JunitCase>,
    /// Failed expectations.
    pub failures: usize,
    /// Problems that stopped the file (unreadable, invalid, repeated group order).
    pub errors: usize,
    /// Whether the file parsed, so the suite carries the run's timestamp (promtool sets it
    /// only then).
    pub timed: bool,
}

/// One test group's results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JunitCase {
    /// The group's name, or `unnamed#N` for the N-th (from 0) group without one.
    pub name: String,
    /// The failure messages.
    pub failures: Vec<String>,
    /// The error that stopped the file, if it stopped during this case.
    pub error: Option<String>,
}

impl JunitSuite {
    /// A suite for the test file `name`.
    pub fn new(name: &str) -> JunitSuite {
        JunitSuite {
            name: name.to_owned(),
            ..JunitSuite::default()
        }
    }

    /// Starts a case.
    pub fn case(&mut self, name: String) {
        self.cases.push(JunitCase {
            name,
            ..JunitCase::default()
        });
    }

    fn last_case(&mut self) -> &mut JunitCase {
        if self.cases.is_empty() {
            self.case("unknown".to_owned());
        }
        let last = self.cases.len() - 1;
        &mut self.cases[last]
    }

    /// Records a failure in the current case.
    pub fn fail(&mut self, message: &str) {
        self.failures += 1;
        self.last_case().failures.push(message.to_owned());
    }

    /// Records the error that stopped the file.
    pub fn abort(&mut self, message: &str) {
        self.errors += 1;
        self.last_case().error = Some(message.to_owned());
    }
}

/// Go's `xml.EscapeText`.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Whether XML 1.0 allows `c` in text.
fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The report for `suites`, with `timestamp` (`2006-01-02T15:04:05`, local time) on the suites
/// whose file parsed; one line, no XML declaration, as promtool writes it.
pub fn junit_xml(suites: &[JunitSuite], timestamp: &str) -> String {
    let mut out = String::from("<testsuites>");
    for suite in suites {
        out.push_str("<testsuite name=\"");
        escape(&suite.name, &mut out);
        let _ = write!(
            out,
            "\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" timestamp=\"",
            suite.cases.len(),
            suite.failures,
            suite.errors
        );
        if suite.timed {
            escape(timestamp, &mut out);
        }
        out.push_str("\">");
        for case in &suite.cases {
            out.push_str("<testcase name=\"");
            escape(&case.name, &mut out);
            out.push_str("\">");
            for failure in &case.failures {
                out.push_str("<failure>");
                escape(failure, &mut out);
                out.push_str("</failure>");
            }
            if let Some(error) = case.error.as_deref().filter(|e| !e.is_empty()) {
                out.push_str("<error>");
                escape(error, &mut out);
                out.push_str("</error>");
            }
            out.push_str("</testcase>");
        }
        out.push_str("</testsuite>");
    }
    out.push_str("</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_cases_failures_and_errors() {
        let mut ok = JunitSuite::new("a.yml");
        ok.timed = true;
        ok.case("first".to_owned());
        ok.case("unnamed#1".to_owned());
        ok.fail("    expr: \"x\" <1>\n");
        let mut broken = JunitSuite::new("b.yml");
        broken.abort("b.yml:1:1: bad & worse");
        assert_eq!(
            junit_xml(&[ok, broken], "2026-11-23T16:00:00"),
            "<testsuites>\
             <testsuite name=\"a.yml\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" \
             timestamp=\"2026-11-23T16:00:00\">\
             <testcase name=\"first\"></testcase>\
             <testcase name=\"unnamed#1\"><failure>    expr: &#34;x&#34; &lt;1&gt;&#xA;</failure>\
             </testcase></testsuite>\
             <testsuite name=\"b.yml\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" \
             timestamp=\"\"><testcase name=\"unknown\"><error>b.yml:1:1: bad &amp; worse</error>\
             </testcase></testsuite></testsuites>"
        );
        assert_eq!(junit_xml(&[], "t"), "<testsuites></testsuites>");
    }
}
