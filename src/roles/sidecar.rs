//! The alert sidecar's parts, started and stopped together: rule files loaded, the store, the
//! data source (scrape targets, the process's own registries under `run`, or a remote
//! Prometheus API with remote write), the rule evaluation loops, `state.db` and the alert log,
//! and forwarding to Alertmanagers.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promql_parser::parser::Expr;
use tokio::sync::watch;

use super::RoleError;
use crate::alerts::forward::{FanOut, Forwarder};
use crate::alerts::log::AlertLog;
use crate::alerts::persist::AlertDb;
use crate::config::Config;
use crate::config::sidecar::RemoteConfig;
use crate::exporter::Registry;
use crate::notify::config::AlertmanagerConfig;
use crate::notify::pipeline::{self, Notifier, NotifierTask};
use crate::promql::Engine;
use crate::remote::{Auth, QueryClient, RemoteWriter};
use crate::rules::rule::CompiledRule;
use crate::rules::schedule::now_ms;
use crate::rules::{
    AlertSink, Evaluate, Group, RuleFile, Rules, RulesHandle, RulesTask, SampleSink, Settings,
    compile,
};
use crate::scrape::local::LocalSource;
use crate::scrape::scraper::Scraper;
use crate::store::{Store, StoreOptions};
use crate::telemetry::Telemetry;
use crate::template::alertmanager::NotificationTemplates;

/// Prometheus's lookback: how far back an instant selector reaches.
const LOOKBACK: Duration = Duration::from_secs(300);

/// The rule files `patterns` name, in order, each once.
pub fn rule_file_paths(patterns: &[String]) -> Result<Vec<PathBuf>, RoleError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern).map_err(|e| RoleError::Rules {
            message: format!("sidecar.rule_files: bad pattern {pattern:?}: {e}"),
        })?;
        for path in paths {
            let path = path.map_err(|e| RoleError::Rules {
                message: format!("sidecar.rule_files: {e}"),
            })?;
            if seen.insert(path.clone()) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Loads and compiles every rule file of the configuration; every file's errors are reported
/// together.
pub fn load_groups(config: &Config) -> Result<Vec<Group>, RoleError> {
    let interval = config.sidecar.evaluation_interval.as_duration();
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in rule_file_paths(&config.sidecar.rule_files)? {
        match RuleFile::load(&path) {
            Ok(loaded) => groups.extend(compile(&loaded, &path.display().to_string(), interval)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(RoleError::Rules {
            message: errors.join("\n"),
        })
    }
}

/// How far back any rule reads: its selectors' ranges and offsets, subqueries' reach, plus the
/// lookback; the store keeps that much of each series.
pub fn reach(groups: &[Group]) -> Duration {
    struct Reach(Duration);
    impl promql_parser::util::ExprVisitor for Reach {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
            let offset = |o: &Option<promql_parser::parser::Offset>| match o {
                Some(promql_parser::parser::Offset::Pos(d)) => *d,
                _ => Duration::ZERO,
            };
            let here = match expr {
                Expr::MatrixSelector(ms) => ms.range + offset(&ms.vs.offset),
                Expr::VectorSelector(vs) => offset(&vs.offset),
                Expr::Subquery(sq) => sq.range + offset(&sq.offset),
                _ => Duration::ZERO,
            };
            // Nested reaches add up; summing every one is a safe upper bound.
            self.0 += here;
            Ok(true)
        }
    }
    let mut longest = Duration::ZERO;
    for group in groups {
        for rule in &group.rules {
            let expr = match rule {
                CompiledRule::Recording(r) => &r.expr,
                CompiledRule::Alerting(a) => &a.expr,
            };
            let mut r = Reach(group.query_offset);
            let _ = promql_parser::util::walk_expr(&mut r, expr);
            longest = longest.max(r.0);
        }
    }
    longest + LOOKBACK
}

/// The Alertmanager configuration `notifier` names (`config_file`, relative to the tradewatch
/// file's directory, or `config` inline), if any.
pub fn routing(config: &Config) -> Result<Option<AlertmanagerConfig>, RoleError> {
    let err = |e: crate::notify::config::NotifyConfigError| RoleError::Notifier {
        message: e.to_string(),
    };
    if let Some(file) = &config.notifier.config_file {
        let path = match &config.base_dir {
            Some(dir) => dir.join(file),
            None => file.clone(),
        };
        return AlertmanagerConfig::load(&path).map(Some).map_err(err);
    }
    match &config.notifier.config {
        Some(value) => AlertmanagerConfig::from_value(value, "notifier.config")
            .map(Some)
            .map_err(err),
        None => Ok(None),
    }
}

/// Alertmanager's default templates plus the files of the routing file's `templates:` globs.
pub fn notification_templates(am: &AlertmanagerConfig) -> Result<NotificationTemplates, RoleError> {
    let mut templates = crate::notify::email::default_templates();
    for pattern in &am.templates {
        let paths = glob::glob(pattern).map_err(|e| RoleError::Notifier {
            message: format!("templates: bad pattern {pattern:?}: {e}"),
        })?;
        for path in paths.flatten() {
            let text = std::fs::read_to_string(&path).map_err(|e| RoleError::Notifier {
                message: format!("templates: cannot read {}: {e}", path.display()),
            })?;
            templates
                .add(&path.display().to_string(), &text)
                .map_err(|e| RoleError::Notifier {
                    message: format!("templates: {}: {e}", path.display()),
                })?;
        }
    }
    Ok(templates)
}

fn start_notifier(
    config: &Config,
    external_url: &str,
    log: &Arc<AlertLog>,
    telemetry: &Arc<Telemetry>,
) -> Result<Option<(Arc<Notifier>, NotifierTask)>, RoleError> {
    let Some(am) = routing(config)? else {
        return Ok(None);
    };
    let templates = notification_templates(&am)?;
    let err = |e: crate::notify::pipeline::NotifierError| RoleError::Notifier {
        message: e.to_string(),
    };
    // Action links keep the key they started with; a reload does not change it.
    let links = match &config.notifier.action_links {
        Some(links) => Some(Arc::new(
            crate::notify::action::ActionLinks::load(
                links,
                &config.storage.data_dir,
                external_url,
                &config.notifier.timezone,
            )
            .map_err(|e| RoleError::Notifier {
                message: e.to_string(),
            })?,
        )),
        None => None,
    };
    let channels = pipeline::channels(
        &am,
        &config.notifier,
        &templates,
        external_url,
        links.as_ref(),
    )
    .map_err(err)?;
    let settings = pipeline::outbox_settings(&am, &config.notifier);
    let escalations = escalation_rules(config, &am)?;
    let notifier = Arc::new(
        Notifier::open(
            &config.storage.data_dir.join("state.db"),
            am,
            settings,
            Some(log.clone()),
            Some(telemetry.clone()),
            chrono::Utc::now(),
        )
        .map_err(err)?,
    );
    notifier.set_escalations(escalations);
    notifier.set_action_links(links);
    let task = notifier.start(channels);
    Ok(Some((notifier, task)))
}

/// What `tradewatch check config` checks beyond the file itself: the rule files its globs
/// match, and the routing file (inline, or `config_file` when it exists here) with its
/// templates. Gives the problems and the notes (what could not be checked here).
pub fn check_references(config: &Config) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if let Err(e) = load_groups(config) {
        problems.push(e.to_string());
    }
    let missing = config.notifier.config_file.as_ref().and_then(|file| {
        let path = match &config.base_dir {
            Some(dir) => dir.join(file),
            None => file.clone(),
        };
        (!path.exists()).then_some(path)
    });
    match missing {
        Some(path) => notes.push(format!(
            "notifier.config_file {} is not here; not checked",
            path.display()
        )),
        None => match routing(config) {
            Ok(Some(am)) => {
                if let Err(e) = notification_templates(&am) {
                    problems.push(e.to_string());
                }
                if let Err(e) = escalation_rules(config, &am) {
                    problems.push(e.to_string());
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(e.to_string()),
        },
    }
    (problems, notes)
}

fn escalation_rules(
    config: &Config,
    am: &AlertmanagerConfig,
) -> Result<Vec<crate::notify::escalate::EscalationRule>, RoleError> {
    crate::notify::escalate::rules(&config.notifier.escalations, am).map_err(|e| {
        RoleError::Notifier {
            message: e.to_string(),
        }
    })
}

/// Why `run` refuses `sidecar.remote`.
const RUN_WITH_REMOTE: &str = "sidecar.remote is set, but `tradewatch run` evaluates rules on its own exporter, in-process; remote mode is for `tradewatch sidecar` (remove sidecar.remote, or run `tradewatch exporter` and `tradewatch sidecar` apart)";

/// Where the sidecar's data comes from.
pub enum DataSource {
    /// `sidecar.scrape.targets`.
    Scrape,
    /// The process's own registries, read in-process (`run`): refreshed when `changes` moves
    /// (the fast path) and at the scrape interval.
    Local {
        /// The registries, as `/metrics` serves them.
        registries: Vec<Arc<Registry>>,
        /// The exporter's change counter.
        changes: watch::Receiver<u64>,
        /// The `instance` label of the process's series.
        instance: String,
    },
    /// `sidecar.remote`: expressions evaluated by a Prometheus-compatible API; what rules
    /// write also goes out by remote write when `write_url` is set.
    Remote(RemoteConfig),
}

impl DataSource {
    /// The source `sidecar` names for the `sidecar` command: remote when `sidecar.remote` is
    /// set, else the scrape targets.
    pub fn configured(config: &Config) -> DataSource {
        match &config.sidecar.remote {
            Some(remote) => DataSource::Remote(remote.clone()),
            None => DataSource::Scrape,
        }
    }
}

/// Refuses recording rules when nothing would receive their results: in remote mode they go out
/// by remote write only, so without `write_url` each one is named.
pub fn check_remote_write(groups: &[Group], remote: &RemoteConfig) -> Result<(), RoleError> {
    if remote.write_url.is_some() {
        return Ok(());
    }
    let refused: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            g.rules.iter().filter_map(move |rule| match rule {
                CompiledRule::Recording(r) => Some(format!(
                    "{}: group {:?}: recording rule {:?} needs sidecar.remote.write_url: in remote mode recording-rule results are written with remote write",
                    g.file, g.name, r.record
                )),
                CompiledRule::Alerting(_) => None,
            })
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(RoleError::Rules {
            message: refused.join("\n"),
        })
    }
}

/// The remote query client and, with `write_url`, the remote writer.
fn start_remote(
    remote: &RemoteConfig,
    telemetry: &Arc<Telemetry>,
) -> Result<(Arc<QueryClient>, Option<Arc<RemoteWriter>>), RoleError> {
    let err = |e: crate::remote::RemoteError| RoleError::Rules {
        message: format!("sidecar.remote: {e}"),
    };
    let client = QueryClient::new(remote).map_err(err)?;
    let writer = match &remote.write_url {
        Some(url) => {
            let auth = Auth::load(&remote.auth).map_err(|e| err(e.into()))?;
            Some(Arc::new(
                RemoteWriter::start(
                    url,
                    auth,
                    remote.timeout.as_duration(),
                    Some(telemetry.clone()),
                )
                .map_err(err)?,
            ))
        }
        None => None,
    };
    Ok((Arc::new(client), writer))
}

/// The sidecar's running parts.
pub struct SidecarParts {
    /// The rule layer in force.
    pub rules: RulesHandle,
    /// The store.
    pub store: Arc<Store>,
    /// Where alerts go: the notifier and the Alertmanagers.
    sink: Arc<dyn AlertSink>,
    settings: Settings,
    telemetry: Arc<Telemetry>,
    filter: crate::scrape::filter::FilterHandle,
    data_dir: PathBuf,
    /// The alert log.
    pub log: Arc<AlertLog>,
    tasks: RulesTask,
    scraper: Option<Scraper>,
    local: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    /// The remote writer, in remote mode with `write_url`.
    pub writer: Option<Arc<RemoteWriter>>,
    /// The remote query client, in remote mode (a reload's rules evaluate on it too).
    remote_client: Option<Arc<QueryClient>>,
    /// `sidecar.remote` as started: a reload that changes it is refused (a restart applies it).
    remote_config: Option<RemoteConfig>,
    forwarder: Option<Arc<Forwarder>>,
    /// The notifier, when `notifier` names a routing file.
    pub notifier: Option<Arc<Notifier>>,
    notifier_task: Option<NotifierTask>,
    housekeeping: tokio::task::JoinHandle<()>,
}

impl SidecarParts {
    /// Loads the rules, opens `state.db` and the alert log, restores alert states and starts
    /// evaluating; alerts go to the notifier (when `notifier` names a routing file) and to the
    /// Alertmanagers of `sidecar.alerting`.
    pub async fn start(
        config: &Config,
        external_url: &str,
        telemetry: Arc<Telemetry>,
        source: DataSource,
    ) -> Result<SidecarParts, RoleError> {
        if matches!(source, DataSource::Local { .. }) && config.sidecar.remote.is_some() {
            return Err(RoleError::Rules {
                message: RUN_WITH_REMOTE.into(),
            });
        }
        let groups = load_groups(config)?;
        let remote_config = match &source {
            DataSource::Remote(remote) => Some(remote.clone()),
            _ => None,
        };
        let remote = match &source {
            DataSource::Remote(remote) => {
                check_remote_write(&groups, remote)?;
                Some(start_remote(remote, &telemetry)?)
            }
            _ => None,
        };
        let retention = reach(&groups);
        let filter = crate::scrape::filter::handle(
            crate::scrape::filter::SeriesFilter::for_rules(&groups, &config.sidecar.store.keep)
                .map_err(|message| RoleError::Rules { message })?,
        );
        let store = Arc::new(Store::new(StoreOptions {
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
        }));
        let dir = &config.storage.data_dir;
        let data_dir_err = |source| RoleError::DataDir {
            path: dir.clone(),
            source,
        };
        let db = AlertDb::open(&dir.join("state.db")).map_err(|e| RoleError::State {
            message: e.to_string(),
        })?;
        let log = Arc::new(
            AlertLog::open(
                &dir.join("alerts"),
                config.storage.alert_log_retention.as_duration(),
            )
            .map_err(|e| match e {
                crate::alerts::log::AlertLogError::Io { source, .. } => data_dir_err(source),
            })?,
        );
        let forwarder = (!config.sidecar.alerting.alertmanagers.is_empty()).then(|| {
            Arc::new(Forwarder::start(
                config
                    .sidecar
                    .alerting
                    .alertmanagers
                    .iter()
                    .map(|a| a.url.clone())
                    .collect(),
                Duration::from_secs(10),
            ))
        });
        let notifier = start_notifier(config, external_url, &log, &telemetry)?;
        let mut sinks: Vec<Arc<dyn AlertSink>> = Vec::new();
        if let Some((n, _)) = &notifier {
            sinks.push(n.clone() as Arc<dyn AlertSink>);
        }
        if let Some(f) = &forwarder {
            sinks.push(f.clone() as Arc<dyn AlertSink>);
        }
        let settings = Settings {
            external_labels: config.sidecar.external_labels.clone(),
            external_url: external_url.to_owned(),
            generator_url: config.sidecar.generator_url.clone(),
            outage_tolerance: config.sidecar.outage_tolerance.as_duration(),
        };
        let group_count = groups.len();
        let sink: Arc<dyn AlertSink> = Arc::new(FanOut(sinks));
        let mut rules = Rules::new(
            groups,
            Engine::default().with_timeout(config.sidecar.query_timeout.as_duration()),
            store.clone(),
            settings.clone(),
            Some(db),
            Some(log.clone()),
            Some(sink.clone()),
            Some(telemetry.clone()),
        );
        let remote_client = remote.as_ref().map(|(c, _)| c.clone());
        let writer = match remote {
            Some((client, writer)) => {
                rules = rules.with_remote(
                    client as Arc<dyn Evaluate>,
                    writer.clone().map(|w| w as Arc<dyn SampleSink>),
                );
                writer
            }
            None => None,
        };
        let rules = Arc::new(rules);
        let restored = {
            let rules = rules.clone();
            tokio::task::spawn_blocking(move || {
                let restored = rules.restore(now_ms())?;
                let pruned = rules.prune_saved()?;
                if pruned > 0 {
                    tracing::info!(
                        rows = pruned,
                        "Removed the saved state of rules no longer loaded."
                    );
                }
                Ok::<_, crate::alerts::persist::StateDbError>(restored)
            })
            .await
            .expect("restore does not panic")
            .map_err(|e| RoleError::State {
                message: e.to_string(),
            })?
        };
        tracing::info!(groups = group_count, restored, "Rules loaded.");
        let handle = RulesHandle::new(rules.clone());
        let (scraper, local) = match source {
            DataSource::Scrape => {
                let trigger = handle.clone();
                let scraper = Scraper::start_with(
                    &config.sidecar.scrape,
                    store.clone(),
                    Some(telemetry.clone()),
                    Some(Arc::new(move || trigger.current().trigger_all())),
                    Some(filter.clone()),
                )
                .map_err(|e| RoleError::Rules {
                    message: format!("sidecar.scrape: {e}"),
                })?;
                (Some(scraper), None)
            }
            DataSource::Local {
                registries,
                changes,
                instance,
            } => {
                let (stop, stopped) = watch::channel(false);
                let source = LocalSource::new(registries, &config.sidecar.self_.job, &instance)
                    .with_filter(filter.clone());
                let task = tokio::spawn(feed(
                    source,
                    store.clone(),
                    handle.clone(),
                    changes,
                    config.sidecar.scrape.interval.as_duration(),
                    stopped,
                ));
                (None, Some((stop, task)))
            }
            DataSource::Remote(remote) => {
                tracing::info!(url = %remote.url, write_url = ?remote.write_url, "Rules evaluate on a remote API.");
                (None, None)
            }
        };
        let tasks = rules.start();
        let housekeeping = tokio::spawn(housekeeping(log.clone()));
        let (notifier, notifier_task) = match notifier {
            Some((n, t)) => (Some(n), Some(t)),
            None => (None, None),
        };
        Ok(SidecarParts {
            rules: handle,
            store,
            sink,
            settings,
            telemetry,
            filter,
            data_dir: config.storage.data_dir.clone(),
            log,
            tasks,
            scraper,
            local,
            writer,
            remote_client,
            remote_config,
            forwarder,
            notifier,
            notifier_task,
            housekeeping,
        })
    }

    /// Reloads rule files, the routing file and the scrape targets of `config` together:
    /// everything is loaded and checked first, and nothing changes unless all of it is valid.
    /// Alert states carry over (by rule), silences, the notification log and the outbox stay;
    /// targets whose settings did not change go on scraping without a gap, changed ones
    /// restart, removed ones stop with their series marked stale. Settings that only a restart
    /// applies (listener, data directory, `sidecar.remote`, Alertmanagers, adding or removing
    /// the notifier) are named in the error when they changed.
    pub async fn reload(&mut self, config: &Config, external_url: &str) -> Result<(), RoleError> {
        if config.sidecar.remote != self.remote_config {
            let message = if self.local.is_some() {
                RUN_WITH_REMOTE.into()
            } else {
                "sidecar.remote changed: switching the data source or its API needs a restart"
                    .into()
            };
            return Err(RoleError::Rules { message });
        }
        let groups = load_groups(config)?;
        let filter =
            crate::scrape::filter::SeriesFilter::for_rules(&groups, &config.sidecar.store.keep)
                .map_err(|message| RoleError::Rules { message })?;
        let scrape_plan = match &self.scraper {
            Some(scraper) => {
                Some(
                    scraper
                        .prepare(&config.sidecar.scrape)
                        .map_err(|e| RoleError::Rules {
                            message: format!("sidecar.scrape: {e}"),
                        })?,
                )
            }
            None => None,
        };
        let notifier = match (&self.notifier, routing(config)?) {
            (Some(n), Some(am)) => {
                let templates = notification_templates(&am)?;
                let links = n.action_links();
                let channels = pipeline::channels(
                    &am,
                    &config.notifier,
                    &templates,
                    external_url,
                    links.as_ref(),
                )
                .map_err(|e| RoleError::Notifier {
                    message: e.to_string(),
                })?;
                let escalations = escalation_rules(config, &am)?;
                Some((am, channels, escalations))
            }
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(RoleError::Notifier {
                    message: "adding or removing the notifier (notifier.config_file, notifier.config) needs a restart".into(),
                });
            }
        };
        let db = AlertDb::open(&self.data_dir.join("state.db")).map_err(|e| RoleError::State {
            message: e.to_string(),
        })?;
        let settings = Settings {
            external_labels: config.sidecar.external_labels.clone(),
            generator_url: config.sidecar.generator_url.clone(),
            outage_tolerance: config.sidecar.outage_tolerance.as_duration(),
            ..self.settings.clone()
        };
        if let Some(remote) = &config.sidecar.remote
            && self.remote_client.is_some()
        {
            check_remote_write(&groups, remote)?;
        }
        let group_count = groups.len();
        let mut rules = Rules::new(
            groups,
            Engine::default().with_timeout(config.sidecar.query_timeout.as_duration()),
            self.store.clone(),
            settings.clone(),
            Some(db),
            Some(self.log.clone()),
            Some(self.sink.clone()),
            Some(self.telemetry.clone()),
        );
        if let Some(client) = &self.remote_client {
            rules = rules.with_remote(
                client.clone() as Arc<dyn Evaluate>,
                self.writer.clone().map(|w| w as Arc<dyn SampleSink>),
            );
        }
        let rules = Arc::new(rules);
        let old = self.rules.current();
        let carried = rules.adopt(&old);
        // The old loops finish their evaluation in flight before the new ones start.
        let tasks = std::mem::replace(&mut self.tasks, rules.start());
        self.rules.replace(rules.clone());
        tasks.stop().await;
        // After the old loops stopped: none of them writes a removed rule's row again.
        match rules.prune_saved() {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "Removed the saved state of rules no longer loaded."),
            Err(e) => {
                tracing::warn!(error = %e, "Could not remove the saved state of rules no longer loaded.")
            }
        }
        if let (Some(n), Some((am, channels, escalations))) = (&self.notifier, notifier) {
            n.set_escalations(escalations);
            n.reload(am, channels, chrono::Utc::now());
        }
        *self.filter.write().expect("filter lock") = Arc::new(filter);
        if let (Some(scraper), Some(plan)) = (&mut self.scraper, scrape_plan) {
            let r = scraper.apply(plan).await;
            tracing::info!(
                kept = r.kept,
                restarted = r.restarted,
                added = r.added,
                removed = r.removed,
                "Scrape targets reloaded."
            );
        }
        self.settings = settings;
        tracing::info!(groups = group_count, carried, "Configuration reloaded.");
        Ok(())
    }

    /// Stops the data source and the evaluation loops (after the evaluations in flight).
    pub async fn stop(self) {
        if let Some(scraper) = self.scraper {
            scraper.stop().await;
        }
        if let Some((stop, task)) = self.local {
            let _ = stop.send(true);
            let _ = task.await;
        }
        self.tasks.stop().await;
        if let Some(writer) = &self.writer {
            writer.stop().await;
        }
        if let Some(task) = self.notifier_task {
            task.stop().await;
        }
        if let Some(f) = self.forwarder {
            f.stop();
        }
        self.housekeeping.abort();
    }
}

/// The in-process data path: the registries read into the store at every change (coalesced to
/// one read per [`crate::rules::schedule::TRIGGER_COALESCE`]) and in full at every interval; the
/// groups that read a changed metric evaluate at once.
async fn feed(
    source: LocalSource,
    store: Arc<Store>,
    rules: RulesHandle,
    mut changes: watch::Receiver<u64>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let source = Arc::new(Mutex::new(source));
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let coalesce = crate::rules::schedule::TRIGGER_COALESCE;
    let mut last_read = tokio::time::Instant::now() - coalesce;
    loop {
        let full = tokio::select! {
            _ = ticker.tick() => true,
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                // The first change reads at once; more within the window wait for its end.
                let earliest = last_read + coalesce;
                if tokio::time::Instant::now() < earliest {
                    tokio::time::sleep_until(earliest).await;
                }
                changes.borrow_and_update();
                false
            }
            _ = stopped.changed() => {
                source.lock().expect("source lock").stop(&store, now_ms());
                return;
            }
        };
        last_read = tokio::time::Instant::now();
        let (source, store, rules) = (source.clone(), store.clone(), rules.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let changed = source
                .lock()
                .expect("source lock")
                .read(&store, now_ms(), full);
            if !full && !changed.is_empty() {
                rules.current().trigger(changed.iter().map(String::as_str));
            }
        })
        .await;
    }
}

/// Daily upkeep: alert log retention.
async fn housekeeping(log: Arc<AlertLog>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    loop {
        ticker.tick().await;
        match log.apply_retention(chrono::Utc::now()) {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(files = ?deleted, "Deleted alert log files past retention.");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Alert log retention failed."),
        }
    }
}
