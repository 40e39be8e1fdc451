//! What a broker operation can come to, in the broker's own terms. The HTTP
//! mapping (status, stable code, hint) lives in `server::error`, and only there.

use crate::domain::Level;
use crate::domain::policy::Refusal;
use crate::domain::repo::RepoError;
use crate::domain::request::{DecisionError, GrantStatus};
use crate::providers::ProviderError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A value the caller sent is malformed or out of range.
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("{0} not found")]
    NotFound(String),
    /// No token, or one the broker does not know (missing/malformed headers are the HTTP layer's).
    #[error("invalid or revoked token")]
    InvalidToken,
    /// A session token whose session is over: signed out, past `session_max`,
    /// or ended because the identity provider stopped vouching for the person.
    #[error("your session ended {0}")]
    SessionEnded(String),
    /// Authenticated, but the caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Policy refuses the request as asked.
    #[error(transparent)]
    Policy(#[from] Refusal),
    /// Policy changed since the request was made and no longer allows it.
    #[error("policy no longer allows this request: {0}")]
    PolicyChanged(Refusal),
    /// The request's state machine refuses the decision.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error("grant {id} has ended: {}", if *superseded { "a later grant of yours replaced it, and that one has ended too".to_string() } else { format!("it {}", status.phrase()) })]
    GrantEnded { id: i64, status: GrantStatus, repo: String, level: Level, superseded: bool },
    /// Nobody can decide this now (a race kept winning, or a bootstrap already happened).
    #[error("{0}")]
    Conflict(String),
    #[error("no provider mints credentials for `{0}`")]
    NoProvider(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(StoreError),
    /// Signing in through the identity provider did not succeed.
    #[error(transparent)]
    SignIn(#[from] SignInError),
}

/// Why a sign-in through the identity provider did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignInError {
    #[error("this broker does not sign people in through an identity provider")]
    NotConfigured,
    #[error("the sign-in was declined at the identity provider")]
    Denied,
    #[error("the sign-in code expired before it was used")]
    Expired,
    /// The IdP vouched for someone jit will not let in; the message says why.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Idp(#[from] crate::server::oidc::IdpError),
}

impl BrokerError {
    /// Whether the database is damaged (not merely unreachable).
    pub fn database_damaged(&self) -> bool {
        matches!(self, BrokerError::Store(crate::store::StoreError::Corrupt(_)))
    }

    /// Whether the database could not be reached or answer (a passing state: try again).
    pub fn database_unavailable(&self) -> bool {
        matches!(self, BrokerError::Store(crate::store::StoreError::Unavailable(_)))
    }
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => BrokerError::NotFound(what),
            StoreError::AlreadyExists(what) => BrokerError::Conflict(format!("{what} already exists")),
            StoreError::Conflict => BrokerError::Conflict("the resource changed concurrently; try again".into()),
            other => BrokerError::Store(other),
        }
    }
}

pub type BrokerResult<T> = Result<T, BrokerError>;
