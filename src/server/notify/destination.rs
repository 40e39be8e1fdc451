//! A `[[notify]]` destination: the section as written, checked.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::AccessDuration;
use crate::domain::notify::{Subscription, check_subscription};
use crate::domain::token::{ExposeSecret, SecretString};
use crate::providers::host_api;

/// A `[[notify]]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    name: String,
    kind: String,
    url: Option<String>,
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    events: Option<Vec<String>>,
    rules: Option<Vec<String>>,
    timeout: Option<String>,
    smtp_url: Option<String>,
    credentials_file: Option<PathBuf>,
    from: Option<String>,
    to: Option<OneOrMany>,
    ca_file: Option<PathBuf>,
}

impl Section {
    /// A syslog destination sending every audit event to `url` (`[audit] syslog`).
    pub fn syslog_sink(name: &str, url: &str) -> Section {
        Section {
            name: name.to_string(),
            kind: "syslog".to_string(),
            url: Some(url.to_string()),
            url_file: None,
            url_env: None,
            secret_file: None,
            secret_env: None,
            events: None,
            rules: None,
            timeout: None,
            smtp_url: None,
            credentials_file: None,
            from: None,
            to: None,
            ca_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One delivery attempt's limit (`timeout`, default 10 s).
fn timeout_of(timeout: Option<String>) -> Result<Duration, String> {
    match timeout {
        Some(t) => Ok(t.parse::<AccessDuration>().map_err(|e| format!("timeout: {e}"))?.as_std()),
        None => Ok(Duration::from_secs(10)),
    }
}

/// How the broker reaches its mail server.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte; otherwise STARTTLS, required.
    pub implicit_tls: bool,
    /// Plain SMTP, allowed to a server on loopback only.
    pub plain: bool,
    /// `USER:PASSWORD` from `credentials_file`.
    pub credentials: Option<(String, SecretString)>,
}

/// Who is mailed.
#[derive(Debug, Clone)]
pub struct Recipients {
    /// The rule's approvers who have an e-mail address (not the requester).
    pub approvers: bool,
    pub addresses: Vec<lettre::Address>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// A JSON body, signed with HMAC-SHA256.
    Webhook { secret: SecretString },
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// E-mail through an SMTP server.
    Email { smtp: Smtp, from: lettre::message::Mailbox, to: Recipients },
    /// RFC 5424 messages to a syslog receiver (a SIEM), over TLS or, on loopback, plain TCP.
    Syslog(SyslogTarget),
}

/// Where a syslog destination sends.
#[derive(Debug, Clone)]
pub struct SyslogTarget {
    pub host: String,
    pub port: u16,
    /// `tcp+tls://` (RFC 5425); plain `tcp://` only to a receiver on loopback.
    pub tls: bool,
    /// PEM roots trusted beside the system's (a receiver behind a company CA).
    pub ca_file: Option<PathBuf>,
}

/// A destination, validated.
#[derive(Debug, Clone)]
pub struct Destination {
    pub name: String,
    pub kind: Kind,
    url: SecretString,
    pub subscription: Subscription,
    pub timeout: Duration,
}

impl Destination {
    /// Where it is delivered (for a Slack destination, a credential: never shown).
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Webhook { .. } => "webhook",
            Kind::Slack => "slack",
            Kind::Email { .. } => "email",
            Kind::Syslog(_) => "syslog",
        }
    }

    /// Where it goes, as shown to admins: a webhook's host, never a Slack URL (it is the credential).
    pub fn shown_url(&self) -> String {
        match &self.kind {
            Kind::Slack => "(secret)".to_string(),
            Kind::Email { smtp, .. } => format!("{}:{}", smtp.host, smtp.port),
            Kind::Syslog(t) => format!("{}:{}", t.host, t.port),
            Kind::Webhook { .. } => {
                url::Url::parse(self.url.expose_secret()).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
            }
        }
    }

    pub fn from_section(section: Section, env: impl Fn(&str) -> Option<String>) -> Result<Destination, String> {
        if !crate::domain::policy::is_valid_name(&section.name) {
            return Err(format!("name `{}`: use 1-64 letters, digits, `-`, `_` or `.`", section.name.escape_default()));
        }
        // What is left after e-mail and syslog is a web hook: Slack's or a signed one.
        let slack = match section.kind.as_str() {
            "email" => return Self::email(section, env),
            "syslog" => return Self::syslog(section),
            "webhook" => false,
            "slack" => true,
            other => return Err(format!("kind `{}`: one of webhook, slack, email, syslog", other.escape_default())),
        };
        if section.ca_file.is_some() {
            return Err("ca_file: only for kind = \"syslog\"".into());
        }
        for (set, key) in [
            (section.smtp_url.is_some(), "smtp_url"),
            (section.credentials_file.is_some(), "credentials_file"),
            (section.from.is_some(), "from"),
            (section.to.is_some(), "to"),
        ] {
            if set {
                return Err(format!("{key}: only for kind = \"email\""));
            }
        }
        let url = match (&section.url, slack) {
            (Some(_), true) => {
                return Err("url: a Slack webhook URL is a secret; give it in url_file or url_env".into());
            }
            (Some(u), _) => {
                if section.url_file.is_some() || section.url_env.is_some() {
                    return Err("set one of url, url_file and url_env".into());
                }
                SecretString::from(u.clone())
            }
            (None, _) => host_api::secret_from("url", section.url_file.as_ref(), section.url_env.as_deref(), &env)?,
        };
        host_api::api_url(url.expose_secret()).map_err(|e| {
            // Never echo a URL that may be a credential.
            if section.url.is_some() { e.replace("api_url", "url") } else { "url: must be https (plain http only on loopback)".into() }
        })?;
        let kind = if slack {
            if section.secret_file.is_some() || section.secret_env.is_some() {
                return Err("secret_file / secret_env: Slack messages are not signed; leave them out".into());
            }
            Kind::Slack
        } else {
            if let Some(path) = &section.secret_file {
                crate::fsutil::check_private_file(path).map_err(|e| format!("secret_file {e}"))?;
            }
            let secret = host_api::secret_from("secret", section.secret_file.as_ref(), section.secret_env.as_deref(), &env)
                .map_err(|e| format!("{e}: a webhook is signed with it (`openssl rand -hex 32`)"))?;
            if secret.expose_secret().len() < 16 {
                return Err("secret: shorter than 16 characters (`openssl rand -hex 32` makes a good one)".into());
            }
            Kind::Webhook { secret }
        };
        if let Some(path) = &section.url_file {
            crate::fsutil::check_private_file(path).map_err(|e| format!("url_file {e}"))?;
        }
        let subscription = check_subscription(section.events, section.rules)?;
        let timeout = timeout_of(section.timeout)?;
        Ok(Destination { name: section.name, kind, url, subscription, timeout })
    }

    fn syslog(section: Section) -> Result<Destination, String> {
        let only_for_others = [
            (
                section.url_file.is_some() || section.url_env.is_some(),
                "url_file / url_env: a syslog receiver's address is no secret; give url",
            ),
            (
                section.secret_file.is_some() || section.secret_env.is_some(),
                "secret_file / secret_env: syslog messages are not signed (the audit log's own hashes are in them)",
            ),
            (
                section.smtp_url.is_some() || section.credentials_file.is_some() || section.from.is_some() || section.to.is_some(),
                "smtp_url, credentials_file, from, to: only for kind = \"email\"",
            ),
        ];
        if let Some((_, why)) = only_for_others.iter().find(|(set, _)| *set) {
            return Err(why.to_string());
        }
        let raw = section.url.ok_or("url: missing (tcp+tls://HOST:6514; tcp://127.0.0.1:514 only on loopback)")?;
        let url = url::Url::parse(&raw).map_err(|e| format!("url `{raw}`: {e}"))?;
        let host =
            url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("url `{raw}`: no host"))?.trim_matches(['[', ']']).to_string();
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let tls = match url.scheme() {
            "tcp+tls" => true,
            "tcp" if loopback => false,
            "tcp" => return Err(format!("url `{raw}`: plain tcp only to a receiver on loopback; use tcp+tls://")),
            other => return Err(format!("url `{raw}`: scheme `{other}`; use tcp+tls:// (RFC 5425), or tcp:// on loopback")),
        };
        let port = url.port().ok_or_else(|| format!("url `{raw}`: give the port (6514 is syslog over TLS)"))?;
        if !url.path().trim_matches('/').is_empty() || url.query().is_some() || !url.username().is_empty() {
            return Err(format!("url `{raw}`: only tcp+tls://HOST:PORT"));
        }
        if let Some(path) = &section.ca_file {
            crate::tls_client::config(Some(path)).map_err(|e| format!("ca_file {e}"))?;
        }
        // A log sink wants every event unless told otherwise.
        let events = section.events.or_else(|| Some(vec![crate::domain::notify::EVERY.to_string()]));
        let subscription = check_subscription(events, section.rules)?;
        let timeout = timeout_of(section.timeout)?;
        let target = SyslogTarget { host, port, tls, ca_file: section.ca_file };
        Ok(Destination { name: section.name, kind: Kind::Syslog(target), url: SecretString::from(raw), subscription, timeout })
    }

    fn email(section: Section, _env: impl Fn(&str) -> Option<String>) -> Result<Destination, String> {
        if section.url.is_some() || section.url_file.is_some() || section.url_env.is_some() {
            return Err("url: an e-mail destination has smtp_url instead".into());
        }
        if section.secret_file.is_some() || section.secret_env.is_some() {
            return Err("secret_file / secret_env: e-mail is not signed; leave them out".into());
        }
        if section.ca_file.is_some() {
            return Err("ca_file: only for kind = \"syslog\"".into());
        }
        let raw = section.smtp_url.ok_or("smtp_url: missing (smtp://HOST:587 for STARTTLS, smtps://HOST:465 for TLS)")?;
        let url = url::Url::parse(&raw).map_err(|e| format!("smtp_url `{raw}`: {e}"))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("smtp_url `{raw}`: no host"))?.to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err("smtp_url: no credentials in the URL; put `USER:PASSWORD` in credentials_file".into());
        }
        let loopback = host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let (implicit_tls, plain, default_port) = match url.scheme() {
            "smtps" => (true, false, 465),
            // STARTTLS required, except to a relay on this machine (which may not offer it).
            "smtp" => (false, loopback, 587),
            other => return Err(format!("smtp_url `{raw}`: scheme `{other}`; use smtp:// (STARTTLS) or smtps:// (TLS)")),
        };
        let credentials = match &section.credentials_file {
            None => None,
            Some(path) => {
                crate::fsutil::check_private_file(path).map_err(|e| format!("credentials_file {e}"))?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("credentials_file {}: {e}", path.display()))?;
                let (user, password) = text
                    .trim_end_matches(['\r', '\n'])
                    .split_once(':')
                    .ok_or_else(|| format!("credentials_file {}: expected one line `USER:PASSWORD`", path.display()))?;
                Some((user.to_string(), SecretString::from(password.to_string())))
            }
        };
        let from_text = section.from.ok_or("from: missing (the sender address, e.g. jit@example.com)")?;
        let from = from_text.parse::<lettre::message::Mailbox>().map_err(|e| format!("from `{}`: {e}", from_text.escape_default()))?;
        let to_list = match section.to {
            None => return Err("to: missing (\"approvers\", or addresses)".into()),
            Some(OneOrMany::One(one)) => vec![one],
            Some(OneOrMany::Many(many)) => many,
        };
        if to_list.is_empty() {
            return Err("to: empty".into());
        }
        let mut to = Recipients { approvers: false, addresses: Vec::new() };
        for entry in to_list {
            if entry == "approvers" {
                to.approvers = true;
            } else {
                to.addresses.push(entry.parse().map_err(|e| format!("to `{}`: {e}", entry.escape_default()))?);
            }
        }
        let subscription = check_subscription(section.events, section.rules)?;
        let timeout = timeout_of(section.timeout)?;
        let smtp = Smtp { host, port: url.port().unwrap_or(default_port), implicit_tls, plain, credentials };
        Ok(Destination { name: section.name, kind: Kind::Email { smtp, from, to }, url: SecretString::from(raw), subscription, timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Destination, String> {
        let section: Section = toml::from_str(text).map_err(|e| e.to_string())?;
        Destination::from_section(section, |v| match v {
            "SLACK" => Some("https://hooks.slack.com/services/T0/B0/XYZ".into()),
            "KEY" => Some("0123456789abcdef0123".into()),
            _ => None,
        })
    }

    #[test]
    fn destinations_as_written() {
        let d = parse("name = \"siem\"\nkind = \"webhook\"\nurl = \"https://siem.example.com/jit\"\nsecret_env = \"KEY\"").unwrap();
        assert_eq!((d.kind_name(), d.shown_url().as_str(), d.timeout), ("webhook", "siem.example.com", Duration::from_secs(10)));
        let d = parse("name = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK\"\nevents = [\"requested\"]\nrules = [\"prod-*\"]").unwrap();
        assert_eq!(d.shown_url(), "(secret)");
        assert!(!format!("{d:?}").contains("XYZ"), "the Slack URL is not in Debug");
    }

    #[test]
    fn bad_destinations_are_named() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(err("name = \"c\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"").contains("is a secret"));
        assert!(err("name = \"w\"\nkind = \"webhook\"\nurl = \"https://x.example\"").contains("secret_file or secret_env"));
        assert!(err("name = \"w\"\nkind = \"webhook\"\nurl = \"http://x.example\"\nsecret_env = \"KEY\"").contains("https"));
        assert!(err("name = \"w\"\nkind = \"pager\"\nurl = \"https://x.example\"").contains("one of webhook, slack"));
        assert!(err("name = \"a b\"\nkind = \"slack\"\nurl_env = \"SLACK\"").contains("name"));
        assert!(err("name = \"c\"\nkind = \"slack\"\nurl_env = \"SLACK\"\nevents = [\"pushed\"]").contains("`pushed` is not an event"));
        assert!(err("name = \"c\"\nkind = \"slack\"\nurl_env = \"SLACK\"\nsecret_env = \"KEY\"").contains("not signed"));
        let short = parse("name = \"w\"\nkind = \"webhook\"\nurl = \"https://x.example\"\nsecret_env = \"SHORT\"");
        assert!(short.unwrap_err().contains("secret"));
    }

    #[test]
    fn email_destinations_as_written_and_refused() {
        let d = parse("name = \"m\"\nkind = \"email\"\nsmtp_url = \"smtp://mail.example.com\"\nfrom = \"jit@example.com\"\nto = [\"approvers\", \"sec@example.com\"]").unwrap();
        let Kind::Email { smtp, to, .. } = &d.kind else { panic!("email") };
        assert_eq!((smtp.host.as_str(), smtp.port, smtp.implicit_tls, smtp.plain), ("mail.example.com", 587, false, false));
        assert!(to.approvers && to.addresses.len() == 1);
        let d =
            parse("name = \"m\"\nkind = \"email\"\nsmtp_url = \"smtp://127.0.0.1:2525\"\nfrom = \"jit@example.com\"\nto = \"approvers\"")
                .unwrap();
        let Kind::Email { smtp, .. } = &d.kind else { panic!("email") };
        assert!(smtp.plain, "plain SMTP to loopback only");
        let err = |text: &str| parse(&format!("name = \"m\"\nkind = \"email\"\n{text}")).unwrap_err();
        assert!(err("smtp_url = \"http://x\"\nfrom = \"a@b.c\"\nto = \"approvers\"").contains("smtp:// (STARTTLS) or smtps://"));
        assert!(err("smtp_url = \"smtp://u:p@x\"\nfrom = \"a@b.c\"\nto = \"approvers\"").contains("no credentials in the URL"));
        assert!(err("smtp_url = \"smtp://x\"\nfrom = \"not an address\"\nto = \"approvers\"").contains("from"));
        assert!(err("smtp_url = \"smtp://x\"\nfrom = \"a@b.c\"\nto = [\"nobody\"]").contains("to `nobody`"));
        assert!(err("smtp_url = \"smtp://x\"\nfrom = \"a@b.c\"").contains("to: missing"));
        assert!(err("from = \"a@b.c\"\nto = \"approvers\"").contains("smtp_url: missing"));
        assert!(
            parse("name = \"w\"\nkind = \"slack\"\nurl_env = \"SLACK\"\nfrom = \"a@b.c\"")
                .unwrap_err()
                .contains("only for kind = \"email\"")
        );
    }
}
