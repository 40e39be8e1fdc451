//! Wire types of the broker's JSON API under `/v1`, shared by the server and
//! the client so the two cannot drift apart.
//!
//! Levels and durations travel as strings (`"write"`, `"1h30m"`) and are parsed
//! by the server with the domain's parsers, so a bad value gets the same clear
//! message from the API as from the command line.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::request::{GrantStatus, RequestStatus};
use crate::domain::token::{AuthScheme, SecretString, expose_optional_secret, expose_secret};

/// Every error response: `{"error": {"code": "...", "message": "...", "hint": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: see [`codes`].
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The id the broker gave this HTTP request (also its `X-Request-Id`
    /// header, and `request_id` in its log lines): quote it to an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The error codes the API returns. Clients branch on these, never on messages.
pub mod codes {
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    pub const NOT_FOUND: &str = "not_found";
    pub const UNKNOWN_REPO: &str = "unknown_repo";
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    pub const FORBIDDEN: &str = "forbidden";
    pub const POLICY_DENIED: &str = "policy_denied";
    pub const SELF_APPROVAL: &str = "self_approval";
    pub const NOT_APPROVER: &str = "not_approver";
    pub const NOT_PENDING: &str = "not_pending";
    pub const REQUEST_EXPIRED: &str = "request_expired";
    pub const GRANT_ENDED: &str = "grant_ended";
    pub const CONFLICT: &str = "conflict";
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A git host's API refused what the broker asked (its configuration needs fixing).
    pub const HOST_REFUSED: &str = "host_refused";
    /// A git host's API could not be reached or failed.
    pub const HOST_FAILED: &str = "host_failed";
    pub const INTERNAL: &str = "internal";
    /// The broker's database cannot be reached just now: try again shortly (HTTP 503, `Retry-After`).
    pub const UNAVAILABLE: &str = "unavailable";
    /// This broker has no `[oidc]`: people sign in with a token.
    pub const OIDC_NOT_CONFIGURED: &str = "oidc_not_configured";
    /// The person declined the sign-in at the identity provider.
    pub const SIGN_IN_DENIED: &str = "sign_in_denied";
    /// The sign-in's code expired before the person finished.
    pub const SIGN_IN_EXPIRED: &str = "sign_in_expired";
    /// The identity provider vouched for someone jit will not let in (the name is refused or taken).
    pub const SIGN_IN_REFUSED: &str = "sign_in_refused";
    /// The identity provider could not be reached, or answered as OIDC does not.
    pub const IDP_FAILED: &str = "idp_failed";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    #[schema(schema_with = schema::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schema::names)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub admin: bool,
    /// A local user with a token, where people sign in through an identity provider.
    #[serde(default)]
    pub service: bool,
    /// Where they are mailed (e-mail notifications to a rule's approvers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::email)]
    pub email: Option<String>,
}

/// A user with their freshly issued token: the only response that carries one.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub user: User,
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose_secret")]
    pub token: SecretString,
}

/// `GET /v1/auth` (no login needed): how people sign in to this broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuthMethods {
    /// `oidc` (the identity provider, device sign-in) and/or `token`.
    pub methods: Vec<String>,
    /// The identity provider, when `oidc` is a method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// `POST /v1/auth/device`: a device sign-in started at the identity provider.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceSignIn {
    /// The handle to finish it with (the device code, sealed: useless elsewhere).
    pub login: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// `GET /v1/replicas` (admins): a broker on this database, as it last said it was alive.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replica {
    /// `host:data-dir-hash`, as its `/healthz` says.
    pub id: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// Seen in the last 15 s.
    pub live: bool,
    /// The broker that answered this call.
    pub answering: bool,
}

/// `GET /v1/notifications` (admins): one notification destination and where its delivery stands.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationDestination {
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: String,
    /// A webhook's host; `(secret)` for Slack, whose URL is the credential.
    pub target: String,
    pub events: Vec<String>,
    pub rules: Vec<String>,
    /// Every audit event up to this one is delivered, passed over or given up on.
    pub delivered_seq: i64,
    /// Audit events after it (not all of them are this destination's).
    pub behind: i64,
    pub failures: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Events given up on (a day of failures, or refused by the receiver).
    pub given_up: u64,
}

/// `POST /v1/auth/browser`: a browser sign-in started (authorization code with PKCE).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrowserSignIn {
    /// The handle to collect it with.
    pub login: String,
    /// The identity provider's page to open.
    pub url: String,
    pub expires_in: u64,
}

/// `POST /v1/auth/device/token`'s and `/v1/auth/browser/token`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceLogin {
    pub login: String,
}

/// A broker session: how a person signed in through the identity provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: i64,
    pub issuer: String,
    pub ends_at: DateTime<Utc>,
}

/// `POST /v1/auth/device/token`'s answer: 202 `pending`/`slow_down`, or 200
/// `signed_in` with the session's token (shown this once).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignInStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "expose_optional_secret")]
    pub token: Option<SecretString>,
}

/// `GET /v1/whoami`: the caller, and how they signed in (`session` only
/// through the identity provider).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    #[serde(flatten)]
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Repo {
    pub name: String,
    /// The URL git uses (the gateway's, for repos it fronts).
    pub clone_url: Option<String>,
    /// Where the code lives, when the gateway fronts another host: `jit
    /// setup` sends git for this URL (and its SSH forms) to `clone_url`.
    #[serde(default)]
    pub upstream_url: Option<String>,
    /// The repo's URL at its host when grants there are memberships (a
    /// GitHub team, a GitLab project): git uses the person's own credentials
    /// for it, so `jit setup` and the helper leave it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_credentials_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateRequest {
    /// A configured repo's name or any of its URLs.
    #[schema(min_length = 1)]
    pub repo: String,
    #[schema(schema_with = schema::level)]
    pub level: String,
    #[schema(schema_with = schema::duration)]
    pub duration: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    pub reason: Option<String>,
    /// Refs the grant may update, within what the rule allows (`hotfix/*` is
    /// `refs/heads/hotfix/*`); none: all the rule allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = schema::ref_patterns)]
    pub refs: Vec<String>,
    /// Break-glass: granted at once under a break-glass rule (a reason is
    /// required), and reviewed afterwards by the rule's approvers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// A review of a break-glass grant (`jit review`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewBody {
    pub outcome: crate::domain::request::ReviewOutcome,
    /// Required to flag: what was wrong.
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    pub comment: Option<String>,
}

/// A break-glass grant's review, once given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Review {
    pub by: String,
    pub at: DateTime<Utc>,
    pub outcome: crate::domain::request::ReviewOutcome,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApproveBody {
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DenyBody {
    #[schema(schema_with = schema::required_text)]
    pub reason: String,
}

/// `POST /v1/grants/{id}/extend`: how much longer, and why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtendBody {
    /// Added to the grant's end: `1h`, `30m`.
    #[schema(schema_with = schema::duration)]
    pub duration: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokeBody {
    #[serde(default)]
    #[schema(schema_with = schema::optional_text)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// A request as the API shows it. Stable JSON: `jit request --json` prints this.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRequest {
    pub id: i64,
    pub status: RequestStatus,
    pub requester: String,
    pub repo: String,
    pub level: String,
    /// Canonical human form, e.g. `1h30m`.
    pub duration: String,
    pub duration_secs: u64,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When a still-pending request expires if nobody decides.
    pub pending_until: DateTime<Utc>,
    pub rule: String,
    /// The refs its grant may update; empty: every ref.
    #[serde(default)]
    pub refs: Vec<String>,
    pub approvals_required: u32,
    /// Who may approve, as the rule names them (users and `group:NAME`).
    pub approvers: Vec<String>,
    pub approvals: Vec<Approval>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    /// The deny reason or cancel note.
    pub decision_note: Option<String>,
    pub grant: Option<Grant>,
    /// True when nothing new was created: the caller's live grant already
    /// covers what was asked, and this is that grant's request.
    #[serde(default)]
    pub existing: bool,
    /// The grant this request lengthens (`jit extend`), if it is an extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends_grant: Option<i64>,
    /// What a pending request still lacks where its rule asks several groups
    /// (`needs 1 more from group:security`); on the answers for one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    /// Granted at once under a break-glass rule, for review afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// A break-glass request's review, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Grant {
    pub id: i64,
    pub request_id: i64,
    pub user: String,
    pub repo: String,
    pub level: String,
    /// The refs it may update; empty: every ref.
    #[serde(default)]
    pub refs: Vec<String>,
    pub clone_url: Option<String>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: GrantStatus,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    /// Seconds before its end that git warns it is ending (its rule's `warn_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_before_secs: Option<u64>,
}

/// `GET /v1/grants/failing` (admins): a grant that ended but whose host has
/// not yet revoked what it holds; the broker keeps trying.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailingGrant {
    pub grant: Grant,
    /// Failed attempts in a row.
    pub failures: u32,
    /// The last attempt's error.
    pub error: String,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `unhealthy` (with HTTP 503).
    pub status: String,
    pub version: String,
    /// Which broker answered (`host:data-dir-hash`), among those sharing a database.
    #[serde(default)]
    pub replica: String,
    /// `sqlite` or `postgresql`.
    #[serde(default)]
    pub database: String,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What needs an operator's eye while the broker still works (grants whose host has not agreed to their end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `GET /v1/audit/checkpoint`, and the last line of every export: the latest
/// signed checkpoint of the log's head, and the key that verifies it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub checkpoint: Option<crate::domain::audit::Checkpoint>,
    /// Base64 Ed25519 public key (`jit audit key`).
    pub public_key: String,
}

/// The result of `GET /v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    pub events: u64,
    pub error: Option<String>,
}

/// One grant's access period, as the audit log holds it (`GET
/// /v1/grants/{id}/report`, `jit audit grant ID`): its request, every event
/// naming the grant or its request, and the proof that those events are in
/// the chain the broker signed ([`crate::domain::audit_proof`]).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantReport {
    pub grant: Grant,
    pub request: Option<AccessRequest>,
    pub events: Vec<crate::domain::audit::AuditEvent>,
    pub proof: ReportProof,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportProof {
    /// The key the checkpoints verify with (`jit audit key`; pass your own copy with `--key`).
    pub public_key: String,
    /// For each run of the grant's events, the first checkpoint at or after it.
    pub checkpoints: Vec<crate::domain::audit::Checkpoint>,
    /// Other events between the grant's and those checkpoints (one write's others).
    pub links: Vec<crate::domain::audit::AuditEvent>,
}

/// A git credential for one grant (`POST /v1/grants/{id}/credentials`): the
/// one response besides token issuance that carries a secret.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Credential {
    pub username: String,
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose_secret")]
    pub password: SecretString,
    pub expires_at: DateTime<Utc>,
    /// How git sends it: `basic` (user name and password), or `bearer` (the
    /// password alone, as a Bearer token: git 2.46 or later).
    #[serde(default, skip_serializing_if = "AuthScheme::is_basic")]
    pub authtype: AuthScheme,
    pub grant: Grant,
}

/// What the broker's own checks accept, said in the description, so a client
/// (or Schemathesis) can tell a valid value from one that will be refused
/// before sending it. Each pattern restates a check in `domain`, named beside it.
pub mod schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
    use utoipa::openapi::{KnownFormat, RefOr};

    /// `domain::text::is_valid_name`: users, groups.
    pub const NAME: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
    /// `domain::text::check`: no control character but newline and tab,
    /// nothing `is_hidden`; at most `MAX_TEXT` characters.
    pub const TEXT: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]*$";
    /// `TEXT` with something in it besides white space.
    pub const REQUIRED_TEXT: &str = r"^(?!\s*$)[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]*$";
    /// `domain::duration`: days, hours, minutes, seconds, largest first, each
    /// once, one space at most between; not zero. (The parser takes up to
    /// 366 days in any units; the pattern says less, `360d 99h 99m 99s` at
    /// most, to stay inside it.)
    pub const DURATION: &str =
        r"^(?=.*[1-9])(?:(?:360|3[0-5][0-9]|[12][0-9]{2}|[0-9]{1,2})d ?)?(?:[0-9]{1,2}h ?)?(?:[0-9]{1,2}m ?)?(?:[0-9]{1,2}s)?$";
    /// `domain::refs::RefPattern::parse`: a branch (`hotfix/*`) or a full
    /// ref, as git would name it, `*` standing for any name characters.
    pub const REF_PATTERN: &str = r"^(?!.*\.\.)(?!.*@\{)(?!.*\.lock$)(?!.*[/.]$)(?!\.)(?!/)(?!.*/\.)(?!.*//)[^\u0000-\u0020\u007F~^:?\[\\\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]{1,60}$";

    fn string(pattern: &str) -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))
    }

    fn nullable(inner: ObjectBuilder) -> ObjectBuilder {
        inner.schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
    }

    pub fn name() -> Schema {
        string(NAME).into()
    }

    pub fn names() -> RefOr<Schema> {
        ArrayBuilder::new().items(string(NAME)).into()
    }

    pub fn level() -> Schema {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["read", "write", "admin"])).into()
    }

    pub fn duration() -> Schema {
        string(DURATION).description(Some("`2h`, `45m`, `1h30m`, `1d`")).into()
    }

    pub fn optional_text() -> Schema {
        nullable(string(TEXT)).max_length(Some(crate::domain::text::MAX_TEXT)).into()
    }

    pub fn required_text() -> Schema {
        string(REQUIRED_TEXT).max_length(Some(crate::domain::text::MAX_TEXT)).into()
    }

    pub fn ref_patterns() -> RefOr<Schema> {
        ArrayBuilder::new().items(string(REF_PATTERN)).into()
    }

    pub fn email() -> Schema {
        nullable(ObjectBuilder::new()).min_length(Some(3)).format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))).into()
    }
}
