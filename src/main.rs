//! The `tradewatch` binary: parses the command line, sets up logging and hands over.

use std::process::ExitCode;

use clap::Parser;
use tradewatch::cli::{
    CheckCommand, Cli, Command, ExpositionFormat, JournalCommand, Lint, LogFormat, RulesCommand,
    RunArgs,
};
use tradewatch::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    tradewatch::server::install_crypto_provider();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tradewatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRADEWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load(args: &RunArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::bundled(),
    };
    if let Some(listen) = args.listen {
        config.server.listen = Some(listen);
    }
    if let Some(dir) = &args.data_dir {
        config.storage.data_dir.clone_from(dir);
    }
    Ok(config)
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Exporter(args) => {
            let config = load(&args)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let exporter = tradewatch::roles::Exporter::start(&config).await?;
                exporter.run(tradewatch::server::shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(CheckCommand::Config { file }) => match Config::load(&file) {
            Ok(_) => {
                println!("{}: valid", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Check(CheckCommand::Metrics { format, lint }) => {
            let mut input = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)?;
            let format = match format {
                ExpositionFormat::Openmetrics => tradewatch::exporter::Format::OpenMetrics,
                ExpositionFormat::Text => tradewatch::exporter::Format::Text,
            };
            let report = tradewatch::scrape::check_metrics(&input, format, lint == Lint::All);
            print!("{report}");
            Ok(ExitCode::from(report.exit_code()))
        }
        Command::Journal(JournalCommand::Export(args)) => {
            match tradewatch::ingest::export::run(&args, std::io::stdout().lock()) {
                Err(e) if !e.is_broken_pipe() => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Rules(RulesCommand::Check {
            files,
            lint,
            lint_fatal,
        }) => {
            let lint = tradewatch::rules::Lint::parse(&lint, lint_fatal)?;
            let (report, code) = tradewatch::rules::check_files(&files, lint);
            print!("{report}");
            Ok(ExitCode::from(code))
        }
        Command::Rules(RulesCommand::Test { files, run, junit }) => {
            let run = run
                .iter()
                .map(|r| regex::Regex::new(r))
                .collect::<Result<Vec<_>, _>>()?;
            let report = tradewatch::rules::unittest::test_files(&files, &run);
            report.print();
            if let Some(path) = junit {
                let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string();
                let xml = tradewatch::rules::unittest::junit::junit_xml(&report.suites, &now);
                if let Err(e) = std::fs::write(&path, xml) {
                    eprintln!("failed to write JUnit XML: {e}");
                }
            }
            Ok(ExitCode::from(report.code))
        }
    }
}
