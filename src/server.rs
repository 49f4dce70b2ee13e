//! The listener: plain TCP or TLS (rustls), one per process, served until the shutdown signal
//! and then drained with a deadline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// The listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the address failed.
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("failed to load TLS {what} {path}: {message}")]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[from] io::Error),
}

/// Installs the process's one rustls crypto provider (ring); harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A bound listener, plain or TLS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Binds `addr`, with TLS when `tls` is set.
    pub async fn bind(addr: SocketAddr, tls: Option<&TlsConfig>) -> Result<Listener, ServerError> {
        let tls = tls.map(load_tls).transpose()?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Listener { tcp, tls })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `router` until `shutdown` resolves, then waits up to `drain` for open requests.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drain: Duration,
    ) -> Result<(), ServerError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let make = router.into_make_service();
        let serving = async move {
            match self.tls {
                None => {
                    axum::serve(self.tcp, make)
                        .with_graceful_shutdown(signal)
                        .await
                }
                Some(acceptor) => {
                    let listener = TlsListener::new(self.tcp, acceptor);
                    axum::serve(listener, make)
                        .with_graceful_shutdown(signal)
                        .await
                }
            }
        };
        let mut stop_rx2 = stop_rx.clone();
        tokio::select! {
            r = serving => Ok(r?),
            () = async move {
                let _ = stop_rx2.wait_for(|s| *s).await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!(deadline = ?drain, "Requests still open at the drain deadline; closing them.");
                Ok(())
            }
        }
    }
}

fn load_tls(tls: &TlsConfig) -> Result<TlsAcceptor, ServerError> {
    let err = |what, path: &Path, message: String| ServerError::Tls {
        what,
        path: path.display().to_string(),
        message,
    };
    let certs = std::fs::read(&tls.cert_file)
        .map_err(|e| err("certificate", &tls.cert_file, e.to_string()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &certs[..])
        .collect::<Result<_, _>>()
        .map_err(|e| err("certificate", &tls.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(
            "certificate",
            &tls.cert_file,
            "no certificate in the file".into(),
        ));
    }
    let key = std::fs::read(&tls.key_file).map_err(|e| err("key", &tls.key_file, e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| err("key", &tls.key_file, e.to_string()))?
        .ok_or_else(|| err("key", &tls.key_file, "no private key in the file".into()))?;
    install_crypto_provider();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err("key", &tls.key_file, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TCP connections and completes TLS handshakes concurrently, so a slow client never
/// holds up the others.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> TlsListener {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed.")
                        }
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out."),
                    }
                });
            }
        });
        TlsListener { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
