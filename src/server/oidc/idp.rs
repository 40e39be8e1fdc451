//! The broker's calls to the identity provider: discovery (fetched once, the
//! issuer it names checked against the config), the signing keys (cached,
//! fetched again when a token names a key not yet seen, so a key rotation at
//! the IdP just works), the device authorization grant, the token endpoint
//! (device code and refresh token, the client authenticated as the IdP
//! says it takes), and userinfo. Every call is bounded by the configured
//! timeout; no answer is followed to another host.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

use super::OidcConfig;
use super::verify::{self, Expected, TokenRefused};
use crate::domain::token::{ExposeSecret, SecretString};
use crate::providers::host_api;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Not reached, timed out, a 5xx, or an answer that is not what OIDC says.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    /// The IdP answered with an OAuth error (`invalid_grant`: the person or the grant is no longer valid).
    #[error("the identity provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused { error: String, description: Option<String> },
    #[error("the identity provider's ID token was refused ({code}): {0}", code = .0.code())]
    BadIdToken(TokenRefused),
    /// What the IdP publishes does not fit this broker's config.
    #[error("the identity provider does not fit the [oidc] config: {0}")]
    Misconfigured(String),
}

impl IdpError {
    /// An answer that says the person (or their grant at the IdP) is no longer
    /// valid, as opposed to the IdP being unreachable.
    pub fn person_refused(&self) -> bool {
        matches!(self, IdpError::Refused { error, .. } if error == "invalid_grant" || error == "unauthorized_client" || error == "access_denied")
    }
}

/// What discovery says, of what the broker uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub device_authorization_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The start of a device sign-in, as the IdP answered it.
#[derive(Deserialize)]
pub struct DeviceStart {
    pub device_code: SecretString,
    pub user_code: String,
    /// RFC 8628's name; Google's older one is `verification_url`.
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: Option<u64>,
}

/// A token endpoint's success.
#[derive(Deserialize)]
pub struct Tokens {
    pub access_token: SecretString,
    pub id_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// The IdP as the broker reaches it.
pub struct Idp {
    pub config: OidcConfig,
    http: reqwest::Client,
    metadata: Mutex<Option<Metadata>>,
    keys: RwLock<Option<Keys>>,
}

/// Keys are fetched again for an unknown `kid` at most this often.
const KEYS_REFETCH: Duration = Duration::from_secs(2);

impl Idp {
    pub fn new(config: OidcConfig) -> Result<Idp, String> {
        let builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")));
        let http =
            host_api::trusting(builder, config.ca_file.as_deref())?.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Idp { config, http, metadata: Mutex::new(None), keys: RwLock::new(None) })
    }

    /// Discovery, fetched on first use and kept.
    pub async fn metadata(&self) -> Result<Metadata, IdpError> {
        let mut cached = self.metadata.lock().await;
        if let Some(m) = cached.as_ref() {
            return Ok(m.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let found: Metadata = self.get_json(&url, None).await?;
        if found.issuer != self.config.issuer {
            return Err(IdpError::Misconfigured(format!(
                "discovery names the issuer `{}`, the config `{}`; set oidc.issuer to exactly the IdP's",
                found.issuer, self.config.issuer
            )));
        }
        *cached = Some(found.clone());
        Ok(found)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, bearer: Option<&SecretString>) -> Result<T, IdpError> {
        let mut request = self.http.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| IdpError::Unreachable(host_api::transport(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(IdpError::Unreachable(format!("{url} answered HTTP {}", status.as_u16())));
        }
        response.json().await.map_err(|e| IdpError::Unreachable(format!("{url}: not the JSON OIDC describes: {}", e.without_url())))
    }

    /// A form POST to one of the IdP's endpoints, authenticated as its client.
    async fn post_form<T: serde::de::DeserializeOwned>(&self, url: &str, fields: &[(&str, &str)]) -> Result<T, IdpError> {
        let metadata = self.metadata().await?;
        let secret = self.config.client_secret.expose_secret();
        // client_secret_basic unless the IdP takes only client_secret_post.
        let methods = &metadata.token_endpoint_auth_methods_supported;
        let post =
            !methods.is_empty() && !methods.iter().any(|m| m == "client_secret_basic") && methods.iter().any(|m| m == "client_secret_post");
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let mut request = self.http.post(url).header("accept", "application/json");
        if post {
            form.push(("client_id", &self.config.client_id));
            form.push(("client_secret", secret));
        } else {
            // RFC 6749 §2.3.1: both are form-encoded before they are joined.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(&self.config.client_id), Some(enc(secret)));
        }
        let response = request.form(&form).send().await.map_err(|e| IdpError::Unreachable(host_api::transport(e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| IdpError::Unreachable(host_api::transport(e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| IdpError::Unreachable(format!("{url}: not the JSON OAuth describes: {e}")));
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) if status.is_client_error() => Err(IdpError::Refused {
                error: e.error.chars().take(64).collect(),
                description: e.error_description.map(|d| d.chars().take(200).collect::<String>().escape_default().to_string()),
            }),
            _ => Err(IdpError::Unreachable(format!("{url} answered HTTP {}", status.as_u16()))),
        }
    }

    /// Starts a device sign-in (RFC 8628 §3.1).
    pub async fn start_device(&self) -> Result<DeviceStart, IdpError> {
        let metadata = self.metadata().await?;
        let endpoint = metadata.device_authorization_endpoint.ok_or_else(|| {
            IdpError::Misconfigured(
                "discovery names no device_authorization_endpoint: enable the device authorization grant for the client".into(),
            )
        })?;
        let scope = self.config.scopes.join(" ");
        self.post_form(&endpoint, &[("scope", &scope)]).await
    }

    /// Asks the token endpoint whether the person finished a device sign-in.
    /// `Refused` carries `authorization_pending` and `slow_down` too.
    pub async fn poll_device(&self, device_code: &SecretString) -> Result<Tokens, IdpError> {
        let metadata = self.metadata().await?;
        self.post_form(
            &metadata.token_endpoint,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code.expose_secret())],
        )
        .await
    }

    /// Where the browser goes to sign in (authorization code with PKCE S256 and a nonce).
    pub async fn authorize_url(&self, redirect_uri: &str, state: &str, nonce: &str, challenge: &str) -> Result<String, IdpError> {
        let metadata = self.metadata().await?;
        let endpoint =
            metadata.authorization_endpoint.ok_or_else(|| IdpError::Misconfigured("discovery names no authorization_endpoint".into()))?;
        let mut url = url::Url::parse(&endpoint).map_err(|e| IdpError::Misconfigured(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code the browser brought back (RFC 7636: with its verifier).
    pub async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<Tokens, IdpError> {
        let metadata = self.metadata().await?;
        self.post_form(
            &metadata.token_endpoint,
            &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri), ("code_verifier", verifier)],
        )
        .await
    }

    /// Uses a refresh token: the IdP's answer to whether the person is still active.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, IdpError> {
        let metadata = self.metadata().await?;
        self.post_form(&metadata.token_endpoint, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())]).await
    }

    /// The claims of a verified ID token (carrying `nonce`, when given), merged with the userinfo answer
    /// (where IdPs put what they leave out of the token), which must be about the same subject.
    pub async fn claims(&self, tokens: &Tokens, nonce: Option<&str>) -> Result<Map<String, Value>, IdpError> {
        let id_token = tokens.id_token.as_ref().ok_or_else(|| {
            IdpError::Misconfigured("the token answer has no id_token; the `openid` scope must be granted to the client".into())
        })?;
        let mut claims = self.verify(id_token.expose_secret(), nonce).await?;
        let metadata = self.metadata().await?;
        if let Some(endpoint) = metadata.userinfo_endpoint {
            let info: Map<String, Value> = self.get_json(&endpoint, Some(&tokens.access_token)).await?;
            if info.get("sub") != claims.get("sub") {
                return Err(IdpError::BadIdToken(TokenRefused::Claim("sub (userinfo names another subject)".into())));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        Ok(claims)
    }

    async fn verify(&self, token: &str, nonce: Option<&str>) -> Result<Map<String, Value>, IdpError> {
        let metadata = self.metadata().await?;
        let fresh = {
            let keys = self.keys.read().await;
            match keys.as_ref() {
                Some(k) if verify::has_key(&k.set, token) => false,
                Some(k) => k.fetched.elapsed() >= KEYS_REFETCH,
                None => true,
            }
        };
        if fresh {
            let set: JwkSet = self.get_json(&metadata.jwks_uri, None).await?;
            *self.keys.write().await = Some(Keys { set, fetched: Instant::now() });
        }
        let keys = self.keys.read().await;
        let set = &keys.as_ref().expect("fetched above").set;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let expected = Expected {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            algorithms: &metadata.id_token_signing_alg_values_supported,
            nonce,
            now,
        };
        verify::verify(token, set, &expected).map_err(IdpError::BadIdToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_idp_answer_means() {
        assert_eq!(
            IdpError::BadIdToken(TokenRefused::Expired).to_string(),
            "the identity provider's ID token was refused (expired): it has expired"
        );
        let refused = |e: &str| IdpError::Refused { error: e.into(), description: Some("user disabled".into()) };
        assert!(refused("invalid_grant").person_refused(), "a disabled person's refresh");
        assert!(!refused("temporarily_unavailable").person_refused() && !IdpError::Unreachable("x".into()).person_refused());
        assert_eq!(refused("invalid_grant").to_string(), "the identity provider refused: invalid_grant (user disabled)");
    }
}
