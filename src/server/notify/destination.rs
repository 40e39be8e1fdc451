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
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// A JSON body, signed with HMAC-SHA256.
    Webhook { secret: SecretString },
    /// A Slack incoming webhook (Block Kit).
    Slack,
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
        }
    }

    /// Where it goes, as shown to admins: a webhook's host, never a Slack URL (it is the credential).
    pub fn shown_url(&self) -> String {
        match self.kind {
            Kind::Slack => "(secret)".to_string(),
            Kind::Webhook { .. } => {
                url::Url::parse(self.url.expose_secret()).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
            }
        }
    }

    pub fn from_section(section: Section, env: impl Fn(&str) -> Option<String>) -> Result<Destination, String> {
        if !crate::domain::policy::is_valid_name(&section.name) {
            return Err(format!("name `{}`: use 1-64 letters, digits, `-`, `_` or `.`", section.name.escape_default()));
        }
        let url = match (&section.url, section.kind.as_str()) {
            (Some(_), "slack") => {
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
        let kind = match section.kind.as_str() {
            "webhook" => {
                if let Some(path) = &section.secret_file {
                    crate::fsutil::check_private_file(path).map_err(|e| format!("secret_file {e}"))?;
                }
                let secret = host_api::secret_from("secret", section.secret_file.as_ref(), section.secret_env.as_deref(), &env)
                    .map_err(|e| format!("{e}: a webhook is signed with it (`openssl rand -hex 32`)"))?;
                if secret.expose_secret().len() < 16 {
                    return Err("secret: shorter than 16 characters (`openssl rand -hex 32` makes a good one)".into());
                }
                Kind::Webhook { secret }
            }
            "slack" => {
                if section.secret_file.is_some() || section.secret_env.is_some() {
                    return Err("secret_file / secret_env: Slack messages are not signed; leave them out".into());
                }
                Kind::Slack
            }
            other => return Err(format!("kind `{}`: one of webhook, slack", other.escape_default())),
        };
        if let Some(path) = &section.url_file {
            crate::fsutil::check_private_file(path).map_err(|e| format!("url_file {e}"))?;
        }
        let subscription = check_subscription(section.events, section.rules)?;
        let timeout = match section.timeout {
            Some(t) => t.parse::<AccessDuration>().map_err(|e| format!("timeout: {e}"))?.as_std(),
            None => Duration::from_secs(10),
        };
        Ok(Destination { name: section.name, kind, url, subscription, timeout })
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
}
