//! Broker sessions on PostgreSQL: the sign-in (the person made a user the
//! first time, their groups kept to the IdP's), found by token, re-checked
//! on schedule, and ended.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tokio_postgres::Row;

use super::audit::append;
use super::db::{Sql, error, get, stored};
use super::feed::announce;
use super::users::{ACTIVE_USERS, revoke_live_grants, user};
use crate::domain::audit::{Action, NewEvent, OIDC_ACTOR};
use crate::domain::records::{Removal, SessionRecord, SignIn, SignedIn, UserRecord};
use crate::domain::token::TokenHash;
use crate::store::rows;
use crate::store::{Change, StoreError, StoreResult};

const LIVE_SESSIONS: &str = "SELECT s.*, u.name AS user_name, u.issuer AS user_issuer FROM sessions s
     JOIN users u ON u.id = s.user_id WHERE s.ended_at IS NULL AND u.removed_at IS NULL";

fn session(r: &Row) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        user: get(r, "user_name")?,
        issuer: get::<Option<String>>(r, "user_issuer")?.unwrap_or_default(),
        token: TokenHash(get(r, "token_hash")?),
        refresh_sealed: get(r, "refresh_sealed")?,
        created_at: get(r, "created_at")?,
        ends_at: get(r, "ends_at")?,
        next_check_at: get(r, "next_check_at")?,
    })
}

/// Records a sign-in (see the SQLite store's `sign_in`).
pub async fn sign_in(tx: &impl Sql, key: &SigningKey, new: &SignIn) -> StoreResult<SignedIn> {
    let existing = tx.query_opt(&format!("{ACTIVE_USERS} AND name = $1 FOR UPDATE"), &[&new.name]).await.map_err(error)?;
    let existing = existing.map(|r| Ok::<_, StoreError>((user(&r)?.0, get::<Option<String>>(&r, "subject")?))).transpose()?;
    let mut events = Vec::new();
    let at = stored(new.at);
    let (user, created, groups_were) = match existing {
        None => {
            let row = tx
                .query_one(
                    "INSERT INTO users (name, groups, is_admin, token_hash, created_at, issuer, subject, email)
                     VALUES ($1, $2, FALSE, NULL, $3, $4, $5, $6) RETURNING id",
                    &[&new.name, &new.groups, &at, &new.issuer, &new.subject, &new.email],
                )
                .await
                .map_err(error)?;
            let mut e = NewEvent::new(OIDC_ACTOR, Action::UserAdded);
            let groups = if new.groups.is_empty() { "no groups".to_string() } else { format!("groups: {}", new.groups.join(", ")) };
            e.detail = Some(format!("{} signed in for the first time through {} ({groups})", new.name, new.issuer));
            events.push(e);
            let user = UserRecord {
                id: get(&row, "id")?,
                name: new.name.clone(),
                groups: new.groups.clone(),
                admin: false,
                created_at: at,
                issuer: Some(new.issuer.clone()),
                email: new.email.clone(),
            };
            (user, true, None)
        }
        Some((mut user, subject)) => {
            if user.issuer.as_deref() != Some(new.issuer.as_str()) || subject.as_deref() != Some(new.subject.as_str()) {
                let whose = if user.issuer.is_none() { "a local user" } else { "another person at the identity provider" };
                return Err(StoreError::AlreadyExists(format!("the name `{}` ({whose} has it)", new.name)));
            }
            if user.email != new.email {
                tx.execute("UPDATE users SET email = $1 WHERE id = $2", &[&new.email, &user.id]).await.map_err(error)?;
                user.email = new.email.clone();
            }
            let mut groups_were = None;
            if user.groups != new.groups {
                tx.execute("UPDATE users SET groups = $1 WHERE id = $2", &[&new.groups, &user.id]).await.map_err(error)?;
                announce(tx, &Change::Identities).await?;
                events.push(rows::groups_event(&user.name, &user.groups, &new.groups));
                groups_were = Some(std::mem::replace(&mut user.groups, new.groups.clone()));
            }
            (user, false, groups_were)
        }
    };
    let (ends_at, next_check_at) = (stored(new.ends_at), stored(new.next_check_at));
    let row = tx
        .query_one(
            "INSERT INTO sessions (user_id, token_hash, refresh_sealed, created_at, ends_at, next_check_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&user.id, &new.token.0, &new.refresh_sealed, &at, &ends_at, &next_check_at],
        )
        .await
        .map_err(error)?;
    let id: i64 = get(&row, "id")?;
    let mut e = NewEvent::new(&user.name, Action::SignedIn);
    e.detail = Some(format!("session {id} through {}, until {}", new.issuer, new.ends_at.to_rfc3339()));
    events.push(e);
    append(tx, key, &events, new.at).await?;
    let session = SessionRecord {
        id,
        user_id: user.id,
        user: user.name.clone(),
        issuer: new.issuer.clone(),
        token: new.token.clone(),
        refresh_sealed: new.refresh_sealed.clone(),
        created_at: at,
        ends_at,
        next_check_at,
    };
    Ok(SignedIn { user, session, created, groups_were })
}

/// The live session a token opens, with its person (the caller checks `ends_at`).
pub async fn by_token(c: &impl Sql, token: &TokenHash) -> StoreResult<Option<(UserRecord, SessionRecord)>> {
    let row = c.query_opt(&format!("{LIVE_SESSIONS} AND s.token_hash = $1"), &[&token.0]).await.map_err(error)?;
    let Some(session) = row.as_ref().map(session).transpose()? else { return Ok(None) };
    let row = c.query_opt(&format!("{ACTIVE_USERS} AND id = $1"), &[&session.user_id]).await.map_err(error)?;
    Ok(row.as_ref().map(user).transpose()?.map(|(u, _)| (u, session)))
}

/// When and why the session a token opened ended, if it did.
pub async fn end_of(c: &impl Sql, token: &TokenHash) -> StoreResult<Option<(DateTime<Utc>, String)>> {
    let row = c
        .query_opt("SELECT ended_at, end_reason FROM sessions WHERE token_hash = $1 AND ended_at IS NOT NULL", &[&token.0])
        .await
        .map_err(error)?;
    row.map(|r| Ok((get(&r, "ended_at")?, get::<Option<String>>(&r, "end_reason")?.unwrap_or_default()))).transpose()
}

/// Live sessions due for a check at `now` (those past their end are left: they no longer authenticate).
pub async fn due(c: &impl Sql, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
    let rows = c
        .query(&format!("{LIVE_SESSIONS} AND s.next_check_at <= $1 AND s.ends_at > $1 ORDER BY s.next_check_at LIMIT 100"), &[&stored(now)])
        .await
        .map_err(error)?;
    rows.iter().map(session).collect()
}

/// The earliest check due of a live session.
pub async fn next_check(c: &impl Sql) -> StoreResult<Option<DateTime<Utc>>> {
    let row = c
        .query_one(
            "SELECT MIN(s.next_check_at) AS t FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.ended_at IS NULL AND u.removed_at IS NULL AND s.ends_at > s.next_check_at",
            &[],
        )
        .await
        .map_err(error)?;
    get(&row, "t")
}

/// A check done (see [`crate::store::Store::session_checked`]). Whether the groups changed.
pub async fn checked(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    refresh_sealed: Option<&[u8]>,
    next_check_at: DateTime<Utc>,
    groups: Option<&[String]>,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let row = tx
        .query_opt(
            "UPDATE sessions SET refresh_sealed = COALESCE($1, refresh_sealed), next_check_at = $2 WHERE id = $3 AND ended_at IS NULL
             RETURNING user_id",
            &[&refresh_sealed, &stored(next_check_at), &id],
        )
        .await
        .map_err(error)?
        .ok_or(StoreError::Conflict)?;
    let user_id: i64 = get(&row, "user_id")?;
    let Some(groups) = groups else { return Ok(false) };
    let row = tx.query_opt(&format!("{ACTIVE_USERS} AND id = $1 FOR UPDATE"), &[&user_id]).await.map_err(error)?;
    let (user, _) = row.as_ref().map(user).transpose()?.ok_or(StoreError::Conflict)?;
    if user.groups == groups {
        return Ok(false);
    }
    tx.execute("UPDATE users SET groups = $1 WHERE id = $2", &[&groups, &user.id]).await.map_err(error)?;
    announce(tx, &Change::Identities).await?;
    append(tx, key, &[rows::groups_event(&user.name, &user.groups, groups)], at).await?;
    Ok(true)
}

/// Ends session `id` (already ended: [`StoreError::Conflict`]); with
/// `whole_person`, every session of theirs and every live grant too.
pub async fn end(
    tx: &impl Sql,
    key: &SigningKey,
    id: i64,
    by: &str,
    why: &str,
    whole_person: bool,
    at: DateTime<Utc>,
) -> StoreResult<Removal> {
    let row = tx
        .query_opt(
            "SELECT s.user_id, u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.ended_at IS NULL FOR UPDATE OF s",
            &[&id],
        )
        .await
        .map_err(error)?
        .ok_or(StoreError::Conflict)?;
    let (user_id, name): (i64, String) = (get(&row, "user_id")?, get(&row, "name")?);
    let when = stored(at);
    let ended = if whole_person {
        tx.query(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE user_id = $3 AND ended_at IS NULL RETURNING id",
            &[&when, &why, &user_id],
        )
        .await
    } else {
        tx.query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 RETURNING id", &[&when, &why, &id]).await
    }
    .map_err(error)?;
    let mut ended: Vec<i64> = ended.iter().map(|r| get(r, "id")).collect::<StoreResult<_>>()?;
    ended.sort_unstable();
    let mut events = Vec::new();
    for session in &ended {
        let mut e = NewEvent::new(by, Action::SessionEnded);
        e.detail = Some(format!("{name}'s session {session}: {why}"));
        events.push(e);
    }
    let mut removal = Removal::default();
    if whole_person {
        removal.grants = revoke_live_grants(tx, user_id, by, why, at, &mut events).await?;
        announce(tx, &Change::Grants).await?;
    }
    announce(tx, &Change::Identities).await?;
    append(tx, key, &events, at).await?;
    Ok(removal)
}
