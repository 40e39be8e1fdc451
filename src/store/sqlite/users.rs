//! Users: found by token, name or id (only those not removed), added,
//! removed with everything of theirs, and given a new token.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::audit::append;
use super::db::{all, first, ms, parsed, time};
use super::grants::grant;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::records::{NewUserRecord, Removal, UserRecord};
use crate::domain::request::RequestStatus;
use crate::domain::token::TokenHash;
use crate::store::chain::Chain;
use crate::store::rows;
use crate::store::{StoreError, StoreResult};

pub(super) fn user(r: &Row) -> StoreResult<(UserRecord, TokenHash)> {
    let name: String = r.get("name")?;
    let groups_json: String = r.get("groups_json")?;
    let groups = serde_json::from_str(&groups_json).map_err(|e| StoreError::Corrupt(format!("groups of {name}: {e}")))?;
    let record = UserRecord {
        id: r.get("id")?,
        name,
        groups,
        admin: r.get("is_admin")?,
        created_at: time(r.get("created_at")?)?,
        issuer: r.get("issuer")?,
        email: r.get("email")?,
    };
    Ok((record, TokenHash(r.get::<_, Option<String>>("token_hash")?.unwrap_or_default())))
}

/// Active users only: a removed user is kept for history but is nobody now.
pub(super) const ACTIVE_USERS: &str = "SELECT * FROM users WHERE removed_at IS NULL";

pub fn by_token(conn: &Connection, token: &TokenHash) -> StoreResult<Option<(UserRecord, TokenHash)>> {
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND token_hash = ?"))?;
    first(stmt.query([&token.0])?, user)
}

pub fn by_name(conn: &Connection, name: &str) -> StoreResult<Option<UserRecord>> {
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND name = ?"))?;
    Ok(first(stmt.query([name])?, user)?.map(|(u, _)| u))
}

pub fn by_id(conn: &Connection, id: i64) -> StoreResult<Option<UserRecord>> {
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND id = ?"))?;
    Ok(first(stmt.query([id])?, user)?.map(|(u, _)| u))
}

pub fn list(conn: &Connection) -> StoreResult<Vec<UserRecord>> {
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} ORDER BY name"))?;
    Ok(all(stmt.query([])?, user)?.into_iter().map(|(u, _)| u).collect())
}

pub fn admin_count(conn: &Connection) -> StoreResult<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND removed_at IS NULL", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

pub(super) fn active_id(conn: &Connection, name: &str) -> StoreResult<i64> {
    conn.prepare_cached("SELECT id FROM users WHERE name = ? AND removed_at IS NULL")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))
}

pub fn add(
    conn: &Connection,
    chain: &mut Chain,
    user: &NewUserRecord,
    token: &TokenHash,
    only_if_no_admin: bool,
    event: NewEvent,
) -> StoreResult<UserRecord> {
    if only_if_no_admin && admin_count(conn)? > 0 {
        return Err(StoreError::Conflict);
    }
    match active_id(conn, &user.name) {
        Ok(_) => return Err(StoreError::AlreadyExists(format!("user `{}`", user.name))),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let groups = serde_json::to_string(&user.groups).expect("strings serialize");
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO users (name, groups_json, is_admin, token_hash, created_at, email) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(params![user.name, groups, user.admin, token.0, ms(user.created_at), user.email], |r| r.get(0))?;
    append(conn, chain, &[event], user.created_at)?;
    Ok(UserRecord {
        id,
        name: user.name.clone(),
        groups: user.groups.clone(),
        admin: user.admin,
        created_at: user.created_at,
        issuer: None,
        email: user.email.clone(),
    })
}

/// Removes `name` and ends everything of theirs in the same transaction.
pub fn remove(
    conn: &Connection,
    chain: &mut Chain,
    name: &str,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
    event: NewEvent,
) -> StoreResult<Removal> {
    let user_id = active_id(conn, name)?;
    conn.execute("UPDATE users SET removed_at = ?, token_hash = NULL WHERE id = ?", params![ms(at), user_id])?;
    // Nothing of theirs authenticates: their sessions end too.
    conn.execute("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE user_id = ? AND ended_at IS NULL", params![ms(at), why, user_id])?;
    let mut removal = Removal::default();
    let mut events = Vec::new();
    removal.grants = revoke_live_grants(conn, user_id, by, why, at, &mut events)?;
    let request = |r: &Row| -> StoreResult<(i64, String, String)> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) };
    let pending = {
        let mut stmt = conn.prepare("SELECT id, repo, level FROM requests WHERE requester_id = ? AND status = ?")?;
        all(stmt.query(params![user_id, RequestStatus::Pending.as_str()])?, request)?
    };
    for (id, repo, level) in pending {
        conn.execute(
            "UPDATE requests SET status = ?, decided_at = ?, decided_by = ?, decision_note = ? WHERE id = ?",
            params![RequestStatus::Canceled.as_str(), ms(at), by, why, id],
        )?;
        let mut e = NewEvent::new(by, Action::Canceled);
        e.request_id = Some(id);
        e.repo = Some(repo);
        e.level = Some(parsed("level", &level)?);
        e.detail = Some(why.to_string());
        events.push(e);
        removal.requests.push(id);
    }
    // Their votes on requests still pending no longer count toward N of M.
    let voted = {
        let mut stmt = conn.prepare(
            "SELECT r.id, r.repo, r.level FROM approvals a JOIN requests r ON r.id = a.request_id
             WHERE a.approver = ? AND r.status = ? ORDER BY r.id",
        )?;
        all(stmt.query(params![name, RequestStatus::Pending.as_str()])?, request)?
    };
    for (id, repo, level) in voted {
        conn.execute("DELETE FROM approvals WHERE request_id = ? AND approver = ?", params![id, name])?;
        let mut e = NewEvent::new(by, Action::ApprovalWithdrawn);
        e.request_id = Some(id);
        e.repo = Some(repo);
        e.level = Some(parsed("level", &level)?);
        e.detail = Some(format!("{name}'s approval no longer counts: {why}"));
        events.push(e);
    }
    removal.credentials = delete_credentials_of(conn, user_id)?;
    events.push(event);
    append(conn, chain, &events, at)?;
    Ok(removal)
}

/// Revokes every grant of `user_id` live at `at`, each with a `revoked` event by `by` giving `why`.
pub(super) fn revoke_live_grants(
    conn: &Connection,
    user_id: i64,
    by: &str,
    why: &str,
    at: DateTime<Utc>,
    events: &mut Vec<NewEvent>,
) -> StoreResult<Vec<crate::domain::records::GrantRecord>> {
    let live = {
        let mut stmt = conn.prepare_cached("SELECT * FROM grants WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?")?;
        all(stmt.query(params![user_id, ms(at)])?, grant)?
    };
    for grant in &live {
        conn.execute("UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?", params![ms(at), by, grant.id])?;
        events.push(rows::revoked_event(grant, by, why));
    }
    Ok(live)
}

pub(super) fn delete_credentials_of(conn: &Connection, user_id: i64) -> StoreResult<u64> {
    let deleted = conn.execute("DELETE FROM credentials WHERE grant_id IN (SELECT id FROM grants WHERE user_id = ?)", [user_id])?;
    Ok(deleted as u64)
}

/// A new token for `name`; the gateway credentials minted under the old one are revoked.
pub fn set_token(
    conn: &Connection,
    chain: &mut Chain,
    name: &str,
    token: &TokenHash,
    at: DateTime<Utc>,
    mut event: NewEvent,
) -> StoreResult<u64> {
    let user_id = active_id(conn, name)?;
    conn.execute("UPDATE users SET token_hash = ? WHERE id = ?", params![token.0, user_id])?;
    let revoked = delete_credentials_of(conn, user_id)?;
    let before = event.detail.take().unwrap_or_default();
    event.detail = Some(format!("{before} ({revoked} git credential(s) minted under the old token revoked)"));
    append(conn, chain, &[event], at)?;
    Ok(revoked)
}
