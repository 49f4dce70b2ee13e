//! Starting a role: the data directory and its lock, restore, the listener, and the one
//! shutdown path (stop accepting, drain, snapshot, exit 0). `exporter`, `sidecar` and `run`
//! (both in one process on one listener, with the in-process data path).

pub mod sidecar;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{self, AppState};
use crate::config::{Config, ConfigError};
use crate::exporter::Registry;
use crate::exporter::collectors::Collectors;
use crate::ingest::{Ingest, StartError};
use crate::server::{Listener, ServerError};
use crate::telemetry::Telemetry;

/// The exporter's default listener (also `run`'s and `demo`'s).
pub const EXPORTER_LISTEN: &str = "127.0.0.1:9470";

/// The sidecar's default listener.
pub const SIDECAR_LISTEN: &str = "127.0.0.1:9471";

/// A role could not start or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The configuration or a secret it names.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be used.
    #[error("failed to use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the role's lock.
    #[error("another tradewatch {role} holds {path}; one {role} per data directory")]
    Locked {
        /// The role.
        role: &'static str,
        /// The lock file.
        path: PathBuf,
    },
    /// Restoring state failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The listener.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// Rule files or the data source they read.
    #[error("{message}")]
    Rules {
        /// Every problem, one a line.
        message: String,
    },
    /// The notifier's routing file, templates or receivers.
    #[error("{message}")]
    Notifier {
        /// What is wrong.
        message: String,
    },
    /// `state.db`.
    #[error("{message}")]
    State {
        /// What failed.
        message: String,
    },
}

/// An exporter ready to serve: restored, locked, bound.
pub struct Exporter {
    /// Its listener's address.
    pub addr: SocketAddr,
    listener: Listener,
    ingest: Arc<Ingest>,
    collectors: Collectors,
    router: axum::Router,
    _lock: std::fs::File,
}

fn lock(config: &Config, role: &'static str) -> Result<std::fs::File, RoleError> {
    let dir = &config.storage.data_dir;
    let data_dir_err = |source| RoleError::DataDir {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(data_dir_err)?;
    let path = dir.join(format!("{role}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(data_dir_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RoleError::Locked { role, path }),
        Err(std::fs::TryLockError::Error(e)) => Err(data_dir_err(e)),
    }
}

/// The exporter's parts: the restored ingest pipeline and the collectors.
struct ExporterParts {
    ingest: Arc<Ingest>,
    collectors: Collectors,
    collected: Arc<Registry>,
}

impl ExporterParts {
    async fn start(
        config: &Config,
        telemetry: &Arc<Telemetry>,
    ) -> Result<ExporterParts, RoleError> {
        let limits = &config.exporter.limits;
        let registry = Arc::new(Registry::with_limits(
            limits.max_series_per_family,
            limits.max_series_total,
        ));
        let (ingest, recovery) = {
            let config = config.clone();
            let telemetry = telemetry.clone();
            tokio::task::spawn_blocking(move || Ingest::start(&config, registry, telemetry))
                .await
                .expect("restore does not panic")?
        };
        tracing::info!(
            snapshot_series = recovery.snapshot_series,
            replayed = recovery.replayed,
            ids = recovery.ids,
            took_ms = recovery.took.as_millis() as u64,
            "Registry restored."
        );
        let ingest = Arc::new(ingest);
        let trading = Some(ingest.registry().clone());
        let collectors = Collectors::new(&config.exporter, trading, telemetry.clone());
        let collected = collectors.registry().clone();
        Ok(ExporterParts {
            ingest,
            collectors,
            collected,
        })
    }

    async fn stop(self) {
        self.collectors.stop().await;
        tracing::info!("Stopped accepting; writing a snapshot.");
        let ingest = self.ingest;
        tokio::task::spawn_blocking(move || ingest.shutdown())
            .await
            .expect("shutdown does not panic");
    }
}

fn scheme(listener: &Listener) -> &'static str {
    if listener.is_tls() { "https" } else { "http" }
}

/// The URL people reach the process at: `notifier.external_url`, else the listener's.
fn external_url(config: &Config, listener: &Listener, addr: SocketAddr) -> String {
    config
        .notifier
        .external_url
        .clone()
        .unwrap_or_else(|| format!("{}://{addr}", scheme(listener)))
}

impl Exporter {
    /// Locks the data directory, restores the registry, binds the listener and starts the
    /// collectors.
    pub async fn start(config: &Config) -> Result<Exporter, RoleError> {
        let tokens = config.server.auth.load_tokens()?;
        let lock = lock(config, "exporter")?;
        let telemetry = Arc::new(Telemetry::new());
        let ExporterParts {
            ingest,
            mut collectors,
            collected,
        } = ExporterParts::start(config, &telemetry).await?;
        let state = AppState::exporter(config, ingest.clone(), collected, telemetry, tokens);
        let addr = config
            .server
            .listen
            .unwrap_or_else(|| EXPORTER_LISTEN.parse().expect("valid default"));
        let listener = Listener::bind(addr, config.server.tls.as_ref()).await?;
        let addr = listener.local_addr().map_err(ServerError::Serve)?;
        collectors.start();
        Ok(Exporter {
            addr,
            listener,
            ingest,
            collectors,
            router: api::router(state),
            _lock: lock,
        })
    }

    /// The ingest pipeline.
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.ingest
    }

    /// Serves until `shutdown`, drains, stops the collectors, then lets the journal finish and
    /// snapshot.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RoleError> {
        tracing::info!(url = %format!("{}://{}", scheme(&self.listener), self.addr), "Exporter listening.");
        let Exporter {
            listener,
            ingest,
            collectors,
            router,
            _lock,
            ..
        } = self;
        let collected = collectors.registry().clone();
        let served = listener
            .serve(router, shutdown, Duration::from_secs(10))
            .await;
        ExporterParts {
            ingest,
            collectors,
            collected,
        }
        .stop()
        .await;
        served?;
        tracing::info!("Exporter stopped.");
        Ok(())
    }
}

/// A sidecar ready to serve: rules loaded, alert states restored, data source running.
pub struct Sidecar {
    /// Its listener's address.
    pub addr: SocketAddr,
    listener: Listener,
    parts: sidecar::SidecarParts,
    router: axum::Router,
    reloads: Reloads,
    _lock: std::fs::File,
}

/// What a role needs to reload: the running configuration (for its file and the command-line
/// overrides), the external URL, the requests of `POST /-/reload`, and the self-metrics.
struct Reloads {
    config: Config,
    external_url: String,
    requests: tokio::sync::mpsc::Receiver<api::ReloadRequest>,
    telemetry: Arc<Telemetry>,
    /// The routing configuration `/api/v2/status` shows, replaced by each reload.
    shown: Option<api::alertmanager::ShownConfig>,
}

impl Reloads {
    fn new(
        config: &Config,
        external_url: &str,
        telemetry: Arc<Telemetry>,
    ) -> (Reloads, tokio::sync::mpsc::Sender<api::ReloadRequest>) {
        let (tx, requests) = tokio::sync::mpsc::channel(4);
        (
            Reloads {
                config: config.clone(),
                external_url: external_url.to_owned(),
                requests,
                telemetry,
                shown: None,
            },
            tx,
        )
    }

    /// Reads the configuration file again (the command-line overrides of listener and data
    /// directory still apply) and hands it to `parts`; records the outcome.
    async fn reload(&mut self, parts: &mut sidecar::SidecarParts) -> Result<(), String> {
        let loaded = match &self.config.path {
            Some(path) => Config::load(path).map_err(|e| e.to_string()),
            None => Ok(Config::bundled()),
        };
        let result = match loaded {
            Ok(mut config) => {
                config.server.listen = self.config.server.listen;
                config
                    .storage
                    .data_dir
                    .clone_from(&self.config.storage.data_dir);
                match parts.reload(&config, &self.external_url).await {
                    Ok(()) => {
                        if let Some(shown) = &self.shown {
                            shown.update(&config);
                        }
                        self.config = config;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e),
        };
        let now = crate::rules::schedule::now_ms() as f64 / 1000.0;
        self.telemetry.config_loaded(result.is_ok(), now);
        if let Err(e) = &result {
            tracing::error!(error = %e, "Reload refused; the running configuration stays.");
        }
        result
    }

    /// Serves `served` to its end, reloading `parts` at each `POST /-/reload` and SIGHUP.
    async fn serve(
        &mut self,
        parts: &mut sidecar::SidecarParts,
        served: impl std::future::Future<Output = Result<(), ServerError>>,
    ) -> Result<(), ServerError> {
        tokio::pin!(served);
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = &mut served => return result,
                Some(reply) = self.requests.recv() => {
                    let result = self.reload(parts).await;
                    let _ = reply.send(result);
                }
                _ = hup => {
                    tracing::info!("SIGHUP: reloading the configuration.");
                    let _ = self.reload(parts).await;
                }
            }
        }
    }
}

impl Sidecar {
    /// Locks the data directory, loads the rules, restores alert states, binds the listener and
    /// starts scraping and evaluating.
    pub async fn start(config: &Config) -> Result<Sidecar, RoleError> {
        let tokens = config.server.auth.load_tokens()?;
        let lock = lock(config, "sidecar")?;
        let telemetry = Arc::new(Telemetry::new());
        let addr = config
            .server
            .listen
            .unwrap_or_else(|| SIDECAR_LISTEN.parse().expect("valid default"));
        let listener = Listener::bind(addr, config.server.tls.as_ref()).await?;
        let addr = listener.local_addr().map_err(ServerError::Serve)?;
        let url = external_url(config, &listener, addr);
        let source = sidecar::DataSource::configured(config);
        let scrapes = matches!(source, sidecar::DataSource::Scrape);
        let parts = sidecar::SidecarParts::start(config, &url, telemetry.clone(), source).await?;
        telemetry.config_loaded(true, crate::rules::schedule::now_ms() as f64 / 1000.0);
        let (mut reloads, reload_tx) = Reloads::new(config, &url, telemetry.clone());
        let mut state = AppState::new(config, telemetry, tokens);
        state.reload = Some(reload_tx);
        state.health.add(api::health::SidecarHealth {
            rules: parts.rules.clone(),
            scrapes,
            notifier: parts.notifier.clone(),
        });
        state.sidecar = Some(api::sidecar::SidecarApi {
            rules: parts.rules.clone(),
            store: parts.store.clone(),
            notifier: parts.notifier.clone(),
            log: parts.log.clone(),
        });
        state.notifier =
            (parts.notifier.clone()).map(|n| api::alertmanager::AlertmanagerApi::new(n, config));
        reloads.shown = state
            .notifier
            .as_ref()
            .map(api::alertmanager::AlertmanagerApi::shown_config);
        Ok(Sidecar {
            addr,
            listener,
            parts,
            router: api::router(Arc::new(state)),
            reloads,
            _lock: lock,
        })
    }

    /// The rule layer.
    pub fn rules(&self) -> &crate::rules::RulesHandle {
        &self.parts.rules
    }

    /// Serves until `shutdown`, then stops scraping and evaluating.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RoleError> {
        tracing::info!(url = %format!("{}://{}", scheme(&self.listener), self.addr), "Sidecar listening.");
        let Sidecar {
            listener,
            mut parts,
            router,
            mut reloads,
            _lock,
            ..
        } = self;
        let served = reloads
            .serve(
                &mut parts,
                listener.serve(router, shutdown, Duration::from_secs(10)),
            )
            .await;
        parts.stop().await;
        served?;
        tracing::info!("Sidecar stopped.");
        Ok(())
    }
}

/// Exporter and sidecar in one process on one listener: the sidecar reads the registries
/// in-process and an accepted batch that changes a metric a rule reads evaluates its group at
/// once.
pub struct Run {
    /// Its listener's address.
    pub addr: SocketAddr,
    listener: Listener,
    exporter: ExporterParts,
    sidecar: sidecar::SidecarParts,
    router: axum::Router,
    telemetry: Arc<Telemetry>,
    reloads: Reloads,
    _locks: (std::fs::File, std::fs::File),
}

impl Run {
    /// Starts both roles.
    pub async fn start(config: &Config) -> Result<Run, RoleError> {
        let tokens = config.server.auth.load_tokens()?;
        let exporter_lock = lock(config, "exporter")?;
        let sidecar_lock = lock(config, "sidecar")?;
        let telemetry = Arc::new(Telemetry::new());
        let mut exporter = ExporterParts::start(config, &telemetry).await?;
        let addr = config
            .server
            .listen
            .unwrap_or_else(|| EXPORTER_LISTEN.parse().expect("valid default"));
        let listener = Listener::bind(addr, config.server.tls.as_ref()).await?;
        let addr = listener.local_addr().map_err(ServerError::Serve)?;
        let url = external_url(config, &listener, addr);
        let instance = config
            .sidecar
            .self_
            .instance
            .clone()
            .unwrap_or_else(|| addr.to_string());
        let source = sidecar::DataSource::Local {
            registries: vec![
                exporter.ingest.registry().clone(),
                exporter.collected.clone(),
                telemetry.self_registry(),
            ],
            changes: exporter.ingest.changes(),
            instance,
        };
        let sidecar = sidecar::SidecarParts::start(config, &url, telemetry.clone(), source).await?;
        telemetry.config_loaded(true, crate::rules::schedule::now_ms() as f64 / 1000.0);
        let (mut reloads, reload_tx) = Reloads::new(config, &url, telemetry.clone());
        let state = AppState::exporter(
            config,
            exporter.ingest.clone(),
            exporter.collected.clone(),
            telemetry.clone(),
            tokens,
        );
        let mut state = Arc::try_unwrap(state).unwrap_or_else(|_| unreachable!("not yet shared"));
        state.reload = Some(reload_tx);
        state.health.add(api::health::SidecarHealth {
            rules: sidecar.rules.clone(),
            scrapes: false,
            notifier: sidecar.notifier.clone(),
        });
        state.sidecar = Some(api::sidecar::SidecarApi {
            rules: sidecar.rules.clone(),
            store: sidecar.store.clone(),
            notifier: sidecar.notifier.clone(),
            log: sidecar.log.clone(),
        });
        state.notifier =
            (sidecar.notifier.clone()).map(|n| api::alertmanager::AlertmanagerApi::new(n, config));
        reloads.shown = state
            .notifier
            .as_ref()
            .map(api::alertmanager::AlertmanagerApi::shown_config);
        exporter.collectors.start();
        Ok(Run {
            addr,
            listener,
            exporter,
            sidecar,
            router: api::router(Arc::new(state)),
            telemetry,
            reloads,
            _locks: (exporter_lock, sidecar_lock),
        })
    }

    /// The ingest pipeline.
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.exporter.ingest
    }

    /// The rule layer.
    pub fn rules(&self) -> &crate::rules::RulesHandle {
        &self.sidecar.rules
    }

    /// The process's own metrics.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Serves until `shutdown`, then stops evaluating, drains the exporter and snapshots.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RoleError> {
        tracing::info!(url = %format!("{}://{}", scheme(&self.listener), self.addr), "tradewatch listening.");
        let Run {
            listener,
            exporter,
            mut sidecar,
            router,
            mut reloads,
            _locks,
            ..
        } = self;
        let served = reloads
            .serve(
                &mut sidecar,
                listener.serve(router, shutdown, Duration::from_secs(10)),
            )
            .await;
        sidecar.stop().await;
        exporter.stop().await;
        served?;
        tracing::info!("tradewatch stopped.");
        Ok(())
    }
}
