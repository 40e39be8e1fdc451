//! The broker: `jit server`. An axum app over the [`Broker`] service, with a reaper task.
//!
//! [`launch_with_listener`] is the embeddable entry point: tests open a
//! [`Broker`] on a temp dir, bind `127.0.0.1:0`, launch the real server
//! in-process and drive it over HTTP.

pub mod archive;
pub mod auth;
pub mod broker;
pub mod config;
pub mod dev;
pub mod error;
pub mod gateway;
pub mod handlers;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod openapi;
pub mod reaper;
pub mod request_id;
pub mod router;
pub mod sealing;
pub mod tls;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use broker::Broker;
pub use config::ServerConfig;

/// A running broker: its address, and how to stop it.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    /// Present when serving HTTPS; `reload` re-reads the certificate files.
    pub tls: Option<tls::TlsAcceptor>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    reaper: JoinHandle<()>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, stops the reaper, closes the store.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.server.await.unwrap_or(Ok(()));
        let _ = self.reaper.await;
        self.broker.close_store().await;
        served
    }

    /// Waits until the server stops on its own (or is told to elsewhere).
    pub async fn wait(self) -> std::io::Result<()> {
        let served = self.server.await.unwrap_or(Ok(()));
        let _ = self.shutdown.send(true);
        let _ = self.reaper.await;
        self.broker.close_store().await;
        served
    }

    pub fn shutdown_sender(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Serves `broker` on `listener` until the returned handle is shut down.
pub async fn launch_with_listener(broker: Arc<Broker>, listener: TcpListener) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let tls = match &broker.config().tls {
        Some(files) => Some(tls::TlsAcceptor::new(files).map_err(std::io::Error::other)?),
        None => None,
    };
    let (shutdown, rx) = watch::channel(false);
    let reaper = tokio::spawn(reaper::run(broker.clone(), rx.clone()));
    let app = router::router(broker.clone());
    let closer = broker.clone();
    let limits = broker.config().limits.clone();
    let server = tokio::spawn(listener::serve(listener, app, limits, tls.clone(), rx, move || closer.close()));
    Ok(ServerHandle { addr, broker, tls, shutdown, server, reaper })
}
