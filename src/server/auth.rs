//! Bearer-token authentication: the [`Caller`] extractor.
//!
//! The header is read as a typed `Authorization: Bearer` (axum-extra); what is
//! missing or malformed is said here, and the token itself is checked by
//! [`Broker::authenticate`]. No message ever echoes the token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
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

impl FromRequestParts<Arc<Broker>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
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
        Ok(Caller(broker.authenticate(token).await?))
    }
}
