//! `jit login [--server URL]`: signs in, then keeps the broker's token in the
//! keychain. A broker with an identity provider signs people in with the
//! device authorization grant (the person confirms a code at the IdP, in any
//! browser); `--token`, or a broker without one, takes a token an admin issued.

use std::io::Read;

use crate::client::Client;
use crate::domain::token::{ExposeSecret, SecretString};
use crate::error::{CommandError, ExitKind};
use crate::keychain::Keychain;
use crate::session::{self, StoredLogin};
use crate::ui;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    Device,
    Browser,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The broker's URL (default: $JIT_SERVER)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// A CA certificate (PEM) to trust for this broker beyond the system's
    /// roots; remembered with the login (default: $JIT_CA_FILE)
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Sign in with a token an admin issued (service accounts, automation),
    /// read from the terminal or stdin, even where the broker signs people
    /// in through an identity provider
    #[arg(long)]
    pub token: bool,
    /// Do not open a browser at the identity provider's page; print its address only
    #[arg(long)]
    pub no_browser: bool,
    /// How to sign in at the identity provider: `device` (a code to enter,
    /// in any browser on any device) or `browser` (a page this machine's
    /// browser opens, which returns to the broker)
    #[arg(long, value_enum, default_value_t = Flow::Device)]
    pub flow: Flow,
    #[command(flatten)]
    pub json: JsonFlag,
}

fn read_token(server: &str) -> Result<SecretString, CommandError> {
    let token = if ui::can_prompt() {
        dialoguer::Password::new()
            .with_prompt(format!("Token for {server}"))
            .interact()
            .map_err(|e| CommandError::unexpected(format!("cannot read the token: {e}")))?
    } else {
        let mut input = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .map_err(|e| CommandError::bad_input(format!("cannot read the token from stdin: {e}")))?;
        input
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CommandError::bad_input("no token given")
            .hint("type or paste the token an admin gave you, or pipe it: `jit login --server URL < token-file`"));
    }
    if token.contains(char::is_whitespace) {
        return Err(CommandError::bad_input("the token contains whitespace; paste just the token"));
    }
    Ok(SecretString::from(token))
}

pub async fn cmd_login(args: &LoginArgs) -> Result<(), CommandError> {
    let server = args
        .server
        .clone()
        .or_else(|| std::env::var("JIT_SERVER").ok().filter(|s| !s.trim().is_empty()))
        .ok_or_else(|| CommandError::bad_input("no broker URL").hint("pass --server URL (or set JIT_SERVER)"))?;
    let server = server.trim().trim_end_matches('/').to_string();
    let ca_file = args.ca_file.clone().or_else(|| std::env::var_os("JIT_CA_FILE").filter(|v| !v.is_empty()).map(Into::into));
    let ca_file = ca_file.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    // Check the URL and open the keychain before asking for anything.
    let anonymous = Client::new(&server, None, ca_file.as_deref())?;
    let keychain = Keychain::open()?;
    let through_idp = !args.token && signs_in_through_idp(&anonymous).await?;
    let (token, user, signed_in) = if through_idp {
        sign_in_at_idp(&anonymous, args).await?
    } else {
        let token = read_token(&server)?;
        let who = Client::new(&server, Some(token.clone()), ca_file.as_deref())?.whoami_session().await.map_err(|e| {
            let err = CommandError::from(e);
            if err.kind == ExitKind::NotAllowed {
                CommandError::new(ExitKind::NotAllowed, format!("{server} refused this token: {}", err.message))
            } else {
                err
            }
        })?;
        (token, who.user, who.session)
    };
    let previous = session::load(&keychain).ok().flatten();
    let fingerprint = crate::domain::token::fingerprint(token.expose_secret());
    session::save(&keychain, &StoredLogin { server: server.clone(), token, ca_file, user: Some(user.name.clone()) })?;
    // One stored login serves every shell of this OS user: say whose this
    // one replaces, and keep the cache to the right person's credentials.
    let replaced =
        previous.as_ref().filter(|p| !(session::same_server(&p.server, &server) && p.user.as_deref() == Some(user.name.as_str())));
    let old = previous.as_ref().map(|p| crate::domain::token::fingerprint(p.token.expose_secret()));
    let removed = match replaced {
        Some(_) => crate::credcache::forget_login(&keychain, old.as_deref())?,
        None => 0,
    };
    crate::credcache::adopt_login(fingerprint, old.filter(|_| replaced.is_none()))?;
    if let Some(warning) = keychain.file_warning() {
        eprintln!("{warning}");
    }
    let replaced_json = replaced.map(|p| serde_json::json!({"server": p.server, "user": p.user}));
    if args.json.json {
        return crate::output::print_json(
            &serde_json::json!({"server": server, "user": user, "session": signed_in, "keychain": keychain.backend().name(), "replaced": replaced_json}),
        );
    }
    if let Some(p) = replaced {
        let who = p.user.as_deref().map(|u| format!("{u}'s login")).unwrap_or_else(|| "the login".to_string());
        eprintln!(
            "replacing {who} at {}: one login serves every shell of this OS user; {removed} cached git credential(s) of that login removed",
            p.server
        );
    }
    let how = match &signed_in {
        Some(s) => format!(
            " through {} (session until {}; its token kept in the {} keychain)",
            s.issuer,
            ui::local_time(s.ends_at),
            keychain.backend().name()
        ),
        None => format!(" (token kept in the {} keychain)", keychain.backend().name()),
    };
    eprintln!("{}", ui::success(&format!("Logged in to {server} as {}{how}", user.name)));
    Ok(())
}

/// Whether the broker signs people in through an identity provider (a broker
/// from before sign-ins answers 404: tokens only).
async fn signs_in_through_idp(client: &Client) -> Result<bool, CommandError> {
    match client.auth_methods().await {
        Ok(methods) => Ok(methods.methods.iter().any(|m| m == "oidc")),
        Err(crate::client::ClientError::Api { status: 404, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A sign-in at the identity provider, through the broker: the device
/// authorization grant (RFC 8628: the person confirms a code at the IdP) or
/// the browser's authorization-code flow (the IdP returns the browser to the
/// broker); either way this waits, polling as slowly as asked.
async fn sign_in_at_idp(
    client: &Client,
    args: &LoginArgs,
) -> Result<(SecretString, crate::api::User, Option<crate::api::SessionInfo>), CommandError> {
    let (login, page, expires_in, mut interval) = match args.flow {
        Flow::Device => {
            let start = client.start_device_sign_in().await?;
            eprintln!("To sign in, open {} and enter the code {}", start.verification_uri, start.user_code);
            if let Some(complete) = &start.verification_uri_complete {
                eprintln!("(or open {complete}, which carries the code)");
            }
            let page = start.verification_uri_complete.unwrap_or(start.verification_uri);
            (start.login, page, start.expires_in, start.interval)
        }
        Flow::Browser => {
            let start = client.start_browser_sign_in().await?;
            eprintln!("To sign in, open {}", start.url);
            (start.login, start.url, start.expires_in, 1)
        }
    };
    if !args.no_browser && ui::can_prompt() {
        open_browser(&page);
    }
    let spinner = ui::spinner("Waiting for you to sign in at the identity provider (Ctrl-C to stop)".to_string());
    let done = |spinner: &Option<indicatif::ProgressBar>| {
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(expires_in.clamp(1, 3600));
    interval = interval.clamp(1, 60);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
        let status = match args.flow {
            Flow::Device => client.finish_device_sign_in(&login).await,
            Flow::Browser => client.finish_browser_sign_in(&login).await,
        }
        .inspect_err(|_| done(&spinner))?;
        match status.status.as_str() {
            "signed_in" => {
                done(&spinner);
                let missing = || CommandError::unexpected("the broker's sign-in answer lacks the token or the user");
                return Ok((status.token.ok_or_else(missing)?, status.user.ok_or_else(missing)?, status.session));
            }
            // RFC 8628 §3.5: every slow_down adds five seconds.
            "slow_down" => interval = (interval + 5).min(60),
            _ => {}
        }
        if std::time::Instant::now() >= deadline {
            done(&spinner);
            return Err(CommandError::new(ExitKind::TimedOut, "the sign-in expired before it finished").hint("run `jit login` again"));
        }
    }
}

/// Opens `url` in the desktop's browser, if there is a desktop; failing is fine (the address was printed).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        Some("open")
    } else if cfg!(windows) {
        None
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some("xdg-open")
    } else {
        None
    };
    if let Some(opener) = opener {
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
