//! Semantic checks after a successful typed parse: every problem is collected, each located at
//! the offending key or value through the document's [`Spans`].

use std::path::Path;

use super::yaml::{Diagnostic, PathSeg, Spans};
use crate::model::{PromDuration, names};

/// Collects located problems while the checks walk the config.
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    origin: &'a str,
    spans: &'a Spans,
    path: Vec<PathSeg>,
    problems: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// A checker reporting against `origin` with positions from `spans`.
    pub(crate) fn new(origin: &'a str, spans: &'a Spans) -> Checker<'a> {
        Checker {
            origin,
            spans,
            path: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Runs `check` one step deeper, at `seg`.
    pub(crate) fn within<R>(
        &mut self,
        seg: impl Into<PathSeg>,
        check: impl FnOnce(&mut Self) -> R,
    ) -> R {
        self.path.push(seg.into());
        let result = check(self);
        self.path.pop();
        result
    }

    /// A problem with the value at the current path.
    pub(crate) fn value_error(&mut self, message: impl Into<String>) {
        let location = self.spans.locate(&self.path);
        self.push(location, message.into());
    }

    /// A problem with the key of the current path (the item, in a sequence).
    pub(crate) fn key_error(&mut self, message: impl Into<String>) {
        let location = self.spans.locate_key(&self.path);
        self.push(location, message.into());
    }

    /// A problem with the value of the field `field` of the current mapping.
    pub(crate) fn field_error(&mut self, field: impl Into<PathSeg>, message: impl Into<String>) {
        let message = message.into();
        self.within(field, |c| c.value_error(message));
    }

    /// A problem with the key `field` of the current mapping.
    pub(crate) fn field_key_error(
        &mut self,
        field: impl Into<PathSeg>,
        message: impl Into<String>,
    ) {
        let message = message.into();
        self.within(field, |c| c.key_error(message));
    }

    /// Records a problem, its message prefixed with the current path as `yaml_serde` does
    /// (`sidecar.scrape.targets[0].url: …`).
    fn push(&mut self, location: Option<super::yaml::Location>, message: String) {
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                PathSeg::Key(key) if path.is_empty() => path.push_str(key),
                PathSeg::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                PathSeg::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        let message = if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        };
        self.problems.push(Diagnostic {
            origin: self.origin.to_owned(),
            location,
            message,
        });
    }

    /// The problems found, in the order they appear in the file.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.problems.sort_by_key(|p| p.location);
        self.problems
    }

    /// `field` must name a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`), not reserved
    /// (`__` prefix). Reported at the key of `field` in the current mapping.
    pub(crate) fn label_name_key(&mut self, name: &str) {
        if let Some(problem) = label_name_problem(name) {
            self.field_key_error(name, problem);
        }
    }

    /// `field` holds an `http` or `https` URL.
    pub(crate) fn http_url(&mut self, field: &str, value: &str) {
        if let Some(problem) = http_url_problem(value) {
            self.field_error(field, problem);
        }
    }

    /// `field` holds a non-empty string.
    pub(crate) fn non_empty(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.field_error(field, "must not be empty");
        }
    }

    /// `field` holds a non-empty path.
    pub(crate) fn non_empty_path(&mut self, field: &str, value: &Path) {
        if value.as_os_str().is_empty() {
            self.field_error(field, "must not be empty");
        }
    }

    /// `field` holds a duration greater than zero.
    pub(crate) fn positive(&mut self, field: &str, value: PromDuration) {
        if value.is_zero() {
            self.field_error(field, "must be greater than 0s");
        }
    }

    /// At most one of two alternative fields is set.
    pub(crate) fn exclusive(
        &mut self,
        first: &str,
        first_set: bool,
        second: &str,
        second_set: bool,
    ) {
        if first_set && second_set {
            self.field_key_error(
                second,
                format!("{first} and {second} are mutually exclusive"),
            );
        }
    }
}

/// Whether `name` matches Prometheus's metric name syntax `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_metric_name(name: &str) -> bool {
    names::is_valid_metric_name(name)
}

/// Why `name` cannot be a user-set label name, if it cannot.
pub(crate) fn label_name_problem(name: &str) -> Option<String> {
    if !names::is_valid_label_name(name) {
        Some(format!("invalid label name {name:?}"))
    } else if name.starts_with("__") {
        Some(format!(
            "label name {name:?} is reserved (names starting with __ are internal)"
        ))
    } else {
        None
    }
}

/// Why `value` is not a usable `http` or `https` URL, if it is not.
pub(crate) fn http_url_problem(value: &str) -> Option<String> {
    match url::Url::parse(value) {
        Err(error) => Some(format!("invalid url {value:?}: {error}")),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => Some(format!(
            "invalid url {value:?}: scheme must be http or https, not {}",
            url.scheme()
        )),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            Some(format!("invalid url {value:?}: no host"))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_metric_name("trading_orders_total"));
        assert!(is_metric_name("job:rate5m"));
        assert!(!is_metric_name("1abc"));
        assert!(!is_metric_name(""));
        assert!(!is_metric_name("a-b"));
        assert_eq!(label_name_problem("engine"), None);
        assert_eq!(
            label_name_problem("a:b").unwrap(),
            "invalid label name \"a:b\""
        );
        assert!(label_name_problem("__name__").unwrap().contains("reserved"));
    }

    #[test]
    fn urls() {
        assert_eq!(http_url_problem("http://127.0.0.1:9090/"), None);
        assert!(http_url_problem("ftp://x").unwrap().contains("scheme"));
        assert!(http_url_problem("not a url").is_some());
    }
}
