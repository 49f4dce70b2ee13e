//! The command line (clap definitions only).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ingest::event::EVENT_TYPES;
use crate::ingest::export::ExportFormat;

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
    Exporter(RunArgs),
    /// Validate files without starting anything.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Read the journal of accepted events.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Work with Prometheus rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `rules` commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files as `promtool check rules` does: exit 0 valid, 1 invalid, 3 lint
    /// findings only with --lint-fatal.
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
    /// Validate a configuration file; every problem is printed as file:line:col: message.
    Config {
        /// The file.
        file: PathBuf,
    },
    /// Validate an exposition read from standard input; exit 0 valid, 1 invalid (every problem
    /// with its line), 3 lint findings only.
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
