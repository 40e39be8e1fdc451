//! Broker sessions of people the identity provider signs in: the sign-in
//! (the person made a user the first time, their groups kept to the IdP's),
//! found by token, re-checked on schedule, and ended.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::audit::append;
use super::db::{all, first, ms, time};
use super::users::{ACTIVE_USERS, revoke_live_grants, user};
use crate::domain::audit::{Action, NewEvent, OIDC_ACTOR};
use crate::domain::records::{Removal, SessionRecord, SignIn, SignedIn, UserRecord};
use crate::domain::token::TokenHash;
use crate::store::chain::Chain;
use crate::store::rows;
use crate::store::{StoreError, StoreResult};

const LIVE_SESSIONS: &str = "SELECT s.*, u.name AS user_name, u.issuer AS user_issuer FROM sessions s
     JOIN users u ON u.id = s.user_id WHERE s.ended_at IS NULL AND u.removed_at IS NULL";

fn session(r: &Row) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        user: r.get("user_name")?,
        issuer: r.get::<_, Option<String>>("user_issuer")?.unwrap_or_default(),
        token: TokenHash(r.get("token_hash")?),
        refresh_sealed: r.get("refresh_sealed")?,
        created_at: time(r.get("created_at")?)?,
        ends_at: time(r.get("ends_at")?)?,
        next_check_at: time(r.get("next_check_at")?)?,
    })
}

/// Records a sign-in: makes the person a user the first time, sets their
/// groups to the IdP's, and opens the session, with their events. A name a
/// local user (or another person at the IdP) holds is refused with
/// [`StoreError::AlreadyExists`].
pub fn sign_in(conn: &Connection, chain: &mut Chain, new: &SignIn) -> StoreResult<SignedIn> {
    let existing = {
        let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND name = ?"))?;
        first(stmt.query([&new.name])?, |r| Ok((user(r)?.0, r.get::<_, Option<String>>("subject")?)))?
    };
    let mut events = Vec::new();
    let groups_json = serde_json::to_string(&new.groups).expect("strings serialize");
    let (user, created, groups_were) = match existing {
        None => {
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO users (name, groups_json, is_admin, token_hash, created_at, issuer, subject, email)
                     VALUES (?, ?, 0, NULL, ?, ?, ?, ?) RETURNING id",
                )?
                .query_row(params![new.name, groups_json, ms(new.at), new.issuer, new.subject, new.email], |r| r.get(0))?;
            let mut e = NewEvent::new(OIDC_ACTOR, Action::UserAdded);
            let groups = if new.groups.is_empty() { "no groups".to_string() } else { format!("groups: {}", new.groups.join(", ")) };
            e.detail = Some(format!("{} signed in for the first time through {} ({groups})", new.name, new.issuer));
            events.push(e);
            let user = UserRecord {
                id,
                name: new.name.clone(),
                groups: new.groups.clone(),
                admin: false,
                created_at: new.at,
                issuer: Some(new.issuer.clone()),
                email: new.email.clone(),
            };
            (user, true, None)
        }
        Some((user, subject)) => {
            if user.issuer.as_deref() != Some(new.issuer.as_str()) || subject.as_deref() != Some(new.subject.as_str()) {
                let whose = if user.issuer.is_none() { "a local user" } else { "another person at the identity provider" };
                return Err(StoreError::AlreadyExists(format!("the name `{}` ({whose} has it)", new.name)));
            }
            let mut user = user;
            if user.email != new.email {
                conn.execute("UPDATE users SET email = ? WHERE id = ?", params![new.email, user.id])?;
                user.email = new.email.clone();
            }
            let mut groups_were = None;
            if user.groups != new.groups {
                conn.execute("UPDATE users SET groups_json = ? WHERE id = ?", params![groups_json, user.id])?;
                events.push(rows::groups_event(&user.name, &user.groups, &new.groups));
                groups_were = Some(std::mem::replace(&mut user.groups, new.groups.clone()));
            }
            (user, false, groups_were)
        }
    };
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO sessions (user_id, token_hash, refresh_sealed, created_at, ends_at, next_check_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )?
        .query_row(params![user.id, new.token.0, new.refresh_sealed, ms(new.at), ms(new.ends_at), ms(new.next_check_at)], |r| r.get(0))?;
    let mut e = NewEvent::new(&user.name, Action::SignedIn);
    e.detail = Some(format!("session {id} through {}, until {}", new.issuer, new.ends_at.to_rfc3339()));
    events.push(e);
    append(conn, chain, &events, new.at)?;
    let session = SessionRecord {
        id,
        user_id: user.id,
        user: user.name.clone(),
        issuer: new.issuer.clone(),
        token: new.token.clone(),
        refresh_sealed: new.refresh_sealed.clone(),
        created_at: new.at,
        ends_at: new.ends_at,
        next_check_at: new.next_check_at,
    };
    Ok(SignedIn { user, session, created, groups_were })
}

/// The live session a token opens, with its person (the caller checks `ends_at`).
pub fn by_token(conn: &Connection, token: &TokenHash) -> StoreResult<Option<(UserRecord, SessionRecord)>> {
    let mut stmt = conn.prepare_cached(&format!("{LIVE_SESSIONS} AND s.token_hash = ?"))?;
    let Some(session) = first(stmt.query([&token.0])?, session)? else { return Ok(None) };
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND id = ?"))?;
    Ok(first(stmt.query([session.user_id])?, user)?.map(|(u, _)| (u, session)))
}

/// When and why the session a token opened ended, if it did.
pub fn end_of(conn: &Connection, token: &TokenHash) -> StoreResult<Option<(DateTime<Utc>, String)>> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT ended_at, end_reason FROM sessions WHERE token_hash = ? AND ended_at IS NOT NULL")?
        .query_row([&token.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(at, why)| Ok((time(at)?, why.unwrap_or_default()))).transpose()
}

/// Live sessions due for a check at `now` (those past their end are left: they no longer authenticate).
pub fn due(conn: &Connection, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("{LIVE_SESSIONS} AND s.next_check_at <= ? AND s.ends_at > ? ORDER BY s.next_check_at LIMIT 100"))?;
    all(stmt.query(params![ms(now), ms(now)])?, session)
}

/// The earliest check due of a live session.
pub fn next_check(conn: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let at: Option<i64> = conn.query_row(
        "SELECT MIN(s.next_check_at) FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.ended_at IS NULL AND u.removed_at IS NULL AND s.ends_at > s.next_check_at",
        [],
        |r| r.get(0),
    )?;
    at.map(time).transpose()
}

/// A check done: the new refresh token (when the IdP rotated it), the next
/// check, and the person's groups as the IdP now has them (none: unchanged).
/// Whether the groups changed.
pub fn checked(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    refresh_sealed: Option<&[u8]>,
    next_check_at: DateTime<Utc>,
    groups: Option<&[String]>,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let (user_id,): (i64,) = conn
        .prepare_cached("SELECT user_id FROM sessions WHERE id = ? AND ended_at IS NULL")?
        .query_row([id], |r| Ok((r.get(0)?,)))
        .optional()?
        .ok_or(StoreError::Conflict)?;
    match refresh_sealed {
        Some(sealed) => {
            conn.execute("UPDATE sessions SET refresh_sealed = ?, next_check_at = ? WHERE id = ?", params![sealed, ms(next_check_at), id])?
        }
        None => conn.execute("UPDATE sessions SET next_check_at = ? WHERE id = ?", params![ms(next_check_at), id])?,
    };
    let Some(groups) = groups else { return Ok(false) };
    let mut stmt = conn.prepare_cached(&format!("{ACTIVE_USERS} AND id = ?"))?;
    let (user, _) = first(stmt.query([user_id])?, user)?.ok_or(StoreError::Conflict)?;
    if user.groups == groups {
        return Ok(false);
    }
    let json = serde_json::to_string(groups).expect("strings serialize");
    conn.execute("UPDATE users SET groups_json = ? WHERE id = ?", params![json, user.id])?;
    append(conn, chain, &[rows::groups_event(&user.name, &user.groups, groups)], at)?;
    Ok(true)
}

/// Ends session `id` (already ended: [`StoreError::Conflict`]). With
/// `whole_person`, the IdP no longer vouches for them: every session of
/// theirs ends and every live grant is revoked, each with its event by `by`
/// giving `why`.
pub fn end(
    conn: &Connection,
    chain: &mut Chain,
    id: i64,
    by: &str,
    why: &str,
    whole_person: bool,
    at: DateTime<Utc>,
) -> StoreResult<Removal> {
    let (user_id, name): (i64, String) = conn
        .prepare_cached("SELECT s.user_id, u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.ended_at IS NULL")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::Conflict)?;
    let ended: Vec<i64> = if whole_person {
        let mut stmt = conn.prepare_cached("SELECT id FROM sessions WHERE user_id = ? AND ended_at IS NULL ORDER BY id")?;
        all(stmt.query([user_id])?, |r| Ok(r.get(0)?))?
    } else {
        vec![id]
    };
    let mut events = Vec::new();
    for session in &ended {
        conn.execute("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?", params![ms(at), why, session])?;
        let mut e = NewEvent::new(by, Action::SessionEnded);
        e.detail = Some(format!("{name}'s session {session}: {why}"));
        events.push(e);
    }
    let mut removal = Removal::default();
    if whole_person {
        removal.grants = revoke_live_grants(conn, user_id, by, why, at, &mut events)?;
    }
    append(conn, chain, &events, at)?;
    Ok(removal)
}
