//! Located problems while the notifier configuration is checked: every problem is collected
//! with its position (through the document's spans), and reported in file order.

use crate::config::yaml::{Diagnostic, Location, PathSeg, Spans};

/// Collects problems at paths of a document.
#[derive(Debug)]
pub(crate) struct Check<'a> {
    origin: &'a str,
    spans: Option<&'a Spans>,
    /// Where the Alertmanager configuration starts in the document (`notifier.config`).
    base: Vec<PathSeg>,
    path: Vec<PathSeg>,
    problems: Vec<Diagnostic>,
}

impl<'a> Check<'a> {
    /// A checker reporting against `origin`, positions from `spans` under `base`.
    pub(crate) fn new(origin: &'a str, spans: Option<&'a Spans>, base: Vec<PathSeg>) -> Check<'a> {
        Check {
            origin,
            spans,
            path: base.clone(),
            base,
            problems: Vec::new(),
        }
    }

    /// Runs `check` one step deeper.
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
        let location = self.spans.and_then(|s| s.locate(&self.path));
        self.push(location, message.into());
    }

    /// A problem with the key at the current path (the item, in a sequence).
    pub(crate) fn key_error(&mut self, message: impl Into<String>) {
        let location = self.spans.and_then(|s| s.locate_key(&self.path));
        self.push(location, message.into());
    }

    /// A problem with the value of `field` of the current mapping.
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

    /// Records a problem, its message prefixed with the path (`route.routes[0].receiver: …`).
    fn push(&mut self, location: Option<Location>, message: String) {
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

    /// A problem about the whole configuration, at its start.
    pub(crate) fn top_error(&mut self, message: impl Into<String>) {
        let location = self.spans.and_then(|s| s.locate(&self.base));
        let saved = std::mem::replace(&mut self.path, self.base.clone());
        self.push(location, message.into());
        self.path = saved;
    }

    /// The problems, in file order.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.problems.sort_by_key(|p| p.location);
        self.problems
    }
}
