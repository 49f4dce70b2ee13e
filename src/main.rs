//! The `tradewatch` binary: parses the command line, sets up logging and hands over.

use std::process::ExitCode;

use clap::Parser;
use tradewatch::cli::{
    AlertsCommand, CheckCommand, Cli, Command, DemoArgs, ExpositionFormat, JournalCommand, Lint,
    LogFormat, NotifyCommand, OutboxCommand, RoutesCommand, RulesCommand, RunArgs, SilenceCommand,
    TemplateCommand,
};
use tradewatch::config::Config;

/// jemalloc rather than glibc's allocator: the memory a rule evaluation frees stays with the
/// process for reuse a few seconds later (glibc hands the top of its heap back to the system
/// at once and the next evaluation faults it in again, zeroed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        Command::Sidecar(args) => {
            let mut config = load(&args)?;
            if args.config.is_none() && args.listen.is_none() {
                // The bundled listener is the exporter's; a sidecar beside it takes its own.
                config.server.listen = None;
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let sidecar = tradewatch::roles::Sidecar::start(&config).await?;
                sidecar.run(tradewatch::server::shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let config = load(&args)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let run = tradewatch::roles::Run::start(&config).await?;
                run.run(tradewatch::server::shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            expr,
            time,
            timeout,
            json,
            connection,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let out = runtime.block_on(tradewatch::client::query(
                &connection,
                &expr,
                time.as_deref(),
                timeout.as_deref(),
                json,
            ))?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts(AlertsCommand::Status { connection }) => {
            let runtime = tokio::runtime::Runtime::new()?;
            print!(
                "{}",
                runtime.block_on(tradewatch::client::alerts_status(&connection))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Silence(command) => silence(command),
        Command::Alerts(AlertsCommand::Tail {
            since,
            json,
            connection,
        }) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(tradewatch::client::alerts_tail(
                &connection,
                since.as_deref(),
                json,
                std::io::stdout().lock(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(OutboxCommand::List { state, connection }) => {
            let runtime = tokio::runtime::Runtime::new()?;
            print!(
                "{}",
                runtime.block_on(tradewatch::client::outbox_list(&connection, &state))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(OutboxCommand::Retry { ids, connection }) => {
            let runtime = tokio::runtime::Runtime::new()?;
            print!(
                "{}",
                runtime.block_on(tradewatch::client::outbox_retry(&connection, &ids))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ack {
            fingerprint,
            group,
            author,
            comment,
            connection,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let target = match (fingerprint, group) {
                (_, Some(key)) => tradewatch::client::AckTarget::Group(key),
                (Some(fp), None) => tradewatch::client::AckTarget::Alert(fp),
                (None, None) => unreachable!("clap requires one"),
            };
            print!(
                "{}",
                runtime.block_on(tradewatch::client::ack(
                    &connection,
                    &target,
                    &author,
                    &comment
                ))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { connection } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let (out, code) = runtime.block_on(tradewatch::client::health(&connection));
            print!("{out}");
            Ok(ExitCode::from(code))
        }
        Command::Check(CheckCommand::Config { file }) => match Config::load(&file) {
            Ok(config) => {
                let (problems, notes) = tradewatch::roles::sidecar::check_references(&config);
                for note in &notes {
                    eprintln!("note: {note}");
                }
                if problems.is_empty() {
                    println!("{}: valid", file.display());
                    Ok(ExitCode::SUCCESS)
                } else {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    Ok(ExitCode::from(1))
                }
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
        Command::Demo(args) => demo(args),
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
        Command::Notify(NotifyCommand::Test { config, receiver }) => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let runtime = tokio::runtime::Runtime::new()?;
            match runtime.block_on(tradewatch::notify::sample::run_test(&config, &receiver)) {
                Ok((report, ok)) => {
                    print!("{report}");
                    Ok(if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Err(e) => {
                    eprintln!("tradewatch: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Notify(NotifyCommand::Template(TemplateCommand::Render {
            config,
            receiver,
            resolved,
            output,
        })) => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let (text, ok) =
                match tradewatch::notify::sample::run_render(&config, &receiver, resolved) {
                    Ok(Ok(text)) => (text, true),
                    Ok(Err(text)) => (text, false),
                    Err(e) => {
                        eprintln!("tradewatch: {e}");
                        return Ok(ExitCode::from(1));
                    }
                };
            match output {
                Some(path) => std::fs::write(&path, &text)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Notify(NotifyCommand::Routes(RoutesCommand::Test {
            config,
            tree,
            verify_receivers,
            labels,
        })) => {
            let am = match tradewatch::notify::config::AlertmanagerConfig::load_any(&config) {
                Ok(am) => am,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            match tradewatch::notify::route::routes_test(
                &am.route,
                &labels,
                tree,
                verify_receivers.as_deref(),
            ) {
                Ok((output, code)) => {
                    print!("{output}");
                    Ok(ExitCode::from(code))
                }
                Err(e) => {
                    eprintln!("tradewatch: error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

fn silence(command: SilenceCommand) -> anyhow::Result<ExitCode> {
    use tradewatch::client::silence;
    let runtime = tokio::runtime::Runtime::new()?;
    match command {
        SilenceCommand::Add {
            duration,
            end,
            author,
            comment,
            matchers,
            connection,
        } => {
            let new = silence::NewSilence::new(
                matchers,
                duration.map(Into::into),
                end.as_deref(),
                author,
                comment,
                chrono::Utc::now(),
            )?;
            println!("{}", runtime.block_on(silence::add(&connection, &new))?);
        }
        SilenceCommand::List {
            expired,
            quiet,
            matchers,
            connection,
        } => print!(
            "{}",
            runtime.block_on(silence::list(&connection, &matchers, expired, quiet))?
        ),
        SilenceCommand::Expire { ids, connection } => {
            runtime.block_on(silence::expire(&connection, &ids))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !args.engine_only {
        let settings = tradewatch::demo::stack::DemoSettings {
            dir: args.dir,
            listen: args.listen,
            seed: args.seed,
            speed: args.speed,
            duration: args.duration.map(Into::into),
        };
        let runtime = tokio::runtime::Runtime::new()?;
        let (summary, _) = runtime.block_on(tradewatch::demo::stack::run(
            settings,
            tradewatch::server::shutdown_signal(),
        ))?;
        return Ok(if summary.rejected == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let token = match &args.token_file {
        Some(path) => Some(tradewatch::demo::driver::read_token_file(path)?),
        None => std::env::var("TRADEWATCH_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    let config = tradewatch::demo::DriverConfig {
        url: args.url,
        token,
        seed: args.seed,
        speed: args.speed,
        duration: args.duration.map(Into::into),
        artifacts_dir: args.artifacts_dir,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let summary = runtime.block_on(tradewatch::demo::run(
        config,
        tradewatch::server::shutdown_signal(),
    ))?;
    println!("{summary}");
    // A rejected event is a bug of the generator: make it visible to scripts.
    Ok(if summary.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
