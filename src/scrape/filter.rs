//! Which scraped series the store keeps: those some loaded rule's selector can match (its
//! expression, and the `query` calls of its label and annotation templates), and those of the
//! `sidecar.store.keep` selectors. Everything else is dropped at the door, so the store holds
//! what rules can read and not the rest of a large exposition. Recomputed when rules reload.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use promql_parser::parser::{Expr, VectorSelector};

use crate::model::labels::Labels;
use crate::rules::Group;
use crate::rules::rule::CompiledRule;
use crate::store::Matcher;

/// The selectors whose series are kept, by metric name where they name one.
#[derive(Debug, Default)]
pub struct SeriesFilter {
    all: bool,
    by_name: HashMap<String, Vec<Vec<Matcher>>>,
    any_name: Vec<Vec<Matcher>>,
}

/// The filter in force, swapped whole by a reload.
pub type FilterHandle = Arc<RwLock<Arc<SeriesFilter>>>;

/// A handle on `filter`.
pub fn handle(filter: SeriesFilter) -> FilterHandle {
    Arc::new(RwLock::new(Arc::new(filter)))
}

fn selectors(expr: &Expr, out: &mut Vec<VectorSelector>) {
    struct Collect<'a>(&'a mut Vec<VectorSelector>);
    impl promql_parser::util::ExprVisitor for Collect<'_> {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
            match expr {
                Expr::VectorSelector(vs) => self.0.push(vs.clone()),
                Expr::MatrixSelector(ms) => self.0.push(ms.vs.clone()),
                _ => {}
            }
            Ok(true)
        }
    }
    let _ = promql_parser::util::walk_expr(&mut Collect(out), expr);
}

/// The string arguments of `query` in a template's text (`query "up == 0"`, or with a raw
/// string), which the template runs against the store.
fn template_queries(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("query") {
        rest = &rest[at + 5..];
        let trimmed = rest.trim_start();
        let (quote, body) = match trimmed.chars().next() {
            Some(q @ ('"' | '`')) => (q, &trimmed[1..]),
            _ => continue,
        };
        if let Some(end) = body.find(quote) {
            out.push(body[..end].replace("\\\"", "\""));
        }
    }
    out
}

impl SeriesFilter {
    /// A filter that keeps every series (no rules loaded and nothing to keep, or a source
    /// without rules).
    pub fn everything() -> SeriesFilter {
        SeriesFilter {
            all: true,
            ..SeriesFilter::default()
        }
    }

    /// The filter of `groups` and the `keep` selectors. A `keep` selector that does not parse
    /// is an error (the configuration check rejects it first).
    pub fn for_rules(groups: &[Group], keep: &[String]) -> Result<SeriesFilter, String> {
        let mut found = Vec::new();
        for group in groups {
            for rule in &group.rules {
                let (expr, templates): (&Expr, Vec<&str>) = match rule {
                    CompiledRule::Recording(r) => (&r.expr, Vec::new()),
                    CompiledRule::Alerting(a) => (
                        &a.expr,
                        a.labels
                            .iter()
                            .chain(&a.annotations)
                            .map(|(_, t)| t.source())
                            .collect(),
                    ),
                };
                selectors(expr, &mut found);
                for text in templates {
                    for q in template_queries(text) {
                        // A query that does not parse fails when it runs; it selects nothing.
                        if let Ok(e) = crate::promql::parse(&q) {
                            selectors(&e, &mut found);
                        }
                    }
                }
            }
        }
        for k in keep {
            let e =
                crate::promql::parse(k).map_err(|e| format!("sidecar.store.keep {k:?}: {e}"))?;
            selectors(&e, &mut found);
        }
        let mut filter = SeriesFilter::default();
        for vs in &found {
            let Ok(sets) = crate::promql::selector_matchers(vs) else {
                continue;
            };
            for set in sets {
                let name = set
                    .iter()
                    .find(|m| m.name == "__name__" && m.kind == crate::store::MatchKind::Equal)
                    .map(|m| m.value.clone());
                match name {
                    Some(name) => filter.by_name.entry(name).or_default().push(set),
                    None => filter.any_name.push(set),
                }
            }
        }
        Ok(filter)
    }

    /// Whether the store keeps the series `labels`.
    pub fn keeps(&self, labels: &Labels) -> bool {
        if self.all {
            return true;
        }
        let matches = |set: &Vec<Matcher>| set.iter().all(|m| m.matches_labels(labels));
        labels
            .metric_name()
            .and_then(|n| self.by_name.get(n))
            .is_some_and(|sets| sets.iter().any(matches))
            || self.any_name.iter().any(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(text: &str) -> Vec<Group> {
        let loaded = crate::rules::RuleFile::parse(text, "t.yml").unwrap();
        crate::rules::compile(&loaded, "t.yml", std::time::Duration::from_secs(1))
    }

    #[test]
    fn keeps_what_rules_and_keep_selectors_can_read() {
        let g = groups(
            r#"
groups:
  - name: g
    rules:
      - alert: Loss
        expr: sum by (engine) (trading_pnl_daily{engine=~"a.*"}) < -1
        annotations:
          summary: 'limit {{ with query "trading_daily_loss_limit" }}{{ . | first | value }}{{ end }}'
      - record: r
        expr: rate(trading_orders_total[1m])
"#,
        );
        let f = SeriesFilter::for_rules(&g, &[r#"{__name__=~"process_.*"}"#.to_owned()]).unwrap();
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        assert!(f.keeps(&l(&[
            ("__name__", "trading_pnl_daily"),
            ("engine", "alpha")
        ])));
        assert!(!f.keeps(&l(&[("__name__", "trading_pnl_daily"), ("engine", "beta")])));
        assert!(f.keeps(&l(&[
            ("__name__", "trading_daily_loss_limit"),
            ("engine", "beta")
        ])));
        assert!(f.keeps(&l(&[("__name__", "trading_orders_total")])));
        assert!(f.keeps(&l(&[("__name__", "process_open_fds")])));
        assert!(!f.keeps(&l(&[("__name__", "trading_fills_total")])));
        assert!(SeriesFilter::everything().keeps(&l(&[("__name__", "x")])));
        assert!(SeriesFilter::for_rules(&g, &["sum((".to_owned()]).is_err());
    }
}
