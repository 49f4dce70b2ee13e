//! The rule layer at work: every group evaluated at its interval, and at once when data it reads
//! changes (coalesced); alert states written to `state.db` at each transition and restored at
//! start; transitions in the alert log; alerts handed on as Prometheus sends them; the status
//! `/api/v1/rules` and `/api/v1/alerts` show.
//!
//! [`Rules::evaluate`] takes the time as a parameter, so tests drive it without a clock;
//! [`Rules::start`] runs it on tokio.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use promql_parser::parser::{Expr, VectorSelector};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::alerting::{RuleAlerts, TemplateEnv};
use super::eval::{Evaluate, GroupEvaluation, GroupState, Local};
use super::rule::{CompiledRule, Group};
use crate::alerts::log::{self as alert_log, AlertLog, TransitionLine};
use crate::alerts::persist::{AlertDb, Change, SavedAlert, StateDbError, rule_key};
use crate::alerts::{AlertState, Fingerprint};
use crate::model::labels::{FxBuildHasher, Labels};
use crate::promql::{Engine, InstantSample, Value};
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::template::gotime::Time;
use crate::template::prometheus::{QueryFn, Sample};

/// How long after a firing alert was last sent it is sent again (Prometheus's
/// `--rules.alert.resend-delay`).
pub const RESEND_DELAY: Duration = Duration::from_secs(60);

/// The least time between two evaluations of a group that data changes trigger.
pub const TRIGGER_COALESCE: Duration = Duration::from_millis(10);

/// How often a group's evaluation time is written to `state.db` when nothing else is.
const EVALUATION_WRITE_INTERVAL_MS: i64 = 10_000;

/// Where alerts go from the rule layer: the in-process notifier, Alertmanagers.
pub trait AlertSink: Send + Sync {
    /// Takes alerts to notify about: firing ones (re-sent every [`RESEND_DELAY`]) and resolved
    /// ones (once).
    fn send(&self, alerts: Vec<crate::notify::Alert>);
}

/// Where the samples rules write go besides the store: a remote-write queue.
pub trait SampleSink: Send + Sync {
    /// Takes the samples of one evaluation, in the order they were written.
    fn send(&self, samples: Vec<InstantSample>);
}

/// What the rule layer needs besides its groups.
#[derive(Clone, Default)]
pub struct Settings {
    /// Labels added to alerts sent on when they lack them.
    pub external_labels: BTreeMap<String, String>,
    /// The URL people reach this process at.
    pub external_url: String,
    /// `sidecar.generator_url`: `{expr}` in it becomes the URL-encoded expression; empty means
    /// `<external_url>/api/v1/query?query=<expr>`.
    pub generator_url: String,
    /// How long a pending alert's timer survives a restart.
    pub outage_tolerance: Duration,
}

/// The health of a rule, as `/api/v1/rules` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Its last evaluation succeeded.
    Ok,
    /// Its last evaluation failed.
    Err,
}

impl Health {
    /// `unknown`, `ok` or `err`, as Prometheus writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule's last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// Its health.
    pub health: Health,
    /// The error of its last evaluation.
    pub last_error: Option<String>,
    /// When it last evaluated, Unix milliseconds.
    pub last_evaluation: Option<i64>,
    /// How long that took.
    pub duration: Duration,
}

/// A group's state between evaluations.
#[derive(Debug, Clone)]
pub struct GroupRun {
    /// The rules' alerts and written series.
    pub state: GroupState,
    /// When the group last evaluated, Unix milliseconds.
    pub last_evaluation: Option<i64>,
    /// How long that took.
    pub last_duration: Duration,
    /// Each rule's last evaluation.
    pub rules: Vec<RuleStatus>,
    /// What `state.db` holds of each alert: its state, labels and annotations.
    persisted: HashMap<(usize, Fingerprint), SavedAlert, FxBuildHasher>,
    /// When each alert was last sent on.
    last_sent: HashMap<(usize, Fingerprint), i64, FxBuildHasher>,
    last_written: i64,
}

/// A group at work.
pub struct GroupRunner {
    /// The group.
    pub group: Group,
    /// `file;name`, its key in `state.db` and its label in self-metrics.
    pub key: String,
    /// The metric names its selectors read; `None` when some selector reads any name.
    reads: Option<HashSet<String>>,
    run: Mutex<GroupRun>,
    trigger: Notify,
    /// Each alerting rule's key in `state.db`, by rule position.
    rule_keys: Vec<Option<String>>,
    counts: Mutex<(usize, usize)>,
}

impl GroupRunner {
    /// A copy of the group's state for display.
    pub fn snapshot(&self) -> GroupRun {
        self.run.lock().expect("group lock").clone()
    }
}

/// The embedded engine over a shared store, for the template `query` function.
struct EngineSource {
    engine: Engine,
    store: Arc<Store>,
}

impl Evaluate for EngineSource {
    fn instant(&self, expr: &Expr, source: &str, at_ms: i64) -> Result<Value, String> {
        Local {
            engine: &self.engine,
            store: &self.store,
        }
        .instant(expr, source, at_ms)
    }
}

/// The template `query` function over wherever rules are evaluated.
struct SourceQuery(Arc<dyn Evaluate>);

impl QueryFn for SourceQuery {
    fn query(&self, expr: &str, at: &Time) -> Result<Vec<Sample>, String> {
        let parsed = crate::promql::parse(expr).map_err(|e| e.to_string())?;
        let at_ms = i64::try_from(at.unix_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let result = self.0.instant(&parsed, expr, at_ms)?;
        let to_map = |l: &Labels| -> BTreeMap<String, String> {
            l.iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect()
        };
        Ok(match result {
            Value::Vector(v) => v
                .iter()
                .map(|s| Sample {
                    labels: to_map(&s.labels),
                    value: s.f,
                })
                .collect(),
            Value::Scalar { f, .. } => vec![Sample {
                labels: BTreeMap::new(),
                value: f,
            }],
            Value::String(_) | Value::Matrix(_) => {
                return Err("query did not return a vector or scalar".to_owned());
            }
        })
    }
}

/// The rule groups of the loaded rule files, at work.
pub struct Rules {
    groups: Vec<Arc<GroupRunner>>,
    engine: Engine,
    store: Arc<Store>,
    /// Where expressions go instead of the embedded engine (remote mode).
    remote: Option<Arc<dyn Evaluate>>,
    /// Where written samples go besides the store (remote write).
    samples: Option<Arc<dyn SampleSink>>,
    env: TemplateEnv,
    settings: Settings,
    db: Option<Mutex<AlertDb>>,
    log: Option<Arc<AlertLog>>,
    sink: Option<Arc<dyn AlertSink>>,
    telemetry: Option<Arc<Telemetry>>,
    totals: Mutex<(usize, usize)>,
}

impl Rules {
    /// The engine rules and the query API evaluate with (its timeout is `sidecar.query_timeout`).
    pub fn engine(&self) -> Engine {
        self.engine
    }
}

/// The rule layer in force: a reload swaps it whole, and every user asks for the current one.
#[derive(Clone)]
pub struct RulesHandle(Arc<std::sync::RwLock<Arc<Rules>>>);

impl RulesHandle {
    /// A handle on `rules`.
    pub fn new(rules: Arc<Rules>) -> RulesHandle {
        RulesHandle(Arc::new(std::sync::RwLock::new(rules)))
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<Rules> {
        self.0.read().expect("rules lock").clone()
    }

    /// Puts `rules` in force; gives the ones it replaces.
    pub fn replace(&self, rules: Arc<Rules>) -> Arc<Rules> {
        std::mem::replace(&mut *self.0.write().expect("rules lock"), rules)
    }
}

/// What one evaluation did, beyond the group's own result.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The group's evaluation.
    pub evaluation: GroupEvaluation,
    /// The alerts handed to the sink.
    pub sent: Vec<crate::notify::Alert>,
    /// Writing `state.db` or the alert log failed.
    pub persist_error: Option<String>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The metric names `expr`'s selectors read, or `None` when one selector can read any name.
fn metric_names(expr: &Expr) -> Option<HashSet<String>> {
    struct Names(Option<HashSet<String>>);
    impl promql_parser::util::ExprVisitor for Names {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
            let vs: Option<&VectorSelector> = match expr {
                Expr::VectorSelector(vs) => Some(vs),
                Expr::MatrixSelector(ms) => Some(&ms.vs),
                _ => None,
            };
            if let (Some(vs), Some(names)) = (vs, self.0.as_mut()) {
                let by_matcher = vs
                    .matchers
                    .matchers
                    .iter()
                    .find(|m| {
                        m.name == "__name__" && matches!(m.op, promql_parser::label::MatchOp::Equal)
                    })
                    .map(|m| m.value.clone());
                match vs.name.clone().or(by_matcher) {
                    Some(name) if vs.matchers.or_matchers.is_empty() => {
                        names.insert(name);
                    }
                    _ => self.0 = None,
                }
            }
            Ok(true)
        }
    }
    let mut names = Names(Some(HashSet::new()));
    let _ = promql_parser::util::walk_expr(&mut names, expr);
    names.0
}

fn group_reads(group: &Group) -> Option<HashSet<String>> {
    let mut all = HashSet::new();
    for rule in &group.rules {
        let expr = match rule {
            CompiledRule::Recording(r) => &r.expr,
            CompiledRule::Alerting(a) => &a.expr,
        };
        all.extend(metric_names(expr)?);
    }
    Some(all)
}

/// The alert log lines of an evaluation's transitions; an alert that is gone is described by
/// what `state.db` last held of it.
fn transition_lines(run: &GroupRun, evaluation: &GroupEvaluation, now: i64) -> Vec<TransitionLine> {
    let ts = alert_log::timestamp_ms(now);
    evaluation
        .transitions
        .iter()
        .filter_map(|(i, fp, transition)| {
            let (labels, annotations, value, active_at) =
                match run.state.alerts.get(*i).and_then(|a| a.get(fp)) {
                    Some(a) => (
                        btree(&a.labels),
                        a.annotations.clone(),
                        a.alert.value,
                        a.alert.active_at,
                    ),
                    None => {
                        let saved = run.persisted.get(&(*i, *fp))?;
                        (
                            saved.labels.clone(),
                            saved.annotations.clone(),
                            saved.alert.value,
                            saved.alert.active_at,
                        )
                    }
                };
            Some(TransitionLine {
                ts: ts.clone(),
                kind: "transition",
                fingerprint: fp.to_string(),
                alertname: labels.get("alertname").cloned().unwrap_or_default(),
                labels,
                annotations,
                from: transition.from.as_str(),
                to: transition.to.as_str(),
                value: alert_log::value(value),
                active_at: alert_log::timestamp_ms(active_at),
            })
        })
        .collect()
}

fn btree(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

impl Rules {
    /// The rule layer over `groups`, reading and writing `store`. Without `db` nothing is
    /// persisted; without `log` nothing is logged; without `sink` alerts go nowhere.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        groups: Vec<Group>,
        engine: Engine,
        store: Arc<Store>,
        settings: Settings,
        db: Option<AlertDb>,
        log: Option<Arc<AlertLog>>,
        sink: Option<Arc<dyn AlertSink>>,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Rules {
        let mut env = TemplateEnv {
            external_labels: settings.external_labels.clone(),
            external_url: settings.external_url.clone(),
            ..TemplateEnv::default()
        };
        env.expansion.external_url = settings.external_url.clone();
        env.expansion.query = Some(Arc::new(SourceQuery(Arc::new(EngineSource {
            engine,
            store: store.clone(),
        }))));
        let groups = groups
            .into_iter()
            .map(|group| {
                let mut nth: HashMap<&str, usize> = HashMap::new();
                let rule_keys = group
                    .rules
                    .iter()
                    .map(|rule| match rule {
                        CompiledRule::Alerting(a) => {
                            let n = nth.entry(a.alert.as_str()).or_default();
                            *n += 1;
                            Some(rule_key(&group.file, &group.name, &a.alert, *n - 1))
                        }
                        CompiledRule::Recording(_) => None,
                    })
                    .collect();
                let rules = vec![
                    RuleStatus {
                        health: Health::Unknown,
                        last_error: None,
                        last_evaluation: None,
                        duration: Duration::ZERO,
                    };
                    group.rules.len()
                ];
                Arc::new(GroupRunner {
                    key: format!("{};{}", group.file, group.name),
                    reads: group_reads(&group),
                    run: Mutex::new(GroupRun {
                        state: GroupState::default(),
                        last_evaluation: None,
                        last_duration: Duration::ZERO,
                        rules,
                        persisted: HashMap::default(),
                        last_sent: HashMap::default(),
                        last_written: i64::MIN,
                    }),
                    trigger: Notify::new(),
                    rule_keys,
                    counts: Mutex::new((0, 0)),
                    group,
                })
            })
            .collect();
        Rules {
            groups,
            engine,
            store,
            remote: None,
            samples: None,
            env,
            settings,
            db: db.map(Mutex::new),
            log,
            sink,
            telemetry,
            totals: Mutex::new((0, 0)),
        }
    }

    /// Evaluates expressions (rules' and the template `query` function's) on `remote` instead
    /// of the embedded engine; what rules write still goes to the store, and to `samples` when
    /// given.
    pub fn with_remote(
        mut self,
        remote: Arc<dyn Evaluate>,
        samples: Option<Arc<dyn SampleSink>>,
    ) -> Rules {
        self.env.expansion.query = Some(Arc::new(SourceQuery(remote.clone())));
        self.remote = Some(remote);
        self.samples = samples;
        self
    }

    /// The groups.
    pub fn groups(&self) -> &[Arc<GroupRunner>] {
        &self.groups
    }

    /// The store the rules read.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Puts back the alerts `state.db` holds, as of `now` (Unix milliseconds): a firing or
    /// resolved alert as it was, a pending one only when its group last evaluated within the
    /// outage tolerance. Gives how many alerts came back.
    pub fn restore(&self, now: i64) -> Result<usize, StateDbError> {
        let Some(db) = &self.db else { return Ok(0) };
        let db = db.lock().expect("state db lock");
        let mut by_rule: HashMap<String, Vec<SavedAlert>> = HashMap::new();
        for saved in db.load()? {
            by_rule
                .entry(saved.rule_key.clone())
                .or_default()
                .push(saved);
        }
        let mut restored = 0;
        for runner in &self.groups {
            let last = db.last_evaluation(&runner.key)?.unwrap_or(i64::MIN);
            let mut run = runner.run.lock().expect("group lock");
            run.state
                .alerts
                .resize_with(runner.group.rules.len(), RuleAlerts::new);
            for (i, key) in runner.rule_keys.iter().enumerate() {
                let Some(saved) = key.as_ref().and_then(|k| by_rule.remove(k)) else {
                    continue;
                };
                for saved in saved {
                    let labels = Labels::from_pairs(
                        saved.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    let fingerprint = Fingerprint::of(&labels);
                    let Some(alert) = crate::alerts::restore(
                        saved.alert.clone(),
                        last,
                        now,
                        self.settings.outage_tolerance,
                    ) else {
                        continue;
                    };
                    run.persisted.insert((i, fingerprint), saved.clone());
                    if alert.state == AlertState::Firing {
                        // Sent before the restart: the notifier's log keeps it from repeating.
                        run.last_sent.insert((i, fingerprint), now);
                    }
                    run.state.alerts[i].insert(
                        fingerprint,
                        super::alerting::ActiveAlert::new(labels, saved.annotations.clone(), alert),
                    );
                    restored += 1;
                }
            }
            drop(run);
            self.recount(runner);
        }
        Ok(restored)
    }

    /// Deletes from `state.db` what belongs to no loaded rule or group (left by a reload or a
    /// restart that removed them), so a rule added back later starts afresh instead of reviving
    /// alerts from long ago. Gives how many rows went.
    pub fn prune_saved(&self) -> Result<usize, StateDbError> {
        let Some(db) = &self.db else { return Ok(0) };
        let rule_keys: HashSet<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.rule_keys.iter().flatten().map(String::as_str))
            .collect();
        let group_keys: HashSet<&str> = self.groups.iter().map(|g| g.key.as_str()).collect();
        db.lock()
            .expect("state db lock")
            .prune(&rule_keys, &group_keys)
    }

    /// Takes over the state of `old` after a reload: each alerting rule that keeps its key
    /// (file, group, name, position among same-named rules) keeps its alerts, their persisted
    /// state and when they were last sent; each recording rule that keeps its group and name
    /// keeps the series it wrote (so they go stale if no longer written); groups keep their
    /// last evaluation. Gives how many alerts were carried over.
    pub fn adopt(&self, old: &Rules) -> usize {
        let mut carried = 0;
        for runner in &self.groups {
            let Some(previous) = old.groups.iter().find(|g| g.key == runner.key) else {
                continue;
            };
            let prev = previous.run.lock().expect("group lock");
            let mut run = runner.run.lock().expect("group lock");
            run.state
                .alerts
                .resize_with(runner.group.rules.len(), RuleAlerts::new);
            run.state
                .written
                .resize_with(runner.group.rules.len(), HashSet::default);
            run.last_evaluation = prev.last_evaluation;
            run.last_written = prev.last_written;
            for (i, rule) in runner.group.rules.iter().enumerate() {
                let j = match rule {
                    CompiledRule::Alerting(_) => previous
                        .rule_keys
                        .iter()
                        .position(|k| k.is_some() && *k == runner.rule_keys[i]),
                    CompiledRule::Recording(r) => previous.group.rules.iter().position(
                        |p| matches!(p, CompiledRule::Recording(q) if q.record == r.record),
                    ),
                };
                let Some(j) = j else { continue };
                if let Some(alerts) = prev.state.alerts.get(j) {
                    carried += alerts.len();
                    run.state.alerts[i] = alerts.clone();
                }
                if let Some(written) = prev.state.written.get(j) {
                    run.state.written[i] = written.clone();
                }
                for ((pi, fp), saved) in &prev.persisted {
                    if *pi == j {
                        run.persisted.insert((i, *fp), saved.clone());
                    }
                }
                for ((pi, fp), at) in &prev.last_sent {
                    if *pi == j {
                        run.last_sent.insert((i, *fp), *at);
                    }
                }
            }
            drop(run);
            drop(prev);
            self.recount(runner);
        }
        carried
    }

    /// Evaluates group `index` at `now` (Unix milliseconds): the rules, then persistence, the
    /// alert log, the alerts handed on and the self-metrics.
    pub fn evaluate(&self, index: usize, now: i64) -> Outcome {
        let runner = &self.groups[index];
        let started = Instant::now();
        let mut env = self.env.clone();
        env.expansion.timestamp = Some(Time::utc(
            now.div_euclid(1000),
            (now.rem_euclid(1000) * 1_000_000) as u32,
        ));
        let mut run = runner.run.lock().expect("group lock");
        // A rule's query may take the group's interval at most (and the configured query
        // timeout): past it the rule fails with Prometheus's timeout error and the others run.
        let bound = match self.engine.timeout() {
            Some(t) => t.min(runner.group.interval),
            None => runner.group.interval,
        };
        let engine = self.engine.with_timeout(bound);
        let mut evaluation = match &self.remote {
            None => runner
                .group
                .evaluate(&mut run.state, &engine, &self.store, now, &env),
            Some(remote) => runner.group.evaluate_on(
                &mut run.state,
                remote.as_ref(),
                &self.store,
                now,
                &env,
                self.samples.is_some(),
            ),
        };
        if let (Some(samples), false) = (&self.samples, evaluation.written.is_empty()) {
            samples.send(std::mem::take(&mut evaluation.written));
        }
        let took = started.elapsed();
        run.last_evaluation = Some(now);
        run.last_duration = took;
        let failed: HashMap<usize, &String> =
            evaluation.errors.iter().map(|(i, e)| (*i, e)).collect();
        let durations = evaluation.rule_durations.clone();
        for (i, status) in run.rules.iter_mut().enumerate() {
            status.last_evaluation = Some(now);
            status.duration = durations.get(i).copied().unwrap_or_default();
            match failed.get(&i) {
                Some(e) => {
                    status.health = Health::Err;
                    status.last_error = Some((*e).clone());
                }
                None => {
                    status.health = Health::Ok;
                    status.last_error = None;
                }
            }
        }
        for (i, error) in &evaluation.errors {
            tracing::warn!(
                group = %runner.group.name,
                rule = %runner.group.rules[*i].name(),
                error = %error,
                "Rule evaluation failed."
            );
        }
        let lines = transition_lines(&run, &evaluation, now);
        let changes = self.changes(runner, &mut run);
        let sent = self.due_alerts(runner, &mut run, now);
        let mut persist_error = None;
        if let Some(db) = &self.db
            && (!changes.is_empty()
                || now.saturating_sub(run.last_written) >= EVALUATION_WRITE_INTERVAL_MS)
        {
            match db
                .lock()
                .expect("state db lock")
                .write(&runner.key, now, &changes)
            {
                Ok(()) => run.last_written = now,
                Err(e) => {
                    tracing::error!(error = %e, "Alert states could not be saved.");
                    persist_error = Some(e.to_string());
                }
            }
        }
        drop(run);
        if let Some(log) = &self.log
            && let Err(e) = log.append(time_of(now), &lines)
        {
            tracing::error!(error = %e, "Alert log could not be written.");
            persist_error.get_or_insert(e.to_string());
        }
        if let (Some(sink), false) = (&self.sink, sent.is_empty()) {
            sink.send(sent.clone());
        }
        self.recount(runner);
        if let Some(t) = &self.telemetry {
            t.rule_group(
                &runner.key,
                started.elapsed(),
                now as f64 / 1000.0,
                evaluation.errors.len(),
            );
        }
        Outcome {
            evaluation,
            sent,
            persist_error,
        }
    }

    /// The state.db changes since the last write: alerts new or in another state, and alerts
    /// gone.
    fn changes(&self, runner: &GroupRunner, run: &mut GroupRun) -> Vec<Change> {
        let mut changes = Vec::new();
        let GroupRun {
            state, persisted, ..
        } = run;
        for (i, alerts) in state.alerts.iter().enumerate() {
            let Some(key) = &runner.rule_keys[i] else {
                continue;
            };
            for (fp, active) in alerts {
                let unchanged = persisted.get(&(i, *fp)).is_some_and(|p| {
                    p.alert.state == active.alert.state
                        && p.alert.active_at == active.alert.active_at
                });
                if unchanged {
                    continue;
                }
                let saved = SavedAlert {
                    rule_key: key.clone(),
                    fingerprint: fp.0,
                    labels: btree(&active.labels),
                    annotations: active.annotations.clone(),
                    alert: active.alert.clone(),
                };
                persisted.insert((i, *fp), saved.clone());
                changes.push(Change::Put(saved));
            }
        }
        persisted.retain(|(i, fp), saved| {
            let keep = runner.rule_keys.get(*i).is_some_and(Option::is_some)
                && state.alerts.get(*i).is_some_and(|a| a.contains_key(fp));
            if !keep {
                changes.push(Change::Delete {
                    rule_key: saved.rule_key.clone(),
                    fingerprint: fp.0,
                });
            }
            keep
        });
        changes
    }

    fn generator_url(&self, expr: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        if self.settings.generator_url.is_empty() {
            format!(
                "{}/api/v1/query?query={encoded}",
                self.settings.external_url.trim_end_matches('/')
            )
        } else {
            self.settings.generator_url.replace("{expr}", &encoded)
        }
    }

    /// The alerts to hand on at `now`, as Prometheus's `sendAlerts`: pending ones never;
    /// resolved ones once; firing ones when not sent within [`RESEND_DELAY`], valid until four
    /// times the larger of that delay and the group's interval.
    fn due_alerts(
        &self,
        runner: &GroupRunner,
        run: &mut GroupRun,
        now: i64,
    ) -> Vec<crate::notify::Alert> {
        let valid_for = millis(RESEND_DELAY.max(runner.group.interval)) * 4;
        let mut out = Vec::new();
        let GroupRun {
            state, last_sent, ..
        } = run;
        let mut live = HashSet::new();
        for (i, alerts) in state.alerts.iter().enumerate() {
            let CompiledRule::Alerting(rule) = &runner.group.rules[i] else {
                continue;
            };
            for (fp, active) in alerts {
                live.insert((i, *fp));
                let a = &active.alert;
                let sent = last_sent.get(&(i, *fp)).copied();
                let due = match a.state {
                    AlertState::Pending | AlertState::Inactive => false,
                    AlertState::Resolved => {
                        sent.is_none_or(|s| a.resolved_at.is_some_and(|r| s < r))
                    }
                    // A new firing episode (after a resolution) is sent at once, as Prometheus
                    // sends a new alert object.
                    AlertState::Firing => sent.is_none_or(|s| {
                        s + millis(RESEND_DELAY) <= now || a.fired_at.is_some_and(|f| s < f)
                    }),
                };
                if !due {
                    continue;
                }
                last_sent.insert((i, *fp), now);
                let mut labels = btree(&active.labels);
                for (k, v) in &self.settings.external_labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                let ends_at = a.resolved_at.unwrap_or(now + valid_for);
                out.push(crate::notify::Alert {
                    labels,
                    annotations: active.annotations.clone(),
                    starts_at: time_of(a.fired_at.unwrap_or(a.active_at)),
                    ends_at: time_of(ends_at),
                    updated_at: time_of(now),
                    generator_url: self.generator_url(&rule.source),
                    timeout: false,
                });
            }
        }
        last_sent.retain(|k, _| live.contains(k));
        out
    }

    fn recount(&self, runner: &GroupRunner) {
        let (pending, firing) = {
            let run = runner.run.lock().expect("group lock");
            let mut counts = (0, 0);
            for alerts in &run.state.alerts {
                for a in alerts.values() {
                    match a.alert.state {
                        AlertState::Pending => counts.0 += 1,
                        AlertState::Firing => counts.1 += 1,
                        _ => {}
                    }
                }
            }
            counts
        };
        let (total_pending, total_firing) = {
            let mut counts = runner.counts.lock().expect("counts lock");
            let mut totals = self.totals.lock().expect("totals lock");
            totals.0 = totals.0 - counts.0 + pending;
            totals.1 = totals.1 - counts.1 + firing;
            *counts = (pending, firing);
            *totals
        };
        if let Some(t) = &self.telemetry {
            t.alerts("pending", total_pending);
            t.alerts("firing", total_firing);
        }
    }

    /// How many alerts are pending and firing.
    pub fn totals(&self) -> (usize, usize) {
        *self.totals.lock().expect("totals lock")
    }

    /// Asks every group that reads one of `names` to evaluate now (coalesced).
    pub fn trigger<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let names: Vec<&str> = names.into_iter().collect();
        for runner in &self.groups {
            let reads = match &runner.reads {
                None => true,
                Some(set) => names.iter().any(|n| set.contains(*n)),
            };
            if reads {
                runner.trigger.notify_one();
            }
        }
    }

    /// Asks every group to evaluate now.
    pub fn trigger_all(&self) {
        for runner in &self.groups {
            runner.trigger.notify_one();
        }
    }

    /// Runs every group on tokio: at its interval, aligned to the wall clock, and when
    /// triggered, at most once per [`TRIGGER_COALESCE`] more.
    pub fn start(self: &Arc<Self>) -> RulesTask {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..self.groups.len())
            .map(|index| tokio::spawn(run_group(self.clone(), index, stopped.clone())))
            .collect();
        RulesTask { stop, tasks }
    }
}

/// The running evaluation loops.
#[derive(Debug)]
pub struct RulesTask {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RulesTask {
    /// Stops every loop after its evaluation in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Where in its interval a group evaluates: a stable hash (FNV-1a) of its file and name modulo
/// the interval, the same at every start.
fn group_offset(group: &Group, interval_ms: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.file.bytes().chain([0xff]).chain(group.name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % interval_ms.max(1) as u64) as i64
}

async fn run_group(rules: Arc<Rules>, index: usize, mut stopped: watch::Receiver<bool>) {
    let interval = rules.groups[index]
        .group
        .interval
        .max(Duration::from_millis(1));
    let interval_ms = millis(interval);
    // Each group at its own phase of the interval, as Prometheus spreads groups (an offset from
    // a hash of file and name), so that groups of one interval do not all start together.
    let offset = group_offset(&rules.groups[index].group, interval_ms);
    let until_next = |now: i64| {
        Duration::from_millis((interval_ms - (now - offset).rem_euclid(interval_ms)) as u64)
    };
    let mut next = tokio::time::Instant::now() + until_next(now_ms());
    let mut last_run = tokio::time::Instant::now() - TRIGGER_COALESCE;
    loop {
        let runner = &rules.groups[index];
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = runner.trigger.notified() => {
                let earliest = last_run + TRIGGER_COALESCE;
                if tokio::time::Instant::now() < earliest {
                    tokio::select! {
                        _ = tokio::time::sleep_until(earliest) => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
            _ = stopped.changed() => return,
        }
        last_run = tokio::time::Instant::now();
        let work = rules.clone();
        let _ = tokio::task::spawn_blocking(move || work.evaluate(index, now_ms())).await;
        let now = tokio::time::Instant::now();
        if now >= next {
            next = now + until_next(now_ms());
        }
    }
}
