//! Sign-in with the company's identity provider (OpenID Connect). The broker
//! is the one OIDC client registered at the IdP: it holds the client secret,
//! runs the device authorization grant (RFC 8628) on the CLI's behalf,
//! verifies every ID token itself ([`verify`]), and keeps each person's
//! refresh token sealed so it can ask the IdP, every `recheck`, whether that
//! person is still active ([`idp`]).
//!
//! ```toml
//! [oidc]
//! issuer = "https://idp.example.com/realms/acme"  # discovery at <issuer>/.well-known/openid-configuration
//! client_id = "jit"
//! client_secret_file = "/etc/jit/oidc-secret"     # or client_secret_env; 0600 like every secret file
//! scopes = ["openid", "profile", "email", "offline_access"]  # the default; add the one that carries groups
//! username_claim = "preferred_username"           # the jit user name
//! username_domain = "example.com"                 # for names like alice@example.com: drop this domain, refuse others
//! groups_claim = "groups"                         # each value is group:VALUE in policy
//! recheck = "10m"                                 # how often the IdP is asked whether the person is still active
//! session_max = "12h"                             # then the person signs in again
//! ```

pub mod idp;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::AccessDuration;
use crate::domain::identity::ClaimNames;
use crate::domain::token::SecretString;
use crate::providers::host_api;

pub use idp::{DeviceStart, Idp, IdpError, Tokens};

/// The `[oidc]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    issuer: String,
    client_id: String,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    scopes: Option<Vec<String>>,
    username_claim: Option<String>,
    username_domain: Option<String>,
    groups_claim: Option<String>,
    recheck: Option<String>,
    session_max: Option<String>,
    /// The IdP behind a company's own CA.
    ca_file: Option<PathBuf>,
    /// How long one call to the IdP may take (default 10s).
    timeout: Option<String>,
}

/// The `[oidc]` section, validated.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Exactly as the IdP names itself in discovery and in every ID token.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    pub claims: ClaimNames,
    pub recheck: Duration,
    pub session_max: Duration,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

impl OidcConfig {
    /// Checks the section; `env` reads `client_secret_env`.
    pub fn from_section(section: Section, env: impl Fn(&str) -> Option<String>) -> Result<OidcConfig, String> {
        let issuer = host_api::api_url(&section.issuer).map_err(|e| format!("oidc.issuer: {}", e.trim_start_matches("api_url ")))?;
        // The issuer is compared with the ID token's `iss` as written, so keep what the IdP says (a trailing / included).
        let issuer = if section.issuer.ends_with('/') && !issuer.ends_with('/') { section.issuer.clone() } else { issuer };
        if section.client_id.trim().is_empty() {
            return Err("oidc.client_id: empty".to_string());
        }
        if let Some(path) = &section.client_secret_file {
            crate::fsutil::check_private_file(path).map_err(|e| format!("oidc.client_secret_file {e}"))?;
        }
        let client_secret =
            host_api::secret_from("client_secret", section.client_secret_file.as_ref(), section.client_secret_env.as_deref(), env)
                .map_err(|e| format!("oidc.{e}"))?;
        let scopes = section.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
        if !scopes.iter().any(|s| s == "openid") {
            return Err("oidc.scopes: must include `openid` (without it the IdP sends no ID token)".to_string());
        }
        if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control())) {
            return Err(format!("oidc.scopes: `{}` is not a scope", bad.escape_default()));
        }
        let claim = |field: &str, v: Option<String>, default: String| -> Result<String, String> {
            let v = v.unwrap_or(default);
            if v.is_empty() || v.contains(char::is_control) { Err(format!("oidc.{field}: not a claim name")) } else { Ok(v) }
        };
        let defaults = ClaimNames::default();
        let claims = ClaimNames {
            username: claim("username_claim", section.username_claim, defaults.username)?,
            groups: claim("groups_claim", section.groups_claim, defaults.groups)?,
            username_domain: match section.username_domain {
                Some(d) if d.is_empty() || d.contains(['@', ' ']) || d.contains(char::is_control) => {
                    return Err(format!("oidc.username_domain: `{}` is not a domain (write it without `@`)", d.escape_default()));
                }
                d => d,
            },
        };
        let duration = |field: &str, v: Option<String>, default: u64| -> Result<Duration, String> {
            match v {
                None => Ok(Duration::from_secs(default)),
                Some(t) => Ok(t.parse::<AccessDuration>().map_err(|e| format!("oidc.{field}: {e}"))?.as_std()),
            }
        };
        let recheck = duration("recheck", section.recheck, 600)?;
        let session_max = duration("session_max", section.session_max, 12 * 3600)?;
        if recheck > session_max {
            return Err("oidc.recheck: longer than session_max, so a session would never be re-checked".to_string());
        }
        let timeout = duration("timeout", section.timeout, 10)?;
        Ok(OidcConfig {
            issuer,
            client_id: section.client_id,
            client_secret,
            scopes,
            claims,
            recheck,
            session_max,
            ca_file: section.ca_file,
            timeout,
        })
    }
}

/// The PKCE S256 challenge of a code verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    fn parse(text: &str) -> Result<OidcConfig, String> {
        let section: Section = toml::from_str(text).map_err(|e| e.to_string())?;
        OidcConfig::from_section(section, |v| (v == "SECRET").then(|| "s3cret".to_string()))
    }

    const BASE: &str = "issuer = \"https://idp.example.com/realms/acme\"\nclient_id = \"jit\"\nclient_secret_env = \"SECRET\"\n";

    #[test]
    fn defaults_and_overrides() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.issuer, "https://idp.example.com/realms/acme");
        assert_eq!(c.scopes, DEFAULT_SCOPES);
        assert_eq!(c.claims, ClaimNames::default());
        assert_eq!((c.recheck, c.session_max), (Duration::from_secs(600), Duration::from_secs(43200)));
        let c =
            parse(&format!("{BASE}recheck = \"2m\"\nsession_max = \"8h\"\ngroups_claim = \"roles\"\nscopes = [\"openid\", \"groups\"]"))
                .unwrap();
        assert_eq!((c.recheck, c.session_max, c.claims.groups.as_str()), (Duration::from_secs(120), Duration::from_secs(28800), "roles"));
        assert_eq!(
            parse("issuer = \"https://i.example/\"\nclient_id = \"j\"\nclient_secret_env = \"SECRET\"").unwrap().issuer,
            "https://i.example/"
        );
        assert!(!format!("{c:?}").contains("s3cret"), "the secret is not in Debug");
    }

    #[test]
    fn bad_sections_are_named() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(err(&BASE.replace("https://idp", "http://idp")).contains("https"));
        assert!(err(&BASE.replace("client_secret_env = \"SECRET\"\n", "")).contains("client_secret_file or client_secret_env"));
        assert!(err(&BASE.replace("SECRET", "UNSET")).contains("UNSET"));
        assert!(err(&format!("{BASE}scopes = [\"profile\"]")).contains("must include `openid`"));
        assert!(err(&format!("{BASE}scopes = [\"openid\", \"a b\"]")).contains("not a scope"));
        assert!(err(&format!("{BASE}recheck = \"2d\"\nsession_max = \"1h\"")).contains("longer than session_max"));
        assert!(err(&format!("{BASE}recheck = \"soon\"")).contains("oidc.recheck"));
        assert!(err(&format!("{BASE}client = \"x\"")).contains("unknown field"));
        assert!(err(&BASE.replace("\"jit\"", "\" \"")).contains("client_id"));
        assert!(err(&format!("{BASE}username_domain = \"@example.com\"")).contains("without `@`"));
    }
}
