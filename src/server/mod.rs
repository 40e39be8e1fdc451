//! The broker: `jit server`. An axum app over a [`Store`], with a reaper task.
//!
//! [`launch_with_listener`] is the embeddable entry point: tests bind
//! `127.0.0.1:0`, launch the real server in-process and drive it over HTTP.

pub mod auth;
pub mod broker;
pub mod config;
pub mod dev;
pub mod error;
pub mod gateway;
pub mod reaper;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use broker::Broker;
pub use config::ServerConfig;

use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// A running broker: its address, and how to stop it.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    reaper: JoinHandle<()>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, stops the reaper.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.server.await.unwrap_or(Ok(()));
        let _ = self.reaper.await;
        served
    }

    /// Waits until the server stops on its own (or is told to elsewhere).
    pub async fn wait(self) -> std::io::Result<()> {
        let served = self.server.await.unwrap_or(Ok(()));
        let _ = self.shutdown.send(true);
        let _ = self.reaper.await;
        served
    }

    pub fn shutdown_sender(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Opens the store named by the config (SQLite under the data dir).
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, StoreError> {
    crate::fsutil::create_private_dir(&config.data_dir)
        .map_err(|e| StoreError::Corrupt(format!("cannot create data dir {}: {e}", config.data_dir.display())))?;
    Ok(Arc::new(SqliteStore::open(&config.database_path()).await?))
}

/// Adds the gateway's bare repos to the known repos, with their clone URLs.
fn register_gateway_repos(config: &mut ServerConfig) -> std::io::Result<Vec<String>> {
    let Some(dir) = &config.gateway_dir else { return Ok(Vec::new()) };
    let names = gateway::discover(dir).map_err(|e| std::io::Error::new(e.kind(), format!("gateway repos_dir {}: {e}", dir.display())))?;
    let base = config.base_url();
    for name in &names {
        crate::domain::repo::validate_name(name).map_err(|e| std::io::Error::other(e.to_string()))?;
        if config.repos.iter().any(|r| r.name == *name) {
            return Err(std::io::Error::other(format!("repo `{name}` is both a [[repo]] and a gateway repo under {}", dir.display())));
        }
        let url =
            crate::domain::repo::CloneUrl::parse(&format!("{base}/git/{name}.git")).map_err(|e| std::io::Error::other(e.to_string()))?;
        config.repos.push(crate::domain::repo::RepoSpec { name: name.clone(), url: Some(url) });
    }
    Ok(names)
}

/// Serves the broker on `listener` until the returned handle is shut down.
pub async fn launch_with_listener(mut config: ServerConfig, store: Arc<dyn Store>, listener: TcpListener) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    config.listen = addr;
    let gateway_repos = register_gateway_repos(&mut config)?;
    let broker = Arc::new(Broker::new(store, config, gateway_repos));
    let (shutdown, rx) = watch::channel(false);
    let reaper = tokio::spawn(reaper::run(broker.clone(), rx.clone()));
    let app = routes::router(broker.clone());
    let mut stop = rx;
    let closer = broker.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
                closer.close();
            })
            .await
    });
    Ok(ServerHandle { addr, broker, shutdown, server, reaper })
}
