//! `jit server`: run the broker (or `--dev`, or `--init-admin NAME`).

use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::cli::ServerArgs;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::token::{TOKEN_PREFIX, TokenHash, generate};
use crate::error::{CommandError, ExitKind};
use crate::server::config::{ConfigError, DEFAULT_LISTEN, ServerConfig, default_data_dir};
use crate::server::{dev, launch_with_listener, open_store};
use crate::store::UserRecord;

pub fn cmd_server(args: &ServerArgs) -> Result<(), CommandError> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::unexpected(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        if args.dev {
            run_dev(args).await
        } else if let Some(name) = &args.init_admin {
            init_admin(args, name).await
        } else {
            run(args).await
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JIT_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(crate::ui::color()).try_init();
}

fn config_error(e: ConfigError) -> CommandError {
    CommandError::bad_input(e.to_string()).hint("the broker refuses to start on a config it cannot fully read")
}

fn load_config(args: &ServerArgs) -> Result<ServerConfig, CommandError> {
    let default_dir = args.data_dir.clone().or_else(default_data_dir);
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path, default_dir).map_err(config_error)?,
        None => ServerConfig::new(default_dir.ok_or_else(|| config_error(ConfigError::NoDataDir))?),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = &args.public_url {
        config.public_url = Some(url.trim_end_matches('/').to_string());
    }
    Ok(config)
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, CommandError> {
    TcpListener::bind(addr).await.map_err(|e| {
        CommandError::new(ExitKind::Unexpected, format!("cannot listen on {addr}: {e}")).hint("pass --listen with a free address")
    })
}

async fn serve_until_signal(handle: crate::server::ServerHandle) -> Result<(), CommandError> {
    let stop = handle.shutdown_sender();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    handle.wait().await.map_err(|e| CommandError::unexpected(format!("server failed: {e}")))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(args: &ServerArgs) -> Result<(), CommandError> {
    let config = load_config(args)?;
    let store = open_store(&config).await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    if store.admin_count().await.map_err(|e| CommandError::unexpected(e.to_string()))? == 0 {
        tracing::warn!("this broker has no admin yet; create one with `jit server --init-admin NAME` (same --data-dir/--config)");
    }
    if config.policy.rules().is_empty() {
        tracing::warn!("the policy has no rules: every request will be refused (default deny)");
    }
    let listener = bind(config.listen).await?;
    let handle = launch_with_listener(config, store, listener).await?;
    tracing::info!(url = %handle.url(), "jit broker listening");
    serve_until_signal(handle).await
}

async fn run_dev(args: &ServerArgs) -> Result<(), CommandError> {
    let data_dir: PathBuf = match &args.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir().map(|d| d.join("dev")).ok_or_else(|| config_error(ConfigError::NoDataDir))?,
    };
    let listener = bind(args.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"))).await?;
    let addr = listener.local_addr()?;
    let server_url = args.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let mut config = dev::dev_config(data_dir, &server_url).map_err(config_error)?;
    config.listen = addr;
    let store = open_store(&config).await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    if let Some(dir) = &config.gateway_dir {
        std::fs::create_dir_all(dir)?;
    }
    dev::create_demo_repo(&config).map_err(|e| CommandError::unexpected(format!("cannot create the demo repo: {e}")))?;
    let handle = launch_with_listener(config, store.clone(), listener).await?;
    let dev_json =
        dev::seed(store.as_ref(), &handle.broker.config, &server_url).await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    println!("{}", dev::next_steps(&server_url, &dev_json));
    serve_until_signal(handle).await
}

async fn init_admin(args: &ServerArgs, name: &str) -> Result<(), CommandError> {
    let config = load_config(args)?;
    let store = open_store(&config).await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    let admins = store.admin_count().await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    if admins > 0 {
        return Err(CommandError::new(ExitKind::NotAllowed, "this broker already has an admin; --init-admin only bootstraps an empty one")
            .hint("an existing admin can run `jit admin user add NAME --admin`"));
    }
    let token = generate(TOKEN_PREFIX);
    let user = UserRecord { name: name.to_string(), groups: Vec::new(), admin: true, created_at: chrono::Utc::now() };
    let mut event = NewEvent::new(crate::server::broker::BROKER_ACTOR, Action::UserAdded);
    event.detail = Some(format!("{name} admin (first admin, --init-admin)"));
    store.add_user(&user, &TokenHash::of(token.expose()), event).await.map_err(|e| CommandError::bad_input(e.to_string()))?;
    eprintln!("created admin `{name}`; this is their token, shown once:");
    println!("{}", token.expose());
    Ok(())
}
