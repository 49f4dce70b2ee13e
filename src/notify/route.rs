//! The routing tree as Alertmanager builds it (`dispatch/route.go`): options inherited down the
//! tree, matchers sorted, depth-first matching with `continue`, and the route keys and ids that
//! group keys are made of. Also amtool's `config routes test` output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::matcher::{Matcher, Matchers};

/// Alertmanager's defaults for the root route.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// What applies to the alerts a route takes (its own settings or its parent's).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    /// The receiver's name.
    pub receiver: String,
    /// Labels alerts are grouped by.
    pub group_by: BTreeSet<String>,
    /// Group by every label (`group_by: ['...']`).
    pub group_by_all: bool,
    /// Wait before the first notification of a new group.
    pub group_wait: Duration,
    /// Wait between notifications of a group whose alerts changed.
    pub group_interval: Duration,
    /// Wait before notifying again about an unchanged group.
    pub repeat_interval: Duration,
    /// Names of time intervals in which the route is muted.
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which the route is muted (none: always active).
    pub active_time_intervals: Vec<String>,
}

impl Default for RouteOpts {
    fn default() -> RouteOpts {
        RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

/// One node of the routing tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Options for alerts this route takes.
    pub opts: RouteOpts,
    /// What an alert must match; `match` and `match_re` entries included, sorted.
    pub matchers: Matchers,
    /// Whether matching goes on with the next sibling after this route matched.
    pub continue_matching: bool,
    /// Child routes, in file order.
    pub routes: Vec<Route>,
    key: String,
    id: String,
}

/// How one node is written in the file, for [`Route::build`].
#[derive(Debug, Clone, Default)]
pub struct RouteSpec {
    /// `receiver`, if set.
    pub receiver: Option<String>,
    /// `group_by` without `'...'`, if set and non-empty.
    pub group_by: Option<Vec<String>>,
    /// Whether `group_by` held `'...'`.
    pub group_by_all: bool,
    /// All matchers (`match`, `match_re`, `matchers`).
    pub matchers: Vec<Matcher>,
    /// `continue`.
    pub continue_matching: bool,
    /// `group_wait`, if set.
    pub group_wait: Option<Duration>,
    /// `group_interval`, if set.
    pub group_interval: Option<Duration>,
    /// `repeat_interval`, if set.
    pub repeat_interval: Option<Duration>,
    /// `mute_time_intervals`.
    pub mute_time_intervals: Vec<String>,
    /// `active_time_intervals`.
    pub active_time_intervals: Vec<String>,
    /// Child routes.
    pub routes: Vec<RouteSpec>,
}

impl Route {
    /// Builds the tree as Alertmanager's `NewRoute` does: each node starts from its parent's
    /// options (the root from the defaults) and overrides what it sets.
    pub fn build(spec: &RouteSpec) -> Route {
        Route::build_under(spec, None, None)
    }

    fn build_under(
        spec: &RouteSpec,
        parent: Option<(&RouteOpts, &str)>,
        position: Option<usize>,
    ) -> Route {
        let mut opts = parent.map_or_else(RouteOpts::default, |(opts, _)| opts.clone());
        if let Some(receiver) = &spec.receiver {
            opts.receiver.clone_from(receiver);
        }
        if let Some(group_by) = &spec.group_by {
            opts.group_by = group_by.iter().cloned().collect();
            opts.group_by_all = false;
        } else if spec.group_by_all {
            opts.group_by_all = true;
        }
        if let Some(d) = spec.group_wait {
            opts.group_wait = d;
        }
        if let Some(d) = spec.group_interval {
            opts.group_interval = d;
        }
        if let Some(d) = spec.repeat_interval {
            opts.repeat_interval = d;
        }
        opts.mute_time_intervals
            .clone_from(&spec.mute_time_intervals);
        opts.active_time_intervals
            .clone_from(&spec.active_time_intervals);
        let matchers = Matchers::sorted(spec.matchers.clone());
        let key = match parent {
            Some((_, parent_key)) => format!("{parent_key}/{matchers}"),
            None => matchers.to_string(),
        };
        let id = match position {
            Some(i) => format!("{key}/{i}"),
            None => key.clone(),
        };
        let routes = spec
            .routes
            .iter()
            .enumerate()
            .map(|(i, child)| Route::build_under(child, Some((&opts, &key)), Some(i)))
            .collect();
        Route {
            opts,
            matchers,
            continue_matching: spec.continue_matching,
            routes,
            key,
            id,
        }
    }

    /// The routes an alert with `labels` goes to: depth first, left to right; a matching child
    /// stops the search among its siblings unless it has `continue`; a node none of whose
    /// children match takes the alert itself. Empty when this node's matchers do not match.
    pub fn matching(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let matches = child.matching(labels);
            let matched = !matches.is_empty();
            all.extend(matches);
            if matched && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// Alertmanager's `Route.Key()`: the matchers of each node from the root, joined by `/`
    /// (`{}/{severity="critical"}`). Not unique in general.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Alertmanager's `Route.ID()`: the key and, below the root, the node's position among its
    /// siblings (`{}/{severity="critical"}/0`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every node, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for child in &self.routes {
            out.extend(child.walk());
        }
        out
    }

    /// The node with the given [`Route::id`].
    pub fn find(&self, id: &str) -> Option<&Route> {
        self.walk().into_iter().find(|r| r.id == id)
    }

    /// amtool's slug of a node: its matchers (`default-route` when none) and, for a final node,
    /// its receiver.
    fn slug(&self, show_receiver: bool) -> String {
        let mut slug = if self.matchers.is_empty() {
            "default-route".to_owned()
        } else {
            self.matchers.to_string()
        };
        if show_receiver {
            slug.push_str("  receiver: ");
            slug.push_str(&self.opts.receiver);
        }
        slug
    }

    /// What `amtool config routes test --tree` prints before the receivers: the matching
    /// branches as an ASCII tree, the final nodes with their receivers.
    pub fn matching_tree(&self, labels: &BTreeMap<String, String>) -> String {
        let mut out = String::from("Matching routes:\n.\n");
        self.tree_branch(labels, "", true, &mut out);
        out.push_str("\n\n");
        out
    }

    fn tree_branch(
        &self,
        labels: &BTreeMap<String, String>,
        prefix: &str,
        last: bool,
        out: &mut String,
    ) {
        let mut children = Vec::new();
        for child in &self.routes {
            if child.matchers.matches(labels) {
                children.push(child);
                if !child.continue_matching {
                    break;
                }
            }
        }
        let _ = writeln!(
            out,
            "{prefix}{}{}",
            if last { "└── " } else { "├── " },
            self.slug(children.is_empty())
        );
        // treeprint's edge: a bar, two no-break spaces and a space.
        let inner = format!(
            "{prefix}{}",
            if last {
                "    "
            } else {
                "\u{2502}\u{a0}\u{a0} "
            }
        );
        for (i, child) in children.iter().enumerate() {
            child.tree_branch(labels, &inner, i + 1 == children.len(), out);
        }
    }
}

/// Runs `amtool config routes test` on a tree: parses `labels` (each `name=value`, quoted or
/// not), and gives what amtool prints and its exit code.
pub fn routes_test(
    root: &Route,
    labels: &[String],
    tree: bool,
    verify_receivers: Option<&str>,
) -> Result<(String, u8), String> {
    let mut set = BTreeMap::new();
    for label in labels {
        let matcher = Matcher::parse(label).map_err(|e| format!("Failed to parse labels: {e}"))?;
        if matcher.op != super::matcher::MatchOp::Equal {
            return Err(
                "Failed to parse labels: labels must be specified as key=value pairs".to_owned(),
            );
        }
        set.insert(matcher.name, matcher.value);
    }
    let mut out = String::new();
    if tree {
        out.push_str(&root.matching_tree(&set));
    }
    let receivers: Vec<&str> = root
        .matching(&set)
        .iter()
        .map(|r| r.opts.receiver.as_str())
        .collect();
    let slug = receivers.join(",");
    out.push_str(&slug);
    out.push('\n');
    match verify_receivers {
        Some(expected) if !expected.is_empty() && expected != slug => {
            out.push_str("WARNING: Expected receivers did not match resolved receivers.\n");
            Ok((out, 1))
        }
        _ => Ok((out, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(matchers: &[&str], receiver: Option<&str>, routes: Vec<RouteSpec>) -> RouteSpec {
        RouteSpec {
            receiver: receiver.map(str::to_owned),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            routes,
            ..RouteSpec::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_ids_and_inheritance() {
        let mut critical = spec(&["severity=critical"], Some("pager"), vec![]);
        critical.group_wait = Some(Duration::from_secs(5));
        critical.routes = vec![spec(&["team=a"], None, vec![])];
        let mut root = spec(&[], Some("default"), vec![critical]);
        root.group_by = Some(vec!["alertname".into()]);
        let root = Route::build(&root);
        assert_eq!(root.key(), "{}");
        assert_eq!(root.id(), "{}");
        let child = &root.routes[0];
        assert_eq!(child.key(), "{}/{severity=\"critical\"}");
        assert_eq!(child.id(), "{}/{severity=\"critical\"}/0");
        let grandchild = &child.routes[0];
        assert_eq!(grandchild.opts.receiver, "pager");
        assert_eq!(grandchild.opts.group_wait, Duration::from_secs(5));
        assert!(grandchild.opts.group_by.contains("alertname"));
        assert_eq!(grandchild.opts.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        assert_eq!(
            root.find(grandchild.id()).map(Route::id),
            Some("{}/{severity=\"critical\"}/{team=\"a\"}/0")
        );
    }

    #[test]
    fn depth_first_with_continue() {
        let mut first = spec(&["a=1"], Some("first"), vec![]);
        first.continue_matching = true;
        let root = Route::build(&spec(
            &[],
            Some("default"),
            vec![
                first,
                spec(&["a=~1|2"], Some("second"), vec![]),
                spec(&["a=1"], Some("third"), vec![]),
            ],
        ));
        let receivers = |l| {
            root.matching(&l)
                .iter()
                .map(|r| r.opts.receiver.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(receivers(labels(&[("a", "1")])), ["first", "second"]);
        assert_eq!(receivers(labels(&[("a", "2")])), ["second"]);
        assert_eq!(receivers(labels(&[("a", "3")])), ["default"]);
    }
}
