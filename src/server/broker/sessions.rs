//! Signing people in through the identity provider, and keeping their
//! sessions honest: a device sign-in started and finished for the CLI, the
//! person made a user (or found) with the IdP's groups, a broker session
//! opened; every `recheck` the IdP is asked again with the person's refresh
//! token, and when it refuses (the person was disabled, consent withdrawn)
//! every session and live grant of theirs ends, at the host too.
//!
//! The device code never leaves the broker in clear: the CLI holds it sealed
//! under the broker's sealing key, so any broker with that key can finish the
//! sign-in and nothing is kept in memory between the two calls.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::{Broker, BrokerError, BrokerResult, SignInError};
use crate::domain::audit::{Action, NewEvent, OIDC_ACTOR, is_reserved_name};
use crate::domain::identity::{Identity, identity_from_claims};
use crate::domain::records::{SessionRecord, SignIn, UserRecord};
use crate::domain::token::{ExposeSecret, SecretString, TOKEN_PREFIX, TokenHash, generate};
use crate::server::oidc::{Idp, IdpError, Tokens};
use crate::store::StoreError;

/// What the device code is sealed to (associated data): nothing else opens as one.
const DEVICE_CONTEXT: &[u8] = b"jit oidc device code";
/// What a browser sign-in's `state` is sealed to.
const STATE_CONTEXT: &[u8] = b"jit oidc browser state";
/// How long a browser sign-in may take, from start to callback.
const BROWSER_SIGN_IN_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Browser sign-ins in progress at once (more are refused until some finish or expire).
const MAX_BROWSER_SIGN_INS: usize = 10_000;
/// A check the IdP could not answer is tried again after this long (or `recheck`, if sooner).
const RETRY_UNREACHABLE: chrono::Duration = chrono::Duration::seconds(60);

/// Who a token is: the user, and the session when they signed in through the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserRecord,
    pub session: Option<SessionRecord>,
}

/// A device sign-in started: what the person is shown, and the sealed handle the CLI polls with.
pub struct DeviceSignIn {
    pub login: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

/// Where a device sign-in stands.
pub enum SignInPoll {
    /// The person has not finished at the IdP; ask again after `interval` seconds.
    Pending { slow_down: bool },
    /// Signed in: a new session and its token (shown once).
    Done(Box<SignedInSession>),
}

/// A finished sign-in: the person, their new session, and its token (shown once).
pub struct SignedInSession {
    pub user: UserRecord,
    pub session: SessionRecord,
    pub token: SecretString,
}

/// A browser sign-in's `state`: sealed, so the callback needs no lookup to
/// trust it, and bound to the one sign-in it started.
#[derive(serde::Serialize, serde::Deserialize)]
struct BrowserState {
    login: String,
    verifier: String,
    nonce: String,
    expires: i64,
    /// Started by the approval pages: where the browser goes once signed in
    /// (the session then lands in a cookie, not with a polling CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    web_next: Option<String>,
}

/// What a browser sign-in's callback came to: who signed in, and for one the
/// approval pages started, the session's token and where to go next.
pub struct CalledBack {
    pub user: UserRecord,
    pub web: Option<(SecretString, String)>,
}

/// A browser sign-in started: the address to open, and the handle the CLI polls with.
pub struct BrowserSignIn {
    pub login: String,
    pub url: String,
    pub expires_in: u64,
}

/// Browser sign-ins in progress, by handle: what the callback found, until
/// the CLI collects it. Kept until they expire, so a callback replayed after
/// the sign-in finished is still known for what it is.
#[derive(Default)]
pub(super) struct BrowserSignIns {
    inner: std::sync::Mutex<std::collections::HashMap<String, BrowserSignInState>>,
}

struct BrowserSignInState {
    expires: DateTime<Utc>,
    /// The callback came (a second one is a replay).
    called_back: bool,
    /// What it came to, until the CLI collects it.
    outcome: Option<Result<Box<SignedInSession>, SignInError>>,
    /// The CLI has it (a second collection finds nothing).
    collected: bool,
}

impl BrowserSignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, BrowserSignInState>> {
        self.inner.lock().expect("browser sign-ins")
    }
}

impl Broker {
    fn idp(&self) -> BrokerResult<&Idp> {
        self.idp.as_ref().ok_or(BrokerError::SignIn(SignInError::NotConfigured))
    }

    /// The issuer people sign in with, if any (`GET /v1/auth`).
    pub fn oidc_issuer(&self) -> Option<&str> {
        self.idp.as_ref().map(|i| i.config.issuer.as_str())
    }

    fn sealing(&self) -> &crate::server::sealing::SealingKey {
        self.config.sealing_key.as_deref().expect("the config requires a sealing key with [oidc]")
    }

    /// `POST /v1/auth/device`: starts a device sign-in at the IdP.
    pub async fn start_device_sign_in(&self) -> BrokerResult<DeviceSignIn> {
        let idp = self.idp()?;
        let start = idp.start_device().await.map_err(SignInError::from)?;
        let sealed = self.sealing().seal_for(DEVICE_CONTEXT, &start.device_code);
        Ok(DeviceSignIn {
            login: URL_SAFE_NO_PAD.encode(sealed),
            user_code: start.user_code,
            verification_uri: start.verification_uri,
            verification_uri_complete: start.verification_uri_complete,
            expires_in: start.expires_in,
            interval: start.interval.unwrap_or(5).clamp(1, 60),
        })
    }

    /// `POST /v1/auth/device/token`: whether the person finished; when they
    /// did, they are signed in.
    pub async fn finish_device_sign_in(&self, login: &str) -> BrokerResult<SignInPoll> {
        let idp = self.idp()?;
        let not_ours = || BrokerError::InvalidInput("`login` is not a sign-in this broker started".into());
        let sealed = URL_SAFE_NO_PAD.decode(login.trim()).map_err(|_| not_ours())?;
        let device_code = self.sealing().open_for(DEVICE_CONTEXT, &sealed).map_err(|_| not_ours())?;
        let tokens = match idp.poll_device(&device_code).await {
            Ok(tokens) => tokens,
            Err(IdpError::Refused { error, .. }) if error == "authorization_pending" => {
                return Ok(SignInPoll::Pending { slow_down: false });
            }
            Err(IdpError::Refused { error, .. }) if error == "slow_down" => return Ok(SignInPoll::Pending { slow_down: true }),
            Err(IdpError::Refused { error, .. }) if error == "access_denied" => return Err(SignInError::Denied.into()),
            Err(IdpError::Refused { error, .. }) if error == "expired_token" => return Err(SignInError::Expired.into()),
            Err(e) => return Err(SignInError::Idp(e).into()),
        };
        Ok(SignInPoll::Done(self.sign_in(idp, tokens, None).await?))
    }

    /// `POST /v1/auth/browser`: a sign-in in the browser (authorization code
    /// with PKCE, the IdP sending the browser back to `/v1/auth/callback`).
    /// With `web_next`, the approval pages started it: the callback keeps the
    /// session for the browser and sends it on to `web_next`.
    pub async fn start_browser_sign_in(&self, web_next: Option<String>) -> BrokerResult<BrowserSignIn> {
        let idp = self.idp()?;
        let now = self.now();
        let random = || generate("").expose_secret().to_string();
        let state = BrowserState {
            login: random(),
            verifier: random(),
            nonce: random(),
            expires: (now + BROWSER_SIGN_IN_TTL).timestamp(),
            web_next,
        };
        let sealed = self.sealing().seal_for(STATE_CONTEXT, &SecretString::from(serde_json::to_string(&state).expect("serializes")));
        let url = idp
            .authorize_url(
                &self.callback_url(),
                &URL_SAFE_NO_PAD.encode(sealed),
                &state.nonce,
                &crate::server::oidc::pkce_challenge(&state.verifier),
            )
            .await
            .map_err(SignInError::from)?;
        let mut pending = self.browser_sign_ins.lock();
        pending.retain(|_, s| s.expires > now);
        if pending.len() >= MAX_BROWSER_SIGN_INS {
            return Err(BrokerError::Conflict("too many browser sign-ins in progress; try again in a few minutes".into()));
        }
        pending.insert(
            state.login.clone(),
            BrowserSignInState { expires: now + BROWSER_SIGN_IN_TTL, called_back: false, outcome: None, collected: false },
        );
        Ok(BrowserSignIn { login: state.login, url, expires_in: BROWSER_SIGN_IN_TTL.num_seconds() as u64 })
    }

    /// Where the IdP sends the browser back: `<public_url>/v1/auth/callback`.
    pub fn callback_url(&self) -> String {
        format!("{}/v1/auth/callback", self.config.base_url())
    }

    /// `GET /v1/auth/callback`: the browser is back from the IdP with a code
    /// (or an error). The `state` must be one this broker sealed, not expired,
    /// and not used before; the code is exchanged with the sign-in's PKCE
    /// verifier and the ID token must carry its nonce. Returns who signed in.
    pub async fn browser_callback(&self, state: &str, code: Option<&str>, error: Option<&str>) -> BrokerResult<CalledBack> {
        let idp = self.idp()?;
        let not_ours = || BrokerError::InvalidInput("this is not a sign-in this broker started".into());
        let sealed = URL_SAFE_NO_PAD.decode(state.trim()).map_err(|_| not_ours())?;
        let opened = self.sealing().open_for(STATE_CONTEXT, &sealed).map_err(|_| not_ours())?;
        let state: BrowserState = serde_json::from_str(opened.expose_secret()).map_err(|_| not_ours())?;
        if state.expires < self.now().timestamp() {
            return Err(SignInError::Expired.into());
        }
        // Some(true): known, its first callback; Some(false): a replay; None: unknown or expired.
        let first = self.browser_sign_ins.lock().get_mut(&state.login).map(|s| !std::mem::replace(&mut s.called_back, true));
        match first {
            None => return Err(SignInError::Expired.into()),
            Some(false) => {
                let why = "a sign-in's callback came a second time (a replayed or copied link)";
                self.refuse_sign_in(why, None).await;
                return Err(SignInError::Refused(why.into()).into());
            }
            Some(true) => {}
        }
        let outcome = match (code, error) {
            (_, Some("access_denied")) => Err(SignInError::Denied),
            (Some(code), None) => match idp.exchange_code(code, &state.verifier, &self.callback_url()).await {
                Ok(tokens) => match self.sign_in(idp, tokens, Some(&state.nonce)).await {
                    Ok(done) => Ok(done),
                    Err(BrokerError::SignIn(e)) => Err(e),
                    Err(e) => return Err(e),
                },
                Err(e) => Err(SignInError::Idp(e)),
            },
            (_, Some(other)) => Err(SignInError::Idp(IdpError::Refused { error: other.chars().take(64).collect(), description: None })),
            (None, None) => return Err(BrokerError::InvalidInput("the identity provider sent neither a code nor an error".into())),
        };
        if let Some(next) = state.web_next {
            // The browser itself keeps the session: nothing is left to collect.
            self.browser_sign_ins.lock().remove(&state.login);
            return match outcome {
                Ok(done) => Ok(CalledBack { user: done.user.clone(), web: Some((done.token.clone(), next)) }),
                Err(e) => Err(BrokerError::SignIn(e)),
            };
        }
        let answer = match &outcome {
            Ok(done) => Ok(CalledBack { user: done.user.clone(), web: None }),
            Err(e) => Err(BrokerError::SignIn(e.clone())),
        };
        if let Some(s) = self.browser_sign_ins.lock().get_mut(&state.login) {
            s.outcome = Some(outcome);
        }
        answer
    }

    /// `POST /v1/auth/browser/token`: whether the browser came back; once it
    /// has, what it came to (the session's token is handed over once).
    pub fn finish_browser_sign_in(&self, login: &str) -> BrokerResult<SignInPoll> {
        self.idp()?;
        let mut pending = self.browser_sign_ins.lock();
        let state = pending.get_mut(login.trim()).ok_or(BrokerError::SignIn(SignInError::Expired))?;
        if state.collected {
            return Err(SignInError::Expired.into());
        }
        let outcome = state.outcome.take();
        state.collected = outcome.is_some();
        match outcome {
            None => Ok(SignInPoll::Pending { slow_down: false }),
            Some(Ok(done)) => Ok(SignInPoll::Done(done)),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Verifies what the IdP sent (with the nonce this sign-in sent, if it
    /// sent one), and opens a session for the person it names.
    async fn sign_in(&self, idp: &Idp, tokens: Tokens, nonce: Option<&str>) -> BrokerResult<Box<SignedInSession>> {
        let claims = match idp.claims(&tokens, nonce).await {
            Ok(claims) => claims,
            Err(e @ IdpError::BadIdToken(_)) => {
                self.refuse_sign_in(&e.to_string(), None).await;
                return Err(SignInError::Idp(e).into());
            }
            Err(e) => return Err(SignInError::Idp(e).into()),
        };
        let identity = match identity_from_claims(&claims, &idp.config.claims) {
            Ok(identity) if is_reserved_name(&identity.name) => {
                let why = format!("the identity provider names this person `{}`, a name jit keeps for itself", identity.name);
                self.refuse_sign_in(&why, None).await;
                return Err(SignInError::Refused(why).into());
            }
            Ok(identity) => identity,
            Err(e) => {
                self.refuse_sign_in(&e.to_string(), None).await;
                return Err(SignInError::Refused(e.to_string()).into());
            }
        };
        self.warn_skipped_groups(&identity);
        let now = self.now();
        let token = generate(TOKEN_PREFIX);
        let hash = TokenHash::of(token.expose_secret());
        let ends_at = now + chrono::Duration::from_std(idp.config.session_max).unwrap_or(chrono::Duration::hours(12));
        let sign_in = SignIn {
            issuer: idp.config.issuer.clone(),
            subject: identity.subject.clone(),
            name: identity.name.clone(),
            groups: identity.groups.clone(),
            email: identity.email.clone(),
            refresh_sealed: tokens.refresh_token.as_ref().map(|r| self.sealing().seal_for(hash.0.as_bytes(), r)),
            token: hash,
            at: now,
            ends_at,
            next_check_at: self.next_check(now, ends_at),
        };
        let signed_in = match self.store.sign_in(&sign_in).await {
            Ok(s) => s,
            Err(StoreError::AlreadyExists(what)) => {
                let why = format!("{what}: a person the identity provider signs in cannot take it");
                self.refuse_sign_in(&why, Some(&identity.name)).await;
                return Err(SignInError::Refused(why).into());
            }
            Err(e) => return Err(e.into()),
        };
        if signed_in.groups_were.is_some() {
            self.known_tokens.forget_all();
        }
        if tokens.refresh_token.is_none() {
            tracing::warn!(user = %identity.name, "the identity provider gave no refresh token: the session ends at its first check (add `offline_access` to oidc.scopes, or allow refresh tokens for the client)");
        }
        tracing::info!(user = %signed_in.user.name, session = signed_in.session.id, first = signed_in.created, "signed in through the identity provider");
        Ok(Box::new(SignedInSession { user: signed_in.user, session: signed_in.session, token }))
    }

    fn warn_skipped_groups(&self, identity: &Identity) {
        if !identity.skipped_groups.is_empty() {
            tracing::warn!(user = %identity.name, groups = ?identity.skipped_groups, "groups from the identity provider that jit cannot name were left out");
        }
    }

    /// A sign-in refused is audited (never with a token in it).
    async fn refuse_sign_in(&self, why: &str, name: Option<&str>) {
        let mut e = NewEvent::new(OIDC_ACTOR, Action::SignInRefused);
        e.detail = Some(match name {
            Some(n) => format!("{n}: {why}"),
            None => why.to_string(),
        });
        tracing::warn!(reason = %why, "sign-in refused");
        if let Err(err) = self.store.append_events(vec![e], self.now()).await {
            tracing::error!(error = %err, "cannot audit a refused sign-in");
        }
    }

    fn next_check(&self, now: DateTime<Utc>, ends_at: DateTime<Utc>) -> DateTime<Utc> {
        let recheck = self.idp.as_ref().map(|i| i.config.recheck).unwrap_or_default();
        (now + chrono::Duration::from_std(recheck).unwrap_or(chrono::Duration::minutes(10))).min(ends_at)
    }

    /// `DELETE /v1/auth/session`: signs out of the caller's own session (a
    /// token user has none: nothing to end). Their grants stay: they were
    /// approved for the person, not the session.
    pub async fn sign_out(&self, auth: &crate::server::broker::Authenticated) -> BrokerResult<bool> {
        let Some(session) = &auth.session else { return Ok(false) };
        let changing = self.known_tokens.changing();
        let result = self.store.end_session(session.id, &auth.user.name, "signed out", false, self.now()).await;
        drop(changing); // even on an error: the end may have committed
        match result {
            Ok(_) | Err(StoreError::Conflict) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// The reaper's turn: asks the IdP about every session due for a check.
    /// Returns how many sessions ended.
    pub async fn recheck_sessions(&self) -> BrokerResult<usize> {
        let Some(idp) = self.idp.as_ref() else { return Ok(0) };
        let mut ended = 0;
        for session in self.store.sessions_due(self.now()).await? {
            if self.recheck(idp, &session).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// When the reaper next has a session to check.
    pub async fn next_session_check(&self) -> BrokerResult<Option<DateTime<Utc>>> {
        if self.idp.is_none() {
            return Ok(None);
        }
        Ok(self.store.next_session_check().await?)
    }

    async fn recheck(&self, idp: &Idp, session: &SessionRecord) -> BrokerResult<bool> {
        let refresh = match session.refresh_sealed.as_deref().map(|s| self.sealing().open_for(session.token.0.as_bytes(), s)) {
            Some(Ok(token)) => token,
            Some(Err(_)) => {
                return self
                    .end_for_idp(session, "its refresh token does not open with this broker's sealing key; sign in again", false)
                    .await;
            }
            None => {
                return self
                    .end_for_idp(session, "the identity provider gave no refresh token to check it with; sign in again", false)
                    .await;
            }
        };
        let now = self.now();
        let answer = match idp.refresh(&refresh).await {
            Ok(tokens) => match idp.claims(&tokens, None).await {
                Ok(claims) => Ok((tokens, claims)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match answer {
            Ok((tokens, claims)) => {
                let groups = match identity_from_claims(&claims, &idp.config.claims) {
                    Ok(identity) if identity.subject == claims_subject(&claims) => {
                        self.warn_skipped_groups(&identity);
                        identity.groups
                    }
                    _ => {
                        return self
                            .end_for_idp(session, "the identity provider no longer names this person as jit knows them", true)
                            .await;
                    }
                };
                let sealed = tokens.refresh_token.as_ref().map(|r| self.sealing().seal_for(session.token.0.as_bytes(), r));
                match self.store.session_checked(session.id, sealed, self.next_check(now, session.ends_at), Some(&groups), now).await {
                    Ok(true) => {
                        // Their groups changed: what they may do changed with them.
                        self.known_tokens.forget_all();
                        self.notify_change();
                    }
                    Ok(false) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(false)
            }
            Err(e) if e.person_refused() => {
                let why = format!("the identity provider no longer vouches for {}: {e}", session.user);
                self.end_for_idp(session, &why, true).await
            }
            Err(e) => {
                // Unreachable or odd: the session lives on (to its end at the latest) and is asked again soon.
                tracing::warn!(user = %session.user, session = session.id, error = %e, "session check: the identity provider did not answer; trying again");
                let retry = self.next_check(now, session.ends_at).min(now + RETRY_UNREACHABLE);
                match self.store.session_checked(session.id, None, retry, None, now).await {
                    Ok(_) | Err(StoreError::Conflict) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Ends a session the IdP no longer backs; with `whole_person`, all of
    /// theirs and their live grants (the reaper then ends those at the host).
    async fn end_for_idp(&self, session: &SessionRecord, why: &str, whole_person: bool) -> BrokerResult<bool> {
        let changing = self.known_tokens.changing();
        let result = self.store.end_session(session.id, OIDC_ACTOR, why, whole_person, self.now()).await;
        drop(changing);
        match result {
            Ok(removal) => {
                tracing::warn!(user = %session.user, session = session.id, grants = removal.grants.len(), reason = %why, "session ended");
                self.notify_change();
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn claims_subject(claims: &serde_json::Map<String, serde_json::Value>) -> String {
    claims.get("sub").and_then(|v| v.as_str()).unwrap_or_default().to_string()
}
