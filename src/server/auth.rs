//! Who is calling, from where: the [`ClientAddr`] and [`Caller`] extractors.
//!
//! The header is read as a typed `Authorization: Bearer` (axum-extra); what is
//! missing or malformed is said here, and the token itself is checked by
//! [`Broker::authenticate`]. A source that failed too often is told to wait
//! (429, `Retry-After`) whenever its token is wrong, but a valid token always
//! passes; every failure is counted and logged. No message ever echoes the token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum_extra::TypedHeader;
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Bearer;
use axum_extra::typed_header::TypedHeaderRejectionReason;

use super::broker::{Authenticated, Broker};
use super::error::ApiError;
use crate::domain::records::UserRecord;

/// The authenticated user making the call.
pub struct Caller(pub UserRecord);

/// The client's address: the peer, or what a trusted proxy says it saw.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// Every `X-Forwarded-For` line counts (a proxy may append its own); a
    /// trusted proxy's hop that is no address, or a line that is not text,
    /// is refused rather than guessed at.
    pub fn of(parts: &Parts, broker: &Broker) -> Result<ClientAddr, ApiError> {
        // The listener puts the peer on every request; a request from elsewhere (tests) is unspecified.
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let lines = parts.headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("\u{fffd}"));
        broker.client_ip(peer, lines).map(ClientAddr).map_err(|e| {
            tracing::warn!(%peer, error = %e, "request refused: unreadable X-Forwarded-For");
            ApiError::bad_input(format!("{e}; the proxy in front of jit must forward plain addresses"))
        })
    }
}

impl FromRequestParts<Arc<Broker>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        ClientAddr::of(parts, broker)
    }
}

/// The caller with how they signed in (their broker session, if the identity provider signed them in).
pub struct CallerSession(pub Authenticated);

impl FromRequestParts<Arc<Broker>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        Ok(Caller(authenticated(parts, broker).await?.user))
    }
}

impl FromRequestParts<Arc<Broker>> for CallerSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        Ok(CallerSession(authenticated(parts, broker).await?))
    }
}

async fn authenticated(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Authenticated, ApiError> {
    let ClientAddr(addr) = ClientAddr::of(parts, broker)?;
    let header =
        TypedHeader::<Authorization<Bearer>>::from_request_parts(parts, broker).await.map_err(|rejection| match rejection.reason() {
            TypedHeaderRejectionReason::Missing => {
                ApiError::unauthenticated("missing bearer token").with_hint("run `jit login`, or set JIT_TOKEN")
            }
            _ => ApiError::unauthenticated("malformed Authorization header: expected `Bearer <token>`"),
        })?;
    let token = header.token().trim();
    if token.is_empty() {
        return Err(ApiError::unauthenticated("malformed Authorization header: expected `Bearer <token>`"));
    }
    match broker.authenticate_session(token).await {
        Ok(auth) => Ok(auth),
        Err(e @ crate::server::broker::BrokerError::InvalidToken) => match broker.auth_failed(addr, None, "unknown token") {
            Some(wait) => Err(ApiError::rate_limited("too many failed logins from this address", wait)),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}
