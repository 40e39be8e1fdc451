//! `jit server`: run the broker (or `--dev`, or `--init-admin NAME`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::domain::token::ExposeSecret;
use crate::error::{CommandError, ExitKind};
use crate::server::broker::{BrokerError, OpenError};
use crate::server::config::{ConfigError, DEFAULT_LISTEN, ServerConfig, check_public_url, default_data_dir};
use crate::server::{Broker, dev, launch_with_listener};
use std::net::SocketAddr;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Config file (TOML): server settings, repos and policy rules
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8420]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The URL clients use to reach this broker [default: http://ADDR]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Try jit on one machine: demo users, repo and policy; writes DIR/dev.json
    #[arg(long, conflicts_with_all = ["config", "init_admin"])]
    pub dev: bool,
    /// Create the first admin NAME on a broker that has none, print its token once, and exit
    #[arg(long, value_name = "NAME")]
    pub init_admin: Option<String>,
    /// Print what the config's repos need created at their hosts (GitHub team
    /// mode's teams, one per level the rules grant, as `gh api` commands), and exit
    #[arg(long, conflicts_with_all = ["dev", "init_admin"])]
    pub host_setup: bool,
    /// Move the one-machine broker's state in DIR (its jit.db, audit log
    /// included and verified) into the empty PostgreSQL database the config
    /// names, and exit
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dev", "init_admin", "host_setup"])]
    pub migrate_from_sqlite: Option<PathBuf>,
    /// With --dev: listen on an address other hosts can reach, although the
    /// demo tokens are public and travel over plain HTTP
    #[arg(long, requires = "dev")]
    pub allow_remote: bool,
}

pub fn cmd_server(args: &ServerArgs) -> Result<(), CommandError> {
    init_logging()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::unexpected(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        if args.dev {
            run_dev(args).await
        } else if let Some(name) = &args.init_admin {
            init_admin(args, name).await
        } else if args.host_setup {
            host_setup(args).await
        } else if let Some(dir) = &args.migrate_from_sqlite {
            migrate_from_sqlite(args, dir).await
        } else {
            run(args).await
        }
    })
}

/// The broker's log on stderr: lines for people, or one JSON object a line
/// for a log pipeline (`JIT_LOG_FORMAT=json`), each carrying the HTTP
/// request's id (`request_id`, also in the API's error answers) when it was
/// written for one.
fn init_logging() -> Result<(), CommandError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JIT_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match std::env::var("JIT_LOG_FORMAT").ok().as_deref() {
        None | Some("" | "text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(CommandError::bad_input(format!("JIT_LOG_FORMAT `{}`: expected text or json", other.escape_default())));
        }
    };
    // A closed stderr loses log lines, never the broker: tracing-subscriber
    // would otherwise report each failed write with `eprintln!`, which panics.
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(crate::ui::color()).try_init()
    };
    Ok(())
}

/// A config the broker cannot read: bad input, and why it matters (also `jit policy check`'s answer).
pub(crate) fn config_error(e: ConfigError) -> CommandError {
    config_error_text(e.to_string())
}

/// `--host-setup`: what each repo's provider needs created at the host.
async fn host_setup(args: &ServerArgs) -> Result<(), CommandError> {
    let config = load_config(args)?;
    let mut problems = 0;
    for provider in config.providers.all() {
        for problem in provider.check_credential().await {
            problems += 1;
            println!("# provider `{}`: {problem}", provider.name());
        }
    }
    let mut any = false;
    for repo in &config.repos {
        let Some(provider) = config.providers.for_repo(repo) else { continue };
        let steps = provider.host_setup(repo, &config.policy.levels_for(&repo.name));
        if steps.is_empty() {
            continue;
        }
        any = true;
        println!("# {} (provider `{}`): a team per level the rules grant, with that permission and no more", repo.name, provider.name());
        for step in steps {
            println!("{step}");
        }
    }
    if !any {
        eprintln!("nothing to create at the hosts: no repo's provider needs it (only GitHub's team mode does)");
    }
    if problems > 0 {
        return Err(CommandError::new(
            ExitKind::HostFailed,
            format!("{problems} problem(s) with the brokers' credentials at their hosts (above)"),
        ));
    }
    Ok(())
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
        config.public_url = Some(check_public_url(url).map_err(|e| CommandError::bad_input(format!("--public-url {e}")))?);
    }
    check_data_dir(&config.data_dir)?;
    Ok(config)
}

/// SQLite takes only UTF-8 file names, so a data directory that is not is
/// refused up front, by name.
fn check_data_dir(dir: &std::path::Path) -> Result<(), CommandError> {
    if dir.to_str().is_none() {
        return Err(CommandError::bad_input(format!("the data directory {} is not valid UTF-8, which SQLite needs", dir.display())));
    }
    Ok(())
}

fn data_dir_error(dir: &std::path::Path, e: std::io::Error) -> CommandError {
    CommandError::bad_input(format!("cannot create the data directory {}: {e}", dir.display()))
        .hint("pass --data-dir a directory this user can create and write")
}

/// A broker that cannot open says why; a config it cannot use is bad input.
fn open_error(e: OpenError) -> CommandError {
    match e {
        OpenError::DataDir { path, source } => data_dir_error(&path, source),
        OpenError::Provider(_) | OpenError::Repos(_) => config_error_text(e.to_string()),
        _ if e.database_damaged() => CommandError::unexpected(e.to_string())
            .hint("the database is damaged or not a jit database; restore it from a backup, or point --data-dir elsewhere"),
        other => CommandError::unexpected(other.to_string()),
    }
}

fn config_error_text(message: String) -> CommandError {
    CommandError::bad_input(message).hint("the broker refuses to start on a config it cannot fully read")
}

fn broker_error(e: BrokerError) -> CommandError {
    match e {
        BrokerError::InvalidInput(m) => CommandError::bad_input(m),
        BrokerError::Forbidden(m) => CommandError::new(ExitKind::NotAllowed, m),
        other => CommandError::unexpected(other.to_string()),
    }
}

async fn open(config: ServerConfig) -> Result<Arc<Broker>, CommandError> {
    Ok(Arc::new(Broker::open(config).await.map_err(open_error)?))
}

/// Connections the kernel may queue before the broker accepts them (capped
/// by `net.core.somaxconn`): a burst of long-polls arriving at once, such as
/// every CI job of a pipeline waiting on one approval, must not overflow the
/// queue while the accept loop catches up (tokio's default is 1024).
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, CommandError> {
    let listen = || {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e: std::io::Error| {
        CommandError::new(ExitKind::Unexpected, format!("cannot listen on {addr}: {e}")).hint("pass --listen with a free address")
    })
}

/// How the broker re-reads its config on SIGHUP: the file it started from,
/// and the command line's overrides (none for the dev broker, whose policy is built in).
type Reread = Box<dyn Fn() -> Result<ServerConfig, CommandError> + Send + Sync>;

async fn serve_until_signal(handle: crate::server::ServerHandle, reread: Option<(Reread, String)>) -> Result<(), CommandError> {
    // SIGHUP re-reads the certificate and key (live connections keep theirs),
    // and the policy and repos; what fails to load is logged and the old kept.
    #[cfg(unix)]
    {
        let tls = handle.tls.clone();
        let broker = handle.broker.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                if let Some(tls) = &tls {
                    match tls.reload() {
                        Ok(()) => tracing::info!(cert = %tls.files().cert.display(), "TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS reload failed; still serving the previous certificate"),
                    }
                }
                if let Some((reread, source)) = &reread {
                    reload_policy(&broker, reread, source).await;
                }
            }
        });
    }
    let stop = handle.shutdown_sender();
    // Installed here, before this task yields, not inside the spawned task: a
    // SIGTERM that came before the task first ran killed the broker outright
    // (seen under load, right after `/healthz` first answered).
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    handle.wait().await.map_err(|e| CommandError::unexpected(format!("server failed: {e}")))
}

/// Re-reads the config and puts its policy in force, saying what happened.
async fn reload_policy(broker: &crate::server::broker::Broker, reread: &Reread, source: &str) {
    let config = match reread() {
        Ok(config) => config,
        Err(e) => {
            return tracing::error!(file = %source, error = %e.message, "config not reloaded: the policy in force is unchanged");
        }
    };
    match broker.reload_policy(config, source).await {
        Ok(r) => {
            if r.providers_differ {
                tracing::warn!(file = %source, "the file's [[provider]] sections differ from the running ones; providers are read at start-up, so restart to apply them");
            }
            if r.changed {
                tracing::info!(file = %source, policy = %r.hash, "policy reloaded");
            } else {
                tracing::info!(file = %source, policy = %r.hash, "policy unchanged");
            }
        }
        Err(e) => tracing::error!(file = %source, error = %e, "config not reloaded: the policy in force is unchanged"),
    }
}

async fn run(args: &ServerArgs) -> Result<(), CommandError> {
    let mut config = load_config(args)?;
    // Bound first, so clone URLs name the real port (`--listen 127.0.0.1:0`).
    let listener = bind(config.listen).await?;
    config.listen = listener.local_addr()?;
    let broker = open(config).await?;
    if broker.admin_count().await.map_err(broker_error)? == 0 {
        tracing::warn!("this broker has no admin yet; create one with `jit server --init-admin NAME` (same --data-dir/--config)");
    }
    if broker.live().policy.rules().is_empty() {
        tracing::warn!("the policy has no rules: every request will be refused (default deny)");
    }
    // The providers' own credentials, checked once in the background: a host
    // that is down at start-up must not keep the broker from serving.
    for provider in broker.config().providers.all().cloned().collect::<Vec<_>>() {
        tokio::spawn(async move {
            for problem in provider.check_credential().await {
                tracing::error!(provider = %provider.name(), "{problem}");
            }
        });
    }
    let handle = launch_with_listener(broker, listener).await?;
    tracing::info!(url = %handle.url(), "jit broker listening");
    // Only a broker started from a file re-reads it.
    let reread = args.config.as_ref().map(|path| {
        let args = args.clone();
        let reread: Reread = Box::new(move || load_config(&args));
        (reread, path.display().to_string())
    });
    serve_until_signal(handle, reread).await
}

async fn run_dev(args: &ServerArgs) -> Result<(), CommandError> {
    let data_dir: PathBuf = match &args.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir().map(|d| d.join("dev")).ok_or_else(|| config_error(ConfigError::NoDataDir))?,
    };
    let listen = args.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    if !listen.ip().is_loopback() && !args.allow_remote {
        return Err(CommandError::bad_input(format!(
            "refusing to serve the dev broker on {listen}: its demo tokens are in dev.json and travel over plain HTTP, so anyone who can reach that address could use them"
        ))
        .hint("listen on loopback (--listen 127.0.0.1:8420), or pass --allow-remote if that is really what you want"));
    }
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let server_url = match &args.public_url {
        Some(url) => check_public_url(url).map_err(|e| CommandError::bad_input(format!("--public-url {e}")))?,
        None => format!("http://{addr}"),
    };
    check_data_dir(&data_dir)?;
    let mut config = dev::dev_config(data_dir, &server_url).map_err(config_error)?;
    config.listen = addr;
    crate::fsutil::create_private_dir(&config.data_dir).map_err(|e| data_dir_error(&config.data_dir, e))?;
    if let Some(dir) = config.gateway_dir() {
        std::fs::create_dir_all(dir)?;
    }
    dev::create_demo_repo(&config).map_err(|e| CommandError::unexpected(format!("cannot create the demo repo: {e}")))?;
    let broker = open(config).await?;
    let dev_json = dev::seed(&broker, &server_url).await.map_err(|e| CommandError::unexpected(e.to_string()))?;
    let handle = launch_with_listener(broker, listener).await?;
    // A closed stdout (`| head -1`) is no reason for a server to stop.
    let _ = writeln!(std::io::stdout(), "{}", dev::next_steps(&server_url, &dev_json));
    serve_until_signal(handle, None).await
}

async fn migrate_from_sqlite(args: &ServerArgs, dir: &std::path::Path) -> Result<(), CommandError> {
    if !dir.join("jit.db").is_file() {
        return Err(CommandError::bad_input(format!("{}: no jit.db here; give the old broker's data directory", dir.display())));
    }
    let config = load_config(args)?;
    let imported = crate::server::broker::import_sqlite(&config, dir).await.map_err(|e| {
        if e.already_there() {
            CommandError::new(ExitKind::NotAllowed, e.to_string()).hint("nothing was written; give an empty database")
        } else {
            open_error(e)
        }
    })?;
    let mut out = std::io::stdout();
    for (table, rows) in &imported.rows {
        let _ = writeln!(out, "{table:<18} {rows:>8} rows");
    }
    let (seq, hash) = &imported.head;
    let _ = writeln!(out, "audit log verified before and after: {seq} events, head {hash}");
    let _ = writeln!(out, "next: run every broker with this config (same audit_key_file); keep {} as the backup", dir.display());
    Ok(())
}

async fn init_admin(args: &ServerArgs, name: &str) -> Result<(), CommandError> {
    let broker = open(load_config(args)?).await?;
    let token = broker.init_admin(name).await.map_err(|e| match e {
        BrokerError::Forbidden(_) => broker_error(e).hint("an existing admin can run `jit admin user add NAME --admin`"),
        other => broker_error(other),
    })?;
    eprintln!("created admin `{name}`; this is their token, shown once:");
    println!("{}", token.expose_secret());
    Ok(())
}
