//! Who is calling, from where: the [`ClientAddr`] and [`Caller`] extractors.
//!
//! The header is read as a typed `Authorization: Bearer` (axum-extra); what is
//! missing or malformed is said here, and the token itself is checked by
//! [`Broker::authenticate`]. A source (or user) that failed too often is told
//! to wait (429, `Retry-After`) before its token is even looked at; every
//! failure is counted and logged. No message ever echoes the token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum_extra::TypedHeader;
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Bearer;
use axum_extra::typed_header::TypedHeaderRejectionReason;

use super::broker::Broker;
use super::error::ApiError;
use crate::store::UserRecord;

/// The authenticated user making the call.
pub struct Caller(pub UserRecord);

/// The client's address: the peer, or what a trusted proxy says it saw.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(parts: &Parts, broker: &Broker) -> ClientAddr {
        // The listener puts the peer on every request; a request from elsewhere (tests) is unspecified.
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        ClientAddr(broker.client_ip(peer, forwarded))
    }
}

impl FromRequestParts<Arc<Broker>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts, broker))
    }
}

impl FromRequestParts<Arc<Broker>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        let ClientAddr(addr) = ClientAddr::of(parts, broker);
        if let Some(wait) = broker.auth_wait(addr, None) {
            return Err(ApiError::rate_limited("too many failed logins from this address", wait));
        }
        let header = TypedHeader::<Authorization<Bearer>>::from_request_parts(parts, broker).await.map_err(|rejection| match rejection
            .reason()
        {
            TypedHeaderRejectionReason::Missing => {
                ApiError::unauthenticated("missing bearer token").with_hint("run `jit login`, or set JIT_TOKEN")
            }
            _ => ApiError::unauthenticated("malformed Authorization header: expected `Bearer <token>`"),
        })?;
        let token = header.token().trim();
        if token.is_empty() {
            return Err(ApiError::unauthenticated("malformed Authorization header: expected `Bearer <token>`"));
        }
        match broker.authenticate(token).await {
            Ok(user) => Ok(Caller(user)),
            Err(e @ crate::server::broker::BrokerError::InvalidToken) => {
                broker.auth_failed(addr, None, "unknown token");
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
