//! A real OpenID provider for the sign-in tests: npm `oidc-provider`
//! (`contract/oidc-idp.mjs`, installed by `scripts/contract-tools`) on
//! loopback, with the people a test names, and [`TestIdp::sign_in_as`]: a
//! person completing a device sign-in at it over HTTP, as a browser would
//! (cookies, forms, redirects), typing their name and password.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::ChildGuard;

pub const CLIENT_ID: &str = "jit-broker";

pub struct TestIdp {
    pub issuer: String,
    pub client_secret: String,
    pub dir: tempfile::TempDir,
    port: u16,
    users: Value,
    ttl: Value,
    redirect_uris: Vec<String>,
    child: Option<ChildGuard>,
}

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract")
}

impl TestIdp {
    /// An IdP whose people are `users` (name, groups); each one's password is `pw-NAME`.
    pub fn start(users: &[(&str, &[&str])]) -> TestIdp {
        Self::start_with_ttl(users, json!({}))
    }

    /// An IdP with some lifetimes changed (`{"DeviceCode": 2}`: seconds).
    pub fn start_with_ttl(users: &[(&str, &[&str])], ttl: Value) -> TestIdp {
        let people: serde_json::Map<String, Value> =
            users.iter().map(|(name, groups)| (name.to_string(), json!({"password": format!("pw-{name}"), "groups": groups}))).collect();
        let client_secret = format!("idp-client-secret-{}", std::process::id());
        crate::common::logs::secret(&client_secret);
        let mut idp = TestIdp {
            issuer: String::new(),
            client_secret,
            dir: tempfile::tempdir().unwrap(),
            port: 0,
            users: Value::Object(people),
            ttl,
            redirect_uris: Vec::new(),
            child: None,
        };
        idp.launch("k1");
        idp
    }

    fn launch(&mut self, kid: &str) {
        let script = contract_dir().join("oidc-idp.mjs");
        assert!(
            contract_dir().join("node_modules/oidc-provider").exists(),
            "the IdP is not installed: run scripts/contract-tools (scripts/test does)"
        );
        let config = json!({
            "port": self.port,
            "kid": kid,
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
            "ttl": self.ttl_with_defaults(),
            "tokens_log": self.dir.path().join("tokens.jsonl"),
            "redirect_uris": if self.redirect_uris.is_empty() { json!(["http://127.0.0.1/unused"]) } else { json!(self.redirect_uris) },
            "users": self.users,
        });
        let path = self.dir.path().join("idp.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let errors = self.dir.path().join("idp-stderr.log");
        // A restart listens on the port the broker was configured with, which
        // another process (a client's outgoing connection) may hold for a
        // moment after the old IdP let it go: tried again for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (child, issuer) = loop {
            let stderr = std::fs::File::create(&errors).unwrap();
            let child = Command::new("node").arg(&script).arg(&path).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
            let mut child = ChildGuard::new(child);
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            // Drained to the end: a closed pipe would kill the IdP at its next line of output.
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
            if let Some(issuer) = line.trim().strip_prefix("listening on ") {
                break (child, issuer.to_string());
            }
            let said = std::fs::read_to_string(&errors).unwrap_or_default();
            if self.port == 0 || !said.contains("EADDRINUSE") || std::time::Instant::now() > deadline {
                panic!("the IdP did not start: {line:?}\n{said}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        self.port = issuer.rsplit(':').next().unwrap().parse().unwrap();
        self.issuer = issuer;
        self.child = Some(child);
    }

    fn ttl_with_defaults(&self) -> Value {
        let mut ttl = json!({"AccessToken": 300, "IdToken": 300, "RefreshToken": 3600});
        for (k, v) in self.ttl.as_object().unwrap() {
            ttl[k] = v.clone();
        }
        ttl
    }

    /// The IdP rotates its signing key: it restarts on the same address with
    /// a new key (its sessions and refresh tokens are gone with the old process).
    pub fn restart_with_new_key(&mut self, kid: &str) {
        drop(self.child.take());
        self.launch(kid);
    }

    /// Registers the broker's callback (known once the broker listens): the
    /// IdP restarts with it, on the same address, under a new key `kid`.
    pub fn register_redirect(&mut self, uri: &str, kid: &str) {
        self.redirect_uris = vec![uri.to_string()];
        self.restart_with_new_key(kid);
    }

    /// Stops answering (the IdP is down).
    pub fn stop(&mut self) {
        drop(self.child.take());
    }

    /// The broker's `[oidc]` section and the secret files it names (in this IdP's dir).
    pub fn broker_config(&self, recheck: &str, session_max: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let secret = self.dir.path().join("client-secret");
        std::fs::write(&secret, &self.client_secret).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "\n[oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\nscopes = [\"openid\", \"profile\", \"email\", \"groups\", \"offline_access\"]\nrecheck = \"{recheck}\"\nsession_max = \"{session_max}\"\n",
            self.issuer,
            secret.display()
        )
    }

    /// A sealing key file for the broker (`[server] sealing_key_file`).
    pub fn sealing_key_file(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("sealing.key");
        std::fs::write(&path, "5a".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Every token the IdP has handed out (access, refresh and ID tokens), as secrets to look for.
    pub fn issued_tokens(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("tokens.jsonl")).unwrap_or_default();
        let mut tokens = Vec::new();
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let answer: Value = serde_json::from_str(line).unwrap();
            for field in ["access_token", "refresh_token", "id_token"] {
                if let Some(t) = answer[field].as_str() {
                    tokens.push(t.to_string());
                }
            }
        }
        tokens
    }

    /// The IdP's admin changes a person (`{"disabled": true}`, `{"groups": [...]}`).
    pub async fn change_user(&mut self, name: &str, change: Value) {
        let url = format!("{}/test/users/{name}", self.issuer);
        let resp = reqwest::Client::new().post(url).body(change.to_string()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let merged = resp.json::<Value>().await.unwrap();
        self.users[name] = merged;
    }

    /// A person finishes a device sign-in at `verification_uri_complete`, as
    /// a browser would: the code's pages, the login form, consent. `Err`
    /// carries the page that stopped them.
    /// Returns the last address the browser was sent to (the broker's callback, in a browser sign-in).
    pub async fn sign_in_as(&self, verification_uri_complete: &str, name: &str, password: &str) -> Result<String, String> {
        self.walk(verification_uri_complete, name, password, false).await
    }

    /// The person opens the code's page and aborts instead of confirming.
    pub async fn decline(&self, verification_uri_complete: &str) -> Result<String, String> {
        self.walk(verification_uri_complete, "", "", true).await
    }

    async fn walk(&self, verification_uri_complete: &str, name: &str, password: &str, decline: bool) -> Result<String, String> {
        let mut browser = Browser::default();
        let mut next = Step::Get(verification_uri_complete.to_string());
        for _ in 0..20 {
            let at = match &next {
                Step::Get(url) | Step::Post(url, _) => url.clone(),
            };
            let (status, location, body) = browser.go(&next).await;
            if let Some(location) = location {
                next = Step::Get(absolute(&self.issuer, &location));
                continue;
            }
            if status != 200 {
                return Err(format!("HTTP {status}: {body}"));
            }
            // The IdP's page after a device sign-in, or the broker's after a browser one.
            if body.contains("Sign-in Success") || body.contains("You are signed in to jit") {
                return Ok(at);
            }
            let Some(form) = Form::first(&body) else { return Err(format!("no form on the page: {body}")) };
            let mut fields = form.hidden;
            if decline && body.contains("op.deviceConfirmForm") {
                fields.push(("abort".into(), "yes".into()));
                let (status, _, body) = browser.go(&Step::Post(absolute(&self.issuer, &form.action), fields)).await;
                return if status < 500 { Ok(form.action) } else { Err(format!("HTTP {status}: {body}")) };
            }
            if body.contains("name=\"username\"") {
                fields.push(("username".into(), name.into()));
                fields.push(("password".into(), password.into()));
            }
            next = Step::Post(absolute(&self.issuer, &form.action), fields);
        }
        Err("the sign-in went on for more than 20 pages".into())
    }
}

enum Step {
    Get(String),
    Post(String, Vec<(String, String)>),
}

/// Just enough of a browser: cookies by name, no redirect followed on its own.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn go(&mut self, step: &Step) -> (u16, Option<String>, String) {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let request = match step {
            Step::Get(url) => http.get(url),
            Step::Post(url, fields) => http.post(url).form(fields),
        };
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let resp = request.header("cookie", cookie).send().await.unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (status, location, resp.text().await.unwrap())
    }
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with("http") { url.to_string() } else { format!("{base}{url}") }
}

struct Form {
    action: String,
    hidden: Vec<(String, String)>,
}

impl Form {
    /// The page's first form: its action and hidden inputs.
    fn first(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..].find("</form>").map(|e| start + e).unwrap_or(html.len());
        let tag_end = html[start..].find('>')? + start;
        let action = attr(&html[start..tag_end], "action")?;
        let mut hidden = Vec::new();
        let mut rest = &html[tag_end..end];
        while let Some(i) = rest.find("<input") {
            let close = rest[i..].find('>').map(|c| i + c).unwrap_or(rest.len());
            let tag = &rest[i..close];
            if tag.contains("type=\"hidden\"")
                && let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value"))
            {
                hidden.push((name, value));
            }
            rest = &rest[close..];
        }
        Some(Form { action, hidden })
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&"))
}
