//! The command line (clap definitions only).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ingest::event::EVENT_TYPES;
use crate::ingest::export::ExportFormat;
use crate::model::PromDuration;

/// tradewatch watches a live trading system: an OpenMetrics exporter for trading engines and a
/// PromQL alert sidecar.
#[derive(Debug, Parser)]
#[command(name = "tradewatch", version, about)]
pub struct Cli {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object a line, for log shippers.
    Json,
}

/// Options every long-running command takes.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (the bundled default when absent).
    #[arg(long, env = "TRADEWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory, overriding `storage.data_dir`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter: event ingest, journal, /metrics.
    ///
    /// Example: tradewatch exporter --config /etc/tradewatch/tradewatch.yaml
    Exporter(RunArgs),
    /// Run the alert sidecar: rules over scraped targets, alert states, the Prometheus query
    /// API (default listener 127.0.0.1:9471).
    ///
    /// Example: tradewatch sidecar --config /etc/tradewatch/tradewatch.yaml
    Sidecar(RunArgs),
    /// Run exporter and sidecar in one process on one listener; rules read the registry
    /// in-process and an event that changes what a rule reads evaluates it at once.
    ///
    /// Example: tradewatch run --config tradewatch.yaml --listen 127.0.0.1:9470
    Run(RunArgs),
    /// Validate files without starting anything.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Read the journal of accepted events.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Work with Prometheus rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run a PromQL query against a running sidecar (or `run`), printed as promtool prints it.
    ///
    /// Example: tradewatch query 'sum by (engine) (trading_pnl_daily)'
    Query {
        /// The expression.
        expr: String,
        /// Evaluation time: RFC 3339 or Unix seconds (default now).
        #[arg(long)]
        time: Option<String>,
        /// Longest the query may run (`30s`, or seconds); the server's `sidecar.query_timeout`
        /// caps it.
        #[arg(long)]
        timeout: Option<String>,
        /// Print the API's JSON instead.
        #[arg(long)]
        json: bool,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Look at alerts of a running sidecar (or `run`).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Silence alerts of a running notifier (sidecar or `run`) through its Alertmanager API;
    /// changes need the admin token.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Look at and retry the notifier's outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Acknowledge a firing alert (by fingerprint) or every alert firing in a group: it is not
    /// repeated nor escalated until it resolves (needs the admin token when one is set).
    ///
    /// Example: tradewatch ack 3fa2c1d09e8b7a61 --comment "restarting the gateway"
    Ack {
        /// The alert's fingerprint (16 hex digits), unless --group is given.
        #[arg(required_unless_present = "group", conflicts_with = "group")]
        fingerprint: Option<String>,
        /// Acknowledge the group with this key instead.
        #[arg(long)]
        group: Option<String>,
        /// Who acknowledges (default $USER).
        #[arg(long, env = "USER")]
        author: String,
        /// What is being done.
        #[arg(long, default_value = "")]
        comment: String,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Print a running process's health checks; exit 0 healthy, 1 warning, 2 critical or
    /// unreachable (for cron and probes).
    ///
    /// Example: tradewatch health --url http://127.0.0.1:9471 || page-someone
    Health {
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Run everything on one machine: exporter, rule pack, notifier writing emails as .eml
    /// files, and a simulated trading engine that plays scripted incidents (with
    /// --engine-only, only the engine, against an exporter at --url).
    ///
    /// Example: tradewatch demo --duration 2m
    Demo(DemoArgs),
    /// Work with the notifier's Alertmanager configuration.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

/// `alerts` commands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// A table of pending and firing alerts, most severe first (colour on a terminal only).
    ///
    /// Example: tradewatch alerts status --url http://127.0.0.1:9471
    Status {
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Follow the alert log: transitions and notification outcomes as they happen.
    ///
    /// Example: tradewatch alerts tail --since 2026-11-23T09:30:00Z
    Tail {
        /// Start from this time (RFC 3339); default the last hour.
        #[arg(long)]
        since: Option<String>,
        /// Print the log's JSON lines as they are.
        #[arg(long)]
        json: bool,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
}

/// `outbox` commands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List outbox items (dead ones by default).
    ///
    /// Example: tradewatch outbox list --state pending
    List {
        /// pending, delivered or dead.
        #[arg(long, default_value = "dead")]
        state: String,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Send dead items again (needs the admin token when one is set).
    ///
    /// Example: tradewatch outbox retry 42 43
    Retry {
        /// Item ids, from `outbox list`.
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
}

/// `silence` commands.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts matching every MATCHER (amtool's syntax: `desk=fx`,
    /// `alertname=~"Slow.*"`, `{a="b",c!="d"}`; a first argument that is not a matcher is the
    /// alert name); prints the new silence's id.
    ///
    /// Example: tradewatch silence add --duration 2h --comment 'venue maintenance' venue=xnas
    Add {
        /// How long, from now (`1h`, `30m`).
        #[arg(long, conflicts_with = "end")]
        duration: Option<PromDuration>,
        /// When it ends instead: an RFC 3339 time.
        #[arg(long)]
        end: Option<String>,
        /// Who silences (default: $USER).
        #[arg(long)]
        author: Option<String>,
        /// Why.
        #[arg(long)]
        comment: String,
        /// The matchers.
        #[arg(required = true, value_name = "MATCHER")]
        matchers: Vec<String>,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// A table of the active and pending silences (or the expired ones) whose matchers include
    /// every MATCHER given.
    ///
    /// Example: tradewatch silence list venue=xnas
    List {
        /// Show the expired silences instead.
        #[arg(long)]
        expired: bool,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
        /// Matchers the silences must have.
        #[arg(value_name = "MATCHER")]
        matchers: Vec<String>,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
    /// Expire silences now.
    ///
    /// Example: tradewatch silence expire 3f1c…
    Expire {
        /// The silences' ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Where to connect.
        #[command(flatten)]
        connection: crate::client::Connection,
    },
}

/// Options of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run only the simulated engine, sending its events to the exporter at --url.
    #[arg(long)]
    pub engine_only: bool,
    /// The exporter's base URL.
    #[arg(long, env = "TRADEWATCH_URL", default_value = "http://127.0.0.1:9470")]
    pub url: String,
    /// A file holding the exporter's ingest token (default: the TRADEWATCH_TOKEN variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Stop after this much scenario time (`2m`, `90s`); default: run until interrupted.
    #[arg(long)]
    pub duration: Option<PromDuration>,
    /// The scenario's random seed: one seed plays one session.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Play the scenario this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Write the model files the scenario keeps fresh (and the one it lets go stale),
    /// `models/*.json`, under this folder, for a file-freshness collector to watch.
    #[arg(long)]
    pub artifacts_dir: Option<PathBuf>,
    /// The folder of the full demo: its data, rules, routing file, model files and emails
    /// (data and emails start empty each run).
    #[arg(long, default_value = "tradewatch-demo")]
    pub dir: PathBuf,
    /// The full demo's listener.
    #[arg(long, default_value = "127.0.0.1:9470")]
    pub listen: SocketAddr,
}

/// `notify` commands.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// The routing tree.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Send a sample notification through a receiver's real integrations, with its
    /// configured templates, and print each outcome (exit 1 when one fails).
    ///
    /// Example: tradewatch notify test --config /etc/tradewatch/tradewatch.yaml --receiver trader-email
    Test {
        /// The tradewatch configuration whose notifier section names the routing file.
        #[arg(long, env = "TRADEWATCH_CONFIG")]
        config: PathBuf,
        /// The receiver, by its name in the routing file.
        #[arg(long)]
        receiver: String,
    },
    /// Receivers' templates.
    #[command(subcommand)]
    Template(TemplateCommand),
}

/// `notify template` commands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render a receiver's email and webhook templates over a sample alert group, sending
    /// nothing: addresses, subject, headers and both bodies of each email, the body of each
    /// webhook.
    ///
    /// Example: tradewatch notify template render --config tradewatch.yaml --receiver trader-email
    Render {
        /// The tradewatch configuration whose notifier section names the routing file.
        #[arg(long, env = "TRADEWATCH_CONFIG")]
        config: PathBuf,
        /// The receiver, by its name in the routing file.
        #[arg(long)]
        receiver: String,
        /// Render the sample as resolved rather than firing.
        #[arg(long)]
        resolved: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// `notify routes` commands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Print the receivers an alert with the given labels goes to, as `amtool config routes
    /// test` does (exit 1 when --verify.receivers does not match).
    ///
    /// Example: tradewatch notify routes test --config deploy/alertmanager.yml severity=critical
    Test {
        /// An Alertmanager file, or a tradewatch configuration whose notifier section points at
        /// one.
        #[arg(long)]
        config: PathBuf,
        /// Also print the matching branches of the tree.
        #[arg(long)]
        tree: bool,
        /// The receivers expected, comma-separated, in order.
        #[arg(long = "verify.receivers", value_name = "RECEIVERS")]
        verify_receivers: Option<String>,
        /// The alert's labels, `name=value`.
        labels: Vec<String>,
    },
}

/// `rules` commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files as `promtool check rules` does: exit 0 valid, 1 invalid, 3 lint
    /// findings only with --lint-fatal.
    ///
    /// Example: tradewatch rules check rules/*.rules.yml
    Check {
        /// The rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Lint checks: all, duplicate-rules or none (comma-separated).
        #[arg(long, default_value = "duplicate-rules")]
        lint: String,
        /// Make lint findings exit with code 3.
        #[arg(long)]
        lint_fatal: bool,
    },
    /// Run rule unit tests as `promtool test rules` does: exit 0 when every test passes, 1
    /// otherwise.
    ///
    /// Example: tradewatch rules test rules/tests/*.test.yml
    Test {
        /// The unit-test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run only the test groups whose name matches this regular expression (repeatable).
        #[arg(long, value_name = "REGEX")]
        run: Vec<String>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

/// `check` commands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Validate a configuration file (and the rule files and routing file it names); every
    /// problem is printed as file:line:col: message.
    ///
    /// Example: tradewatch check config /etc/tradewatch/tradewatch.yaml
    Config {
        /// The file.
        file: PathBuf,
    },
    /// Validate an exposition read from standard input; exit 0 valid, 1 invalid (every problem
    /// with its line), 3 lint findings only.
    ///
    /// Example: curl -s localhost:9470/metrics | tradewatch check metrics
    Metrics {
        /// The exposition format.
        #[arg(long, value_enum, default_value_t = ExpositionFormat::Openmetrics)]
        format: ExpositionFormat,
        /// Lint checks, as promtool's `check metrics` does them.
        #[arg(long, value_enum, default_value_t = Lint::All)]
        lint: Lint,
    },
}

/// An exposition format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExpositionFormat {
    /// OpenMetrics 1.0 text.
    Openmetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

/// Which lint checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lint {
    /// promtool's lint checks.
    All,
    /// None.
    None,
}

/// `journal` commands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write the events of a time range as a trade journal (CSV or JSON lines) to standard
    /// output, one row per event with its fields flattened.
    ///
    /// Example: tradewatch journal export --from 2026-11-20 --to 2026-11-21 --format csv
    Export(ExportArgs),
}

/// Options of `journal export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Start of the range, inclusive: an RFC 3339 time (2026-11-01T09:30:00Z) or a date
    /// (2026-11-01: its midnight in the time zone).
    #[arg(long)]
    pub from: String,
    /// End of the range, exclusive: an RFC 3339 time, or a date (that whole day included).
    #[arg(long)]
    pub to: String,
    /// Only events of this type (repeat for several).
    #[arg(long = "type", value_name = "TYPE", value_parser = event_types())]
    pub types: Vec<String>,
    /// Only events of this engine (repeat for several).
    #[arg(long = "engine", value_name = "ENGINE")]
    pub engines: Vec<String>,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Configuration file: its data directory and `notifier.timezone`.
    #[arg(long, env = "TRADEWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory, overriding the configuration's.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// IANA time zone of the `ts` column and of dates in --from and --to (America/New_York);
    /// default `notifier.timezone` of the configuration, UTC without one.
    #[arg(long)]
    pub timezone: Option<String>,
}

fn event_types() -> clap::builder::PossibleValuesParser {
    EVENT_TYPES.map(|t| t.as_str()).into()
}
