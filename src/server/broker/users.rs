//! Users and their tokens: authentication, and the one way a user is created.

use super::{Authenticated, Broker, BrokerError, BrokerResult};
use crate::domain::audit::{Action, BROKER_ACTOR, NewEvent, is_reserved_name};
use crate::domain::policy::is_valid_name;
use crate::domain::records::{NewUserRecord, Removal, UserRecord};
use crate::domain::token::{ExposeSecret, SecretString, TOKEN_PREFIX, TokenHash, generate};
use crate::store::StoreError;

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    /// Where they are mailed (e-mail notifications to a rule's approvers).
    pub email: Option<String>,
}

/// An e-mail address as SMTP takes it (lettre's parser), or why not.
fn check_email(address: &str) -> BrokerResult<String> {
    address
        .parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|e| BrokerError::InvalidInput(format!("invalid e-mail address `{}`: {e}", address.escape_default())))
}

fn check_name(kind: &str, name: &str) -> BrokerResult<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(BrokerError::InvalidInput(format!(
            "invalid {kind} name `{}`: use 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            name.escape_default()
        )))
    }
}

/// A name no user can have (every one passed [`check_name`]) is nobody's:
/// not found, before the store is asked (PostgreSQL refuses a NUL in text).
fn no_such_name(name: &str) -> BrokerResult<()> {
    if is_valid_name(name) { Ok(()) } else { Err(BrokerError::NotFound(format!("user `{}`", name.escape_default()))) }
}

type Remembered = std::collections::HashMap<TokenHash, (Authenticated, std::time::Instant)>;

/// Who each recently used token belongs to, so a busy client costs no
/// database read per call. Emptied whenever a token may have stopped working
/// (rotation, removal) before that change is acknowledged; a read that raced
/// with such a change is not remembered, because the generation moved on.
/// With other brokers on the database, an entry is trusted for `max_age` at
/// most: their changes arrive through the change feed, and this bounds what
/// a lost notification can leave behind.
#[derive(Default)]
pub(super) struct KnownTokens {
    /// The generation (moved on by every forget), each token's sign-in with
    /// when it was read, and how many changes to who a token is are under way.
    inner: std::sync::Mutex<(u64, Remembered, usize)>,
    /// How long an entry is trusted (none: until forgotten; one broker only).
    max_age: Option<std::time::Duration>,
}

impl KnownTokens {
    /// More than this many and the map starts over (it holds only valid tokens).
    const MAX: usize = 10_000;

    /// Remembers entries for at most `max_age` (brokers sharing a database).
    pub(super) fn trusted_for(max_age: Option<std::time::Duration>) -> KnownTokens {
        KnownTokens { inner: Default::default(), max_age }
    }

    fn lookup(&self, hash: &TokenHash) -> (u64, Option<Authenticated>) {
        let inner = self.inner.lock().expect("known tokens");
        let fresh = |at: &std::time::Instant| self.max_age.is_none_or(|max| at.elapsed() < max);
        let served = (inner.2 == 0).then(|| inner.1.get(hash).filter(|(_, at)| fresh(at)).map(|(auth, _)| auth.clone())).flatten();
        (inner.0, served)
    }

    fn remember(&self, generation: u64, hash: TokenHash, user: &Authenticated) {
        let mut inner = self.inner.lock().expect("known tokens");
        if inner.0 == generation && inner.2 == 0 {
            if inner.1.len() >= Self::MAX {
                inner.1.clear();
            }
            inner.1.insert(hash, (user.clone(), std::time::Instant::now()));
        }
    }

    pub(super) fn forget_all(&self) {
        Self::forget(&mut self.inner.lock().expect("known tokens"));
    }

    /// Moves the generation on (a read in flight is not remembered) and drops every entry.
    fn forget(inner: &mut (u64, Remembered, usize)) {
        inner.0 += 1;
        inner.1.clear();
    }

    /// A change to who a token is (a session ended, a user removed, a token
    /// rotated) about to be written: until the guard is dropped, after the
    /// write, nothing is served from memory or remembered — every sign-in is
    /// read from the store, which has the change or not — and then all is
    /// forgotten. (Forgetting only after the write left a moment in which
    /// an ended session's token still worked from memory.)
    pub(super) fn changing(&self) -> Changing<'_> {
        let mut inner = self.inner.lock().expect("known tokens");
        Self::forget(&mut inner);
        inner.2 += 1;
        Changing(self)
    }
}

/// See [`KnownTokens::changing`].
pub(super) struct Changing<'a>(&'a KnownTokens);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        let mut inner = self.0.inner.lock().expect("known tokens");
        KnownTokens::forget(&mut inner);
        inner.2 -= 1;
    }
}

impl Broker {
    /// The user a bearer token belongs to; the stored hash is compared in constant time.
    pub async fn authenticate(&self, token: &str) -> BrokerResult<UserRecord> {
        Ok(self.authenticate_session(token).await?.user)
    }

    /// Who a bearer token is: a local user's token, or a live session of a
    /// person the identity provider signed in (past its `session_max`, no one).
    pub async fn authenticate_session(&self, token: &str) -> BrokerResult<Authenticated> {
        let presented = TokenHash::of(token);
        let (generation, known) = self.known_tokens.lookup(&presented);
        let found = match known {
            Some(known) => Some(known),
            None => match self.store.user_by_token(&presented).await? {
                Some((user, stored)) if stored.matches(&presented) => Some(Authenticated { user, session: None }),
                Some(_) => None,
                None => match self.store.session_by_token(&presented).await? {
                    Some((user, session)) if session.token.matches(&presented) => Some(Authenticated { user, session: Some(session) }),
                    _ => None,
                },
            },
        };
        match found {
            Some(auth) => match &auth.session {
                Some(s) if s.ends_at <= self.now() => Err(BrokerError::SessionEnded(format!(
                    "at {} (this broker's session_max); nothing else changed",
                    s.ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ))),
                _ => {
                    self.known_tokens.remember(generation, presented, &auth);
                    Ok(auth)
                }
            },
            // A token that is nobody's may be a session that ended: say why, rather than "unknown".
            None => match self.store.session_end(&presented).await? {
                Some((at, why)) => {
                    Err(BrokerError::SessionEnded(format!("at {}: {why}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))))
                }
                None => Err(BrokerError::InvalidToken),
            },
        }
    }

    pub(super) fn require_admin(&self, caller: &UserRecord) -> BrokerResult<()> {
        if caller.admin { Ok(()) } else { Err(BrokerError::Forbidden(format!("{} is not an admin", caller.name))) }
    }

    pub async fn users(&self, caller: &UserRecord) -> BrokerResult<Vec<UserRecord>> {
        self.require_admin(caller)?;
        Ok(self.store.users().await?)
    }

    /// Creates a user with a fresh token and a `user_added` event by `actor`:
    /// the one way in, for the API, `--init-admin`, `--dev` and tests. With
    /// `bootstrap`, only while the broker has no admin (decided atomically).
    pub async fn create_user(
        &self,
        actor: &str,
        new: NewUser,
        bootstrap: bool,
        note: Option<&str>,
    ) -> BrokerResult<(UserRecord, SecretString)> {
        check_name("user", &new.name)?;
        if is_reserved_name(&new.name) {
            return Err(BrokerError::InvalidInput(format!("`{}` is an actor of jit's own in the audit log", new.name)));
        }
        for g in &new.groups {
            check_name("group", g)?;
        }
        let mut groups = new.groups;
        groups.sort();
        groups.dedup();
        let email = new.email.map(|e| check_email(&e)).transpose()?;
        let record = NewUserRecord { name: new.name, groups, admin: new.admin, created_at: self.now(), email };
        let token = generate(TOKEN_PREFIX);
        let mut event = NewEvent::new(actor, Action::UserAdded);
        let admin = if record.admin { " admin" } else { "" };
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        event.detail = Some(format!("{} groups=[{}]{admin}{note}", record.name, record.groups.join(",")));
        let user = match self.store.add_user(&record, &TokenHash::of(token.expose_secret()), bootstrap, event).await {
            Err(StoreError::Conflict) if bootstrap => {
                return Err(BrokerError::Forbidden("this broker already has an admin; --init-admin only bootstraps an empty one".into()));
            }
            other => other?,
        };
        tracing::info!(user = %user.name, id = user.id, by = %actor, "user added");
        Ok((user, token))
    }

    /// `POST /v1/users`: admins add users. Where people sign in through an
    /// identity provider, only local users marked `service` (service
    /// accounts, break-glass admins): people are made at their first sign-in.
    pub async fn add_user(&self, caller: &UserRecord, new: NewUser, service: bool) -> BrokerResult<(UserRecord, SecretString)> {
        self.require_admin(caller)?;
        if let Some(issuer) = self.oidc_issuer()
            && !service
        {
            return Err(BrokerError::InvalidInput(format!(
                "people sign in to this broker through {issuer} and are made at their first sign-in; a local user with a token (a service account, a break-glass admin) is added with --service"
            )));
        }
        self.create_user(&caller.name, new, false, None).await
    }

    /// The first admin of an empty broker (`jit server --init-admin NAME`).
    pub async fn init_admin(&self, name: &str) -> BrokerResult<SecretString> {
        let new = NewUser { name: name.to_string(), groups: Vec::new(), admin: true, email: None };
        Ok(self.create_user(BROKER_ACTOR, new, true, Some("first admin, --init-admin")).await?.1)
    }

    pub async fn admin_count(&self) -> BrokerResult<u64> {
        Ok(self.store.admin_count().await?)
    }

    /// A user by name, if there is one (`--dev` reuses its users across restarts).
    pub async fn user(&self, name: &str) -> BrokerResult<Option<UserRecord>> {
        Ok(self.store.user(name).await?)
    }

    /// Offboarding: the user's token stops working, and in the same
    /// transaction their live grants are revoked, their pending requests
    /// canceled and their git credentials deleted; the reaper then ends the
    /// grants at their providers. Their history stays; a later user with the
    /// same name is someone else (a new id) and inherits nothing.
    pub async fn remove_user(&self, caller: &UserRecord, name: &str) -> BrokerResult<Removal> {
        self.require_admin(caller)?;
        if name == caller.name {
            return Err(BrokerError::InvalidInput("you cannot remove yourself; ask another admin".into()));
        }
        no_such_name(name)?;
        let mut event = NewEvent::new(&caller.name, Action::UserRemoved);
        event.detail = Some(name.to_string());
        let changing = self.known_tokens.changing();
        let removal = self.store.remove_user(name, &caller.name, &format!("user {name} removed"), self.now(), event).await;
        drop(changing); // even on an error: the removal may have committed
        let removal = removal?;
        tracing::info!(user = %name, by = %caller.name, grants = removal.grants.len(), requests = removal.requests.len(), "user removed");
        self.notify_change();
        Ok(removal)
    }

    /// `POST /v1/users/{name}/token`: a new token; the old one stops working.
    pub async fn rotate_token(&self, caller: &UserRecord, name: &str) -> BrokerResult<(UserRecord, SecretString)> {
        self.require_admin(caller)?;
        self.rotate_token_as(&caller.name, name, None).await
    }

    /// Rotation by `actor` (an admin, or the broker for `--dev`).
    pub async fn rotate_token_as(&self, actor: &str, name: &str, note: Option<&str>) -> BrokerResult<(UserRecord, SecretString)> {
        no_such_name(name)?;
        let user = self.store.user(name).await?.ok_or_else(|| BrokerError::NotFound(format!("user `{name}`")))?;
        if let Some(issuer) = &user.issuer {
            return Err(BrokerError::InvalidInput(format!(
                "{name} signs in through the identity provider ({issuer}) and has no token to rotate; remove them at the IdP, or `jit admin user remove {name}`"
            )));
        }
        let token = generate(TOKEN_PREFIX);
        let mut event = NewEvent::new(actor, Action::TokenRotated);
        event.detail = Some(match note {
            Some(n) => format!("{name} ({n})"),
            None => name.to_string(),
        });
        let changing = self.known_tokens.changing();
        let revoked = self.store.set_token(name, &TokenHash::of(token.expose_secret()), self.now(), event).await;
        drop(changing); // even on an error: the rotation may have committed
        let revoked = revoked?;
        tracing::info!(user = %name, by = %actor, credentials = revoked, "token rotated");
        Ok((user, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn someone(name: &str) -> Authenticated {
        let user = UserRecord {
            id: 1,
            name: name.into(),
            groups: vec![],
            admin: false,
            created_at: chrono::Utc::now(),
            issuer: None,
            email: None,
        };
        Authenticated { user, session: None }
    }

    #[test]
    fn a_read_that_raced_a_rotation_is_not_remembered() {
        let known = KnownTokens::default();
        let user = someone("alice");
        let hash = TokenHash::of("old");
        let (before, none) = known.lookup(&hash);
        assert!(none.is_none());
        known.forget_all(); // a rotation lands while the read is in flight
        known.remember(before, hash.clone(), &user);
        assert!(known.lookup(&hash).1.is_none(), "the old token would outlive its rotation");
        let (now, _) = known.lookup(&hash);
        known.remember(now, hash.clone(), &user);
        assert_eq!(known.lookup(&hash).1, Some(user));
        known.forget_all();
        assert!(known.lookup(&hash).1.is_none());
    }

    #[test]
    fn while_a_change_is_written_nothing_is_served_from_memory() {
        let known = KnownTokens::default();
        let user = someone("olivia");
        let hash = TokenHash::of("session");
        let (generation, _) = known.lookup(&hash);
        known.remember(generation, hash.clone(), &user);
        assert!(known.lookup(&hash).1.is_some());
        let changing = known.changing(); // the session is being ended
        assert!(known.lookup(&hash).1.is_none(), "read from the store, which has the end or not");
        let (during, _) = known.lookup(&hash);
        known.remember(during, hash.clone(), &user);
        assert!(known.lookup(&hash).1.is_none(), "a read before the commit is not kept");
        drop(changing);
        assert!(known.lookup(&hash).1.is_none(), "and the read made meanwhile is gone with the rest");
        let (after, _) = known.lookup(&hash);
        known.remember(after, hash.clone(), &user);
        assert!(known.lookup(&hash).1.is_some(), "remembered again once the change is written");
    }
}
