//! The command line (clap definitions only).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

/// `check` commands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Validate a configuration file; every problem is printed as file:line:col: message.
    Config {
        /// The file.
        file: PathBuf,
    },
}
