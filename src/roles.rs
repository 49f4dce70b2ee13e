//! Starting a role: the data directory and its lock, restore, the listener, and the one
//! shutdown path (stop accepting, drain, snapshot, exit 0).

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

/// The exporter's default listener.
pub const EXPORTER_LISTEN: &str = "127.0.0.1:9470";

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

impl Exporter {
    /// Locks the data directory, restores the registry, binds the listener and starts the
    /// collectors.
    pub async fn start(config: &Config) -> Result<Exporter, RoleError> {
        let tokens = config.server.auth.load_tokens()?;
        let lock = lock(config, "exporter")?;
        let telemetry = Arc::new(Telemetry::new());
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
        let mut collectors = Collectors::new(&config.exporter, trading, telemetry.clone());
        let collected = collectors.registry().clone();
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
        let scheme = if self.listener.is_tls() {
            "https"
        } else {
            "http"
        };
        tracing::info!(url = %format!("{scheme}://{}", self.addr), "Exporter listening.");
        let Exporter {
            listener,
            ingest,
            collectors,
            router,
            _lock,
            ..
        } = self;
        let served = listener
            .serve(router, shutdown, Duration::from_secs(10))
            .await;
        collectors.stop().await;
        tracing::info!("Stopped accepting; writing a snapshot.");
        tokio::task::spawn_blocking(move || ingest.shutdown())
            .await
            .expect("shutdown does not panic");
        served?;
        tracing::info!("Exporter stopped.");
        Ok(())
    }
}
