//! `jit server --dev`: a complete broker to try on one machine.
//!
//! Demo users (`alice` a developer; `bob`, `carol` reviewers; `admin`), the
//! demo repo `demo` and a demo policy, all through the same config parser a
//! real deployment uses. Tokens go to `DATA_DIR/dev.json` (mode 0600); on a
//! restart with the same data dir the tokens there stay valid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::broker::{Broker, BrokerError, NewUser};
use super::config::{ConfigError, ServerConfig};
use crate::domain::audit::BROKER_ACTOR;
use crate::domain::token::ExposeSecret;

/// The demo policy, exactly as an operator would write it.
pub const DEV_POLICY: &str = r#"
[gateway]
repos_dir = "{data_dir}/repos"

[[rule]]
name = "demo-read"
repos = ["demo"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "demo-write"
repos = ["demo"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
approvals = 1
reason_required = true
max_duration = "8h"

[[rule]]
name = "demo-admin"
repos = ["demo"]
levels = ["admin"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
approvals = 2
reason_required = true
max_duration = "8h"
"#;

/// Demo users: name, groups, admin.
pub const DEV_USERS: &[(&str, &[&str], bool)] =
    &[("alice", &["developers"], false), ("bob", &["reviewers"], false), ("carol", &["reviewers"], false), ("admin", &[], true)];

/// `dev.json` (mode 0600): what a person or a test needs to drive the dev
/// broker, tokens in the clear on purpose.
#[derive(Serialize, Deserialize)]
pub struct DevFile {
    pub server_url: String,
    pub users: BTreeMap<String, String>,
    pub repos: BTreeMap<String, Option<String>>,
}

/// The config for `--dev`: the demo policy with the server's own URL in it.
pub fn dev_config(data_dir: PathBuf, server_url: &str) -> Result<ServerConfig, ConfigError> {
    let source = DEV_POLICY.replace("{data_dir}", &data_dir.display().to_string().replace('\\', "/"));
    let mut config = ServerConfig::from_toml(&source, Path::new("<dev policy>"), Some(data_dir))?;
    config.public_url = Some(server_url.to_string());
    Ok(config)
}

/// Creates the demo bare repo (`demo.git`, one commit on `main`) unless it exists.
pub fn create_demo_repo(config: &ServerConfig) -> Result<(), git2::Error> {
    let Some(dir) = config.gateway_dir() else { return Ok(()) };
    let path = dir.join("demo.git");
    if path.join("HEAD").exists() {
        return Ok(());
    }
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let repo = git2::Repository::init_opts(&path, &opts)?;
    let readme = repo.blob(b"# demo\n\nA repository guarded by jit. Pushing here needs an approved write grant.\n")?;
    let mut tree = repo.treebuilder(None)?;
    tree.insert("README.md", readme, 0o100644)?;
    let tree = repo.find_tree(tree.write()?)?;
    let sig = git2::Signature::now("jit", "jit@localhost")?;
    repo.commit(Some("refs/heads/main"), &sig, &sig, "Initial commit", &tree, &[])?;
    Ok(())
}

/// Makes sure every demo user exists with a token recorded in `dev.json`,
/// reusing the tokens already there when they still match.
pub async fn seed(broker: &Broker, server_url: &str) -> Result<PathBuf, SeedError> {
    let config = broker.config();
    let path = config.data_dir.join("dev.json");
    let previous: Option<DevFile> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let mut users = BTreeMap::new();
    for (name, groups, admin) in DEV_USERS {
        let known = previous.as_ref().and_then(|p| p.users.get(*name)).cloned();
        let still_valid = match &known {
            Some(token) => broker.authenticate(token).await.is_ok_and(|u| u.name == *name),
            None => false,
        };
        let token = match known {
            Some(token) if still_valid => token,
            _ if broker.user(name).await?.is_some() => {
                broker.rotate_token_as(BROKER_ACTOR, name, Some("dev mode")).await?.1.expose_secret().to_string()
            }
            _ => {
                let new =
                    NewUser { name: name.to_string(), groups: groups.iter().map(|g| g.to_string()).collect(), admin: *admin, email: None };
                broker.create_user(BROKER_ACTOR, new, false, Some("dev mode")).await?.1.expose_secret().to_string()
            }
        };
        users.insert(name.to_string(), token);
    }
    // One file per user too, so the next steps need nothing but a shell.
    let tokens = tokens_dir(&config.data_dir);
    let write = |path: &Path, bytes: &[u8]| {
        crate::fsutil::write_private(path, bytes).map_err(|source| SeedError::Write { path: path.to_path_buf(), source })
    };
    crate::fsutil::create_private_dir(&tokens).map_err(|source| SeedError::Write { path: tokens.clone(), source })?;
    for (name, token) in &users {
        write(&tokens.join(name), format!("{token}\n").as_bytes())?;
    }
    let repos = broker.live().repos.iter().map(|r| (r.name.clone(), r.url.as_ref().map(|u| u.to_string()))).collect();
    let file = DevFile { server_url: server_url.to_string(), users, repos };
    write(&path, &serde_json::to_vec_pretty(&file).expect("dev file serializes"))?;
    Ok(path)
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Where `--dev` writes one token file per demo user.
pub fn tokens_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens")
}

/// The copy-paste next steps printed when the dev broker is up: nothing but
/// `jit`, `git` and a POSIX shell needed, on a desktop or a headless machine.
pub fn next_steps(server_url: &str, dev_json: &Path) -> String {
    let data_dir = dev_json.parent().unwrap_or(Path::new("."));
    let t = tokens_dir(data_dir);
    let t = t.display();
    let d = data_dir.display();
    format!(
        "jit dev broker listening on {server_url}
Demo users alice (developer), bob and carol (reviewers) and admin; their tokens are in {t}/ (mode 0600, also in dev.json).
Demo repo: {server_url}/git/demo.git (read is auto-approved for developers; write needs a reviewer).

Next steps, in another terminal, as alice:
  jit login --server {server_url} < {t}/alice
  jit setup                                    # git asks jit first for this host
  jit doctor                                   # checks this machine, one line each
  jit request demo --level read --for 1h
  git clone {server_url}/git/demo.git && cd demo
  jit request demo --level write --for 1h --reason 'trying jit'   # waits for a reviewer
In a third terminal, as bob:
  JIT_SERVER={server_url} JIT_TOKEN=$(cat {t}/bob) jit approve
Then, as alice, plain `git push` works until the hour is up. As admin:
  JIT_SERVER={server_url} JIT_TOKEN=$(cat {t}/admin) jit audit
  JIT_SERVER={server_url} JIT_TOKEN=$(cat {t}/admin) jit audit verify
Stop the broker with Ctrl-C; it keeps its state in {d} (start afresh: rm -r {d}).
"
    )
}
