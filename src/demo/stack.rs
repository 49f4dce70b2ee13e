//! `tradewatch demo`: the whole pipeline in one process with nothing else installed. The
//! exporter and sidecar of `run` on one listener, the rule pack of `rules/` (embedded), an
//! Alertmanager routing file that sends critical alerts at once (`group_wait: 0s`) and warnings
//! grouped, emails written as `.eml` files to a folder it names, the simulated engine driving
//! it all, and a live summary in the terminal.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::driver::{DemoError, DriverConfig, Summary};
use crate::config::Config;
use crate::roles::{RoleError, Run};

/// The rule pack, as shipped in `rules/`.
pub const RULE_PACK: &str = include_str!("../../rules/trading.rules.yml");

/// The demo's routing file (Alertmanager's format).
pub const ROUTING: &str = r#"# tradewatch demo: critical alerts at once, warnings grouped.
route:
  receiver: desk-email
  group_by: [alertname, engine]
  group_wait: 10s
  group_interval: 30s
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: trader-email
      group_wait: 0s
      group_interval: 10s
receivers:
  - name: trader-email
    email_configs:
      - to: trader@example.com
        from: tradewatch@example.com
        smarthost: localhost:25
        send_resolved: true
  - name: desk-email
    email_configs:
      - to: desk@example.com
        from: tradewatch@example.com
        smarthost: localhost:25
inhibit_rules:
  - source_matchers: ['alertname="TradingKillSwitchActive"']
    target_matchers: ['severity="warning"']
    equal: [engine]
"#;

/// Where the demo keeps its files and how it runs.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The folder for the data directory, rules, routing file, model files and emails.
    pub dir: PathBuf,
    /// The listener.
    pub listen: SocketAddr,
    /// The scenario's seed.
    pub seed: u64,
    /// Scenario seconds per wall-clock second.
    pub speed: f64,
    /// How long to run; until Ctrl-C when `None`.
    pub duration: Option<Duration>,
}

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The demo folder.
    #[error("failed to prepare the demo folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The demo's configuration (a defect: it is generated).
    #[error("demo configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The process could not start.
    #[error(transparent)]
    Role(#[from] RoleError),
    /// The simulated engine.
    #[error(transparent)]
    Engine(#[from] DemoError),
}

/// The paths the demo uses under its folder.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `data/`: journal, snapshots, state.db, alert log.
    pub data: PathBuf,
    /// `emails/`: one `.eml` file per notification.
    pub emails: PathBuf,
    /// `models/`: the model files the engine refreshes.
    pub models: PathBuf,
    /// `trading.rules.yml`.
    pub rules: PathBuf,
    /// `alertmanager.yml`.
    pub routing: PathBuf,
}

impl Layout {
    /// The layout under `dir`.
    pub fn new(dir: &Path) -> Layout {
        Layout {
            data: dir.join("data"),
            emails: dir.join("emails"),
            models: dir.join("models"),
            rules: dir.join("trading.rules.yml"),
            routing: dir.join("alertmanager.yml"),
        }
    }
}

/// The demo's configuration, with paths under `layout`.
pub fn config_text(layout: &Layout, listen: SocketAddr) -> String {
    let p = |p: &Path| p.display().to_string().replace('\'', "''");
    format!(
        "# Written by tradewatch demo.
server:
  listen: {listen}
storage:
  data_dir: '{data}'
  # Synced every second and snapshotted every 15 s, so the pipeline dashboard shows the
  # journal's fsync latency and size within seconds of the start.
  fsync: interval
  snapshot_interval: 15s
exporter:
  heartbeat_timeout: 10s
  collectors:
    files: [{{name: models, paths: ['{models}/*.json']}}]
sidecar:
  evaluation_interval: 1s
  rule_files: ['{rules}']
  self: {{job: tradewatch}}
notifier:
  config_file: '{routing}'
  external_url: http://{listen}
  timezone: UTC
  receivers:
    trader-email: {{email: {{files_dir: '{emails}'}}}}
    desk-email: {{email: {{files_dir: '{emails}'}}}}
",
        data = p(&layout.data),
        models = p(&layout.models),
        rules = p(&layout.rules),
        routing = p(&layout.routing),
        emails = p(&layout.emails),
    )
}

/// Writes the demo's files under `dir`, starting from an empty data directory and no emails.
pub fn prepare(dir: &Path, listen: SocketAddr) -> Result<(Layout, Config), StackError> {
    let layout = Layout::new(dir);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StackError::Folder { path, source }
    };
    for fresh in [&layout.data, &layout.emails] {
        match std::fs::remove_dir_all(fresh) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(fresh)(e)),
        }
    }
    for d in [&layout.data, &layout.emails, &layout.models] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    std::fs::write(&layout.rules, RULE_PACK).map_err(io(&layout.rules))?;
    std::fs::write(&layout.routing, ROUTING).map_err(io(&layout.routing))?;
    let text = config_text(&layout, listen);
    let path = dir.join("tradewatch.yaml");
    std::fs::write(&path, &text).map_err(io(&path))?;
    let config = Config::load(&path)?;
    Ok((layout, config))
}

fn eml_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// The URLs and hints printed when the demo starts.
pub fn banner(addr: SocketAddr, layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tradewatch demo: a simulated trading engine, the rule pack and the notifier in one process."
    );
    let _ = writeln!(out, "  metrics      http://{addr}/metrics");
    let _ = writeln!(
        out,
        "  alerts       http://{addr}/api/v1/alerts   (or: tradewatch alerts status)"
    );
    let _ = writeln!(out, "  rules        http://{addr}/api/v1/rules");
    let _ = writeln!(
        out,
        "  query        http://{addr}/api/v1/query?query=trading_pnl_daily"
    );
    let _ = writeln!(
        out,
        "  health       http://{addr}/api/v1/health   (or: tradewatch health)"
    );
    let _ = writeln!(out, "  emails       {}/*.eml", layout.emails.display());
    let _ = writeln!(out, "  alert log    {}/alerts/", layout.data.display());
    let _ = writeln!(
        out,
        "Prometheus: scrape {addr} (deploy/prometheus.yml); Grafana: add it as a Prometheus data source (deploy/, grafana/)."
    );
    let _ = writeln!(
        out,
        "The engine engages a kill switch, trips a breaker and breaches its loss limit within 30 s. Ctrl-C stops."
    );
    out
}

/// Runs the demo until its duration passes or `shutdown` resolves; gives the engine's summary
/// and the number of emails written.
pub async fn run(
    settings: DemoSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Summary, usize), StackError> {
    let (layout, config) = prepare(&settings.dir, settings.listen)?;
    let run = Run::start(&config).await?;
    let addr = run.addr;
    print!("{}", banner(addr, &layout));
    let ingest = run.ingest().clone();
    let telemetry = run.telemetry().clone();
    let rules = run.rules().clone();
    let (stop, stopped) = watch::channel(false);
    let wait_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(run.run(wait_stop(stopped.clone())));
    let engine = tokio::spawn(super::driver::run(
        DriverConfig {
            url: format!("http://{addr}"),
            token: None,
            seed: settings.seed,
            speed: settings.speed,
            duration: settings.duration,
            artifacts_dir: Some(settings.dir.clone()),
        },
        wait_stop(stopped.clone()),
    ));
    let ctrl_c = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
    };
    let live = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut last_events = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut engine = engine;
    let summary = loop {
        tokio::select! {
            done = &mut engine => break done.expect("the engine task does not panic"),
            _ = ticker.tick() => {}
        }
        let events = telemetry.events_received_total();
        let rate = events.saturating_sub(last_events);
        last_events = events;
        let (pending, firing) = rules.current().totals();
        let line = format!(
            "{:>4}s  {rate:>6} events/s  {:>6} series  {firing} firing  {pending} pending  {} emails",
            started.elapsed().as_secs(),
            ingest.registry().series_total(),
            eml_count(&layout.emails),
        );
        let tick = started.elapsed().as_secs();
        if live {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if tick.is_multiple_of(5) {
            println!("{line}");
        }
    };
    if live {
        println!();
    }
    // Notifications of the last alerts need a moment to be written.
    if !*stopped.borrow() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = stop.send(true);
    ctrl_c.abort();
    server.await.expect("the server task does not panic")?;
    let emails = eml_count(&layout.emails);
    let summary = summary?;
    println!("{summary}");
    println!("{emails} emails in {}", layout.emails.display());
    Ok((summary, emails))
}
