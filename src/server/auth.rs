//! Bearer-token authentication: the [`Caller`] extractor.
//!
//! The token is hashed and looked up by hash; the stored hash is then compared
//! in constant time. Failures say what was wrong (missing header, malformed
//! header, unknown token) but never echo the token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::broker::Broker;
use super::error::ApiError;
use crate::domain::token::TokenHash;
use crate::store::UserRecord;

/// The authenticated user making the call.
pub struct Caller(pub UserRecord);

/// An authenticated admin.
pub struct AdminCaller(pub UserRecord);

impl FromRequestParts<Arc<Broker>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing bearer token").with_hint("run `jit login`, or set JIT_TOKEN"))?;
        let value = header.to_str().map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("malformed Authorization header: expected `Bearer <token>`"))?;
        let presented = TokenHash::of(token);
        match broker.store.user_by_token(&presented).await? {
            Some((user, stored)) if stored.matches(&presented) => Ok(Caller(user)),
            _ => Err(ApiError::unauthenticated("invalid or revoked token")
                .with_hint("run `jit login` with a current token; an admin can issue one with `jit admin token rotate`")),
        }
    }
}

impl FromRequestParts<Arc<Broker>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, broker: &Arc<Broker>) -> Result<Self, Self::Rejection> {
        let Caller(user) = Caller::from_request_parts(parts, broker).await?;
        if !user.admin {
            return Err(ApiError::forbidden(format!("{} is not an admin", user.name)));
        }
        Ok(AdminCaller(user))
    }
}
