//! Users on PostgreSQL: found by token, name or id (only those not
//! removed), added, removed with everything of theirs, and given a new token.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::audit::append;
use super::db::{Sql, error, get, parsed, stored};
use super::feed::announce;
use super::grants::grant;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::records::{GrantRecord, NewUserRecord, Removal, UserRecord};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;
use crate::store::rows;
use crate::store::{Change, StoreError, StoreResult};

pub(super) fn user(r: &Row) -> StoreResult<(UserRecord, TokenHash)> {
    let record = UserRecord {
        id: get(r, "id")?,
        name: get(r, "name")?,
        groups: get(r, "groups")?,
        admin: get(r, "is_admin")?,
        created_at: get(r, "created_at")?,
        issuer: get(r, "issuer")?,
        email: get(r, "email")?,
    };
    Ok((record, TokenHash(get::<Option<String>>(r, "token_hash")?.unwrap_or_default())))
}

/// Active users only: a removed user is kept for history but is nobody now.
pub(super) const ACTIVE_USERS: &str = "SELECT * FROM users WHERE removed_at IS NULL";

pub async fn by_token(c: &impl Sql, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
    let row = c.query_opt(&format!("{ACTIVE_USERS} AND token_hash = $1"), &[&token.0]).await.map_err(error)?;
    row.as_ref().map(user).transpose()
}

pub async fn by_name(c: &impl Sql, name: &str) -> StoreResult<Option<UserRecord>> {
    let row = c.query_opt(&format!("{ACTIVE_USERS} AND name = $1"), &[&name]).await.map_err(error)?;
    Ok(row.as_ref().map(user).transpose()?.map(|(u, _)| u))
}

pub async fn by_id(c: &impl Sql, id: i64) -> StoreResult<Option<UserRecord>> {
    let row = c.query_opt(&format!("{ACTIVE_USERS} AND id = $1"), &[&id]).await.map_err(error)?;
    Ok(row.as_ref().map(user).transpose()?.map(|(u, _)| u))
}

pub async fn list(c: &impl Sql) -> StoreResult<Vec<UserRecord>> {
    let rows = c.query(&format!("{ACTIVE_USERS} ORDER BY name"), &[]).await.map_err(error)?;
    rows.iter().map(|r| user(r).map(|(u, _)| u)).collect()
}

pub async fn admin_count(c: &impl Sql) -> StoreResult<u64> {
    let row = c.query_one("SELECT COUNT(*) AS n FROM users WHERE is_admin AND removed_at IS NULL", &[]).await.map_err(error)?;
    Ok(get::<i64>(&row, "n")?.max(0) as u64)
}

async fn active_id(c: &impl Sql, name: &str) -> StoreResult<i64> {
    let row = c.query_opt("SELECT id FROM users WHERE name = $1 AND removed_at IS NULL", &[&name]).await.map_err(error)?;
    match row {
        Some(r) => get(&r, "id"),
        None => Err(StoreError::NotFound(format!("user `{name}`"))),
    }
}

pub async fn add(
    tx: &impl Sql,
    key: &SigningKey,
    user: &NewUserRecord,
    token: &TokenHash,
    only_if_no_admin: bool,
    event: NewEvent,
) -> StoreResult<UserRecord> {
    if only_if_no_admin {
        // Two replicas bootstrapping at once: the second waits here, then sees the first's admin.
        tx.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", &[]).await.map_err(error)?;
        if admin_count(tx).await? > 0 {
            return Err(StoreError::Conflict);
        }
    }
    match active_id(tx, &user.name).await {
        Ok(_) => return Err(StoreError::AlreadyExists(format!("user `{}`", user.name))),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let created_at = stored(user.created_at);
    let row = tx
        .query_one(
            "INSERT INTO users (name, groups, is_admin, token_hash, created_at, email) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&user.name, &user.groups, &user.admin, &token.0, &created_at, &user.email],
        )
        .await
        .map_err(|e| match error(e) {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("user `{}`", user.name)),
            other => other,
        })?;
    append(tx, key, &[event], user.created_at).await?;
    Ok(UserRecord {
        id: get(&row, "id")?,
        name: user.name.clone(),
        groups: user.groups.clone(),
        admin: user.admin,
        created_at,
        issuer: None,
        email: user.email.clone(),
    })
}

/// Removes `name` and ends everything of theirs in the same transaction.
pub async fn remove(
    tx: &impl Sql,
    key: &SigningKey,
    name: &str,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<Removal> {
    let user_id = active_id(tx, name).await?;
    let when = stored(at);
    tx.execute("UPDATE users SET removed_at = $1, token_hash = NULL WHERE id = $2", &[&when, &user_id]).await.map_err(error)?;
    // Nothing of theirs authenticates: their sessions end too.
    tx.execute("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE user_id = $3 AND ended_at IS NULL", &[&when, &why, &user_id])
        .await
        .map_err(error)?;
    let mut removal = Removal::default();
    let mut events = Vec::new();
    removal.grants = revoke_live_grants(tx, user_id, by, why, at, &mut events).await?;
    let pending = tx
        .query(
            "UPDATE requests SET status = $1, decided_at = $2, decided_by = $3, decision_note = $4
             WHERE requester_id = $5 AND status = $6 RETURNING id, repo, level",
            &[&RequestStatus::Canceled.as_str(), &when, &by, &why, &user_id, &RequestStatus::Pending.as_str()],
        )
        .await
        .map_err(error)?;
    let mut pending: Vec<(i64, String, String)> =
        pending.iter().map(|r| Ok((get(r, "id")?, get(r, "repo")?, get(r, "level")?))).collect::<StoreResult<_>>()?;
    pending.sort();
    for (id, repo, level) in pending {
        let mut e = NewEvent::new(by, Action::Canceled);
        e.request_id = Some(id);
        e.repo = Some(repo);
        e.level = Some(parsed("level", &level)?);
        e.detail = Some(why.to_string());
        events.push(e);
        removal.requests.push(id);
    }
    // Their votes on requests still pending no longer count toward N of M.
    let voted = tx
        .query(
            "DELETE FROM approvals a USING requests r WHERE r.id = a.request_id AND a.approver = $1 AND r.status = $2
             RETURNING r.id, r.repo, r.level",
            &[&name, &RequestStatus::Pending.as_str()],
        )
        .await
        .map_err(error)?;
    let mut voted: Vec<(i64, String, String)> =
        voted.iter().map(|r| Ok((get(r, "id")?, get(r, "repo")?, get(r, "level")?))).collect::<StoreResult<_>>()?;
    voted.sort();
    for (id, repo, level) in voted {
        let mut e = NewEvent::new(by, Action::ApprovalWithdrawn);
        e.request_id = Some(id);
        e.repo = Some(repo);
        e.level = Some(parsed("level", &level)?);
        e.detail = Some(format!("{name}'s approval no longer counts: {why}"));
        events.push(e);
    }
    removal.credentials = delete_credentials_of(tx, user_id).await?;
    announce(tx, &Change::Identities).await?;
    announce(tx, &Change::Grants).await?;
    events.push(event);
    append(tx, key, &events, at).await?;
    Ok(removal)
}

/// Revokes every grant of `user_id` live at `at`, each with a `revoked` event by `by` giving `why`.
pub(super) async fn revoke_live_grants(
    tx: &impl Sql,
    user_id: i64,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
    events: &mut Vec<NewEvent>,
) -> StoreResult<Vec<GrantRecord>> {
    let when = stored(at);
    let rows = tx
        .query(
            "UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 RETURNING *",
            &[&when, &by, &user_id],
        )
        .await
        .map_err(error)?;
    let mut live = rows.iter().map(grant).collect::<StoreResult<Vec<_>>>()?;
    live.sort_by_key(|g| g.id);
    for g in &mut live {
        // As they were before this revocation (what the caller ends at the host).
        g.revoked_at = None;
        g.revoked_by = None;
        events.push(rows::revoked_event(g, by, why));
    }
    Ok(live)
}

pub(super) async fn delete_credentials_of(tx: &impl Sql, user_id: i64) -> StoreResult<u64> {
    tx.execute("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE user_id = $1)", &[&user_id]).await.map_err(error)
}

/// A new token for `name`; the gateway credentials minted under the old one are revoked.
pub async fn set_token(
    tx: &impl Sql,
    key: &SigningKey,
    name: &str,
    token: &TokenHash,
    at: DateTime<Utc>,
    mut event: NewEvent,
) -> StoreResult<u64> {
    let user_id = active_id(tx, name).await?;
    tx.execute("UPDATE users SET token_hash = $1 WHERE id = $2", &[&token.0, &user_id]).await.map_err(error)?;
    let revoked = delete_credentials_of(tx, user_id).await?;
    announce(tx, &Change::Identities).await?;
    let before = event.detail.take().unwrap_or_default();
    event.detail = Some(format!("{before} ({revoked} git credential(s) minted under the old token revoked)"));
    append(tx, key, &[event], at).await?;
    Ok(revoked)
}
