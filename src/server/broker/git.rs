//! Git through the gateway: whether a git request may pass, and its audit trail.
//!
//! The gateway asks one question, [`Broker::admit_git`], and gets an
//! [`Admission`]. Every request carries HTTP Basic credentials whose password
//! is a credential the broker minted for one grant (only its hash is stored).
//! The grant must be live now, for this repo and this user, at a level that
//! covers the service, used from where its rule allows; a push may update
//! only the refs the grant allows. Refusals are [`GitRefusal`]s; how git is
//! told (401 with a challenge, 403 with a line git shows) is `server::error`'s job.

use super::{Broker, BrokerResult, event};
use crate::domain::Level;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::receive_pack::{self, Commands, Report};
use crate::domain::records::GrantRecord;
use crate::domain::request::{GrantStatus, grant_status};
use crate::domain::smart_http::{Endpoint, GitRoute, Service};
use crate::domain::token::TokenHash;
use crate::providers::GitBackend;
use crate::server::gateway::upstream::UpstreamError;
use chrono::{DateTime, Utc};

/// Fetches by one grant closer together than this are one audit event.
pub const FETCH_COALESCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `now` is less than `window` after `since`, on the broker's clock
/// (so tests move it); a clock that stepped back counts as within.
fn within(since: DateTime<Utc>, now: DateTime<Utc>, window: std::time::Duration) -> bool {
    (now - since).to_std().map_or(true, |elapsed| elapsed < window)
}

/// A window whose folded fetches no later fetch has counted is written out
/// by the reaper once it is this old (and every one at shutdown), so the
/// count is never lost.
pub const FETCH_FLUSH: std::time::Duration = std::time::Duration::from_secs(60);

/// Fetches folded into the event that opened a window, and that event (to
/// write their count under it when no later fetch does).
#[derive(Debug, Clone)]
pub(super) struct FetchWindow {
    started: DateTime<Utc>,
    folded: u32,
    opened_by: NewEvent,
}

/// Who a refusal is coalesced with: the same source, refusal, user name and repo.
pub(super) type RefusalKey = (std::net::IpAddr, &'static str, Option<String>, String);

/// Whether a fetch window survives the flood guard's purge: one still open
/// (or lately so), or one holding a count nobody has written yet.
fn keep_window(w: &FetchWindow, now: DateTime<Utc>) -> bool {
    within(w.started, now, FETCH_COALESCE * 6) || w.folded > 0
}

/// The words that carry a folded count, in the next fetch's event or on its own.
fn stood_for(folded: u32) -> String {
    format!("(the previous event stood for {} fetches)", folded + 1)
}

/// Why a git request does not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRefusal {
    /// No repo by that name is served here.
    NoSuchRepo(String),
    NoCredentials,
    /// The password is not a live credential the broker minted.
    UnknownCredential,
    /// A real credential, but for another user or repo.
    WrongRepo,
    Ended {
        grant: i64,
        repo: String,
        status: GrantStatus,
    },
    /// `ask` is the request to make, as policy would take it (or why none would do).
    LevelTooLow {
        repo: String,
        have: Level,
        service: Service,
        ask: String,
    },
    /// The grant's rule lets it be used only from other networks.
    NotFromHere {
        repo: String,
        from: String,
        rule: String,
        client: std::net::IpAddr,
    },
    /// The broker could not check (its store failed); try again.
    Unavailable,
    /// A push whose command list cannot be read, so it could not be audited.
    BadPush(String),
    /// A signed push: its certificate could hide commands (never advertised, so never honest).
    SignedPush,
    /// The operation could not be written to the audit log, so it does not happen.
    NotRecorded,
}

impl GitRefusal {
    /// A short name for the audit log and the coalescing of refusals.
    pub fn kind(&self) -> &'static str {
        match self {
            GitRefusal::NoSuchRepo(_) => "no such repo",
            GitRefusal::NoCredentials => "no credentials",
            GitRefusal::UnknownCredential => "unknown or expired credential",
            GitRefusal::WrongRepo => "credential for another user or repo",
            GitRefusal::Ended { .. } => "grant ended",
            GitRefusal::LevelTooLow { .. } => "level too low",
            GitRefusal::NotFromHere { .. } => "outside the rule's networks",
            GitRefusal::Unavailable => "broker unavailable",
            GitRefusal::BadPush(_) => "unreadable push",
            GitRefusal::SignedPush => "signed push (push certificates are not accepted)",
            GitRefusal::NotRecorded => "audit log unavailable",
        }
    }

    /// Whether the refusal belongs in the audit log: every request refused
    /// for what its credential is or may do, not git's unauthenticated first
    /// probe, not an unknown path, not the broker's own trouble.
    fn audited(&self) -> bool {
        !matches!(self, GitRefusal::NoSuchRepo(_) | GitRefusal::NoCredentials | GitRefusal::Unavailable | GitRefusal::NotRecorded)
    }
}

/// A git request that may pass: the grant it runs under, and where it goes.
#[derive(Debug, Clone)]
struct GitAccess {
    grant: GrantRecord,
    backend: GitBackend,
}

/// What the gateway asks of the broker for one git request.
#[derive(Debug, Clone, Copy)]
pub struct GitAsk<'a> {
    pub route: &'a GitRoute,
    /// The Basic credentials it carried, if any.
    pub credentials: Option<(&'a str, &'a str)>,
    pub client: std::net::IpAddr,
}

/// The broker's answer to a git request. `B` is the request's body as the
/// gateway carries it (the broker never looks inside).
#[derive(Debug)]
pub enum Admission<B> {
    /// Let through, the operation audited.
    Admitted(Box<Admitted<B>>),
    /// Refused (and audited where the log wants it).
    Refused(GitRefusal),
    /// Too many failed logins from the address, or requests with the
    /// credential: the client may try again after `wait`.
    Throttled { why: &'static str, wait: std::time::Duration },
    /// A push that would update refs the grant does not allow: none of it
    /// lands. `report` is the report-status git shows, ref by ref; `rest`
    /// is the unread body, for the gateway to drain before answering.
    RefsRefused { report: Vec<u8>, rest: B },
}

/// An admitted git request: the grant it runs under, where it goes, and (for
/// a push) the commands checked, with the body that carries them on.
#[derive(Debug)]
pub struct Admitted<B> {
    pub grant: GrantRecord,
    pub backend: GitBackend,
    pub push: Option<Commands>,
    pub body: B,
}

impl Broker {
    /// The gateway's one question: may this git request pass? Decided under
    /// its credential, then (for a push) on the refs it updates, read by
    /// `read_commands` (awaited only once the credential may pass, so nobody
    /// unknown makes the broker wait on a body; it yields the push's
    /// commands, if any, and the body to forward). A refusal is audited, and
    /// so is an admitted operation, before it happens.
    pub async fn admit_git<B>(
        &self,
        ask: GitAsk<'_>,
        read_commands: impl Future<Output = Result<(Option<Commands>, B), GitRefusal>>,
    ) -> Admission<B> {
        let GitAsk { route, credentials, client } = ask;
        let user = credentials.map(|(u, _)| u);
        let access = match self.authorize_git(route, credentials, client).await {
            Ok(access) => access,
            Err(refusal) => {
                if matches!(refusal, GitRefusal::UnknownCredential | GitRefusal::WrongRepo)
                    && let Some(wait) = self.auth_failed(client, user, refusal.kind())
                {
                    return Admission::Throttled { why: "too many failed logins from this address", wait };
                }
                self.record_git_refusal(route, &refusal, user, client).await;
                return Admission::Refused(refusal);
            }
        };
        if let Err(wait) = self.git_request_allowed(access.grant.id) {
            return Admission::Throttled { why: "too many git requests with this credential", wait };
        }
        let (push, body) = match read_commands.await {
            Ok(read) => read,
            Err(refusal) => {
                self.record_git_refusal(route, &refusal, user, client).await;
                return Admission::Refused(refusal);
            }
        };
        // Every ref a push updates must be one the grant allows; otherwise
        // none is, and git shows each as rejected, with the reason.
        if let Some(push) = &push {
            let mut refused = self.push_refusals(&access.grant, push);
            refused.extend(symbolic_ref_refusals(&access.backend, &route.repo, push).await);
            if !refused.is_empty() {
                self.record_push_refusal(&access.grant, &refused, client).await;
                return Admission::RefsRefused { report: receive_pack::report_refusal(push, &refused), rest: body };
            }
        }
        if let Err(e) = self.record_git_operation(&access.grant, route, push.as_ref()).await {
            tracing::error!(error = %e, "gateway: audit append failed; refusing the git request");
            return Admission::Refused(GitRefusal::NotRecorded);
        }
        Admission::Admitted(Box::new(Admitted { grant: access.grant, backend: access.backend, push, body }))
    }

    /// Decides a git request on `route` with the Basic credentials it carried.
    async fn authorize_git(
        &self,
        route: &GitRoute,
        credentials: Option<(&str, &str)>,
        client: std::net::IpAddr,
    ) -> Result<GitAccess, GitRefusal> {
        let backend = self
            .repo(&route.repo)
            .and_then(|spec| self.config.providers.for_repo(&spec).and_then(|p| p.git_backend(&spec)))
            .ok_or_else(|| GitRefusal::NoSuchRepo(route.repo.clone()))?;
        let (user, password) = credentials.ok_or(GitRefusal::NoCredentials)?;
        let now = self.now();
        let grant = match self.store.grant_by_credential(&TokenHash::of(password), now).await {
            Ok(Some(g)) => g,
            Ok(None) => return Err(GitRefusal::UnknownCredential),
            Err(e) => {
                tracing::error!(error = %e, "gateway: credential lookup failed");
                return Err(GitRefusal::Unavailable);
            }
        };
        if grant.user != user || grant.repo != route.repo {
            return Err(GitRefusal::WrongRepo);
        }
        match grant_status(grant.expires_at, grant.revoked_at, now) {
            GrantStatus::Active => {}
            status => return Err(GitRefusal::Ended { grant: grant.id, repo: route.repo.clone(), status }),
        }
        if let Some((rule, from)) = self.networks_of(&grant)
            && !crate::domain::network::allowed_from(&from, client)
        {
            let from = from.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            return Err(GitRefusal::NotFromHere { repo: route.repo.clone(), from, rule, client });
        }
        if !grant.level.covers(route.service.needs()) {
            let ask = self.suggest_request(&grant.user, &route.repo, route.service.needs()).await;
            return Err(GitRefusal::LevelTooLow { repo: route.repo.clone(), have: grant.level, service: route.service, ask });
        }
        Ok(GitAccess { grant, backend })
    }

    /// Whether a push authorised under `grant` with `credential` may still
    /// land now that all of it has arrived: the credential still answers to
    /// a live grant of the same user on the same repo (the one it was let in
    /// under, or one that superseded it) that allows every update. When not,
    /// the push is cut off and audited as refused.
    pub async fn push_may_land(&self, grant: &GrantRecord, credential: &TokenHash, push: &Commands) -> bool {
        let now = self.now();
        let live = match self.store.grant_by_credential(credential, now).await {
            Ok(Some(g)) => {
                g.user == grant.user
                    && g.repo == grant.repo
                    && grant_status(g.expires_at, g.revoked_at, now) == GrantStatus::Active
                    && g.level.covers(Level::Write)
                    && self.push_refusals(&g, push).is_empty()
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "gateway: could not check a push's grant again; cutting it off");
                false
            }
        };
        if !live {
            tracing::warn!(user = %grant.user, repo = %grant.repo, grant = grant.id, "gateway: grant ended while a push was in flight; cut off");
            let mut e = NewEvent::new(&grant.user, Action::GitRefused);
            e.repo = Some(grant.repo.clone());
            e.grant_id = Some(grant.id);
            e.level = Some(grant.level);
            e.detail = Some("git-receive-pack: the grant ended while the push was in flight; nothing of it landed".into());
            if let Err(err) = self.store.append_events(vec![e], now).await {
                tracing::error!(error = %err, "gateway: could not audit a push cut off");
            }
        }
        live
    }

    /// The networks the grant was decided to be used from, when its rule
    /// named any, and the rule's name. Kept on the grant, so a later policy
    /// change never widens it; a grant from before terms were kept has its
    /// rule looked up by name.
    pub(super) fn networks_of(&self, grant: &GrantRecord) -> Option<(String, Vec<ipnet::IpNet>)> {
        let rule_name = grant.rule.clone().unwrap_or_default();
        let from = match &grant.terms {
            Some(terms) => terms.from.clone(),
            None => self.live().policy.rule(grant.rule.as_deref()?)?.from.clone(),
        };
        (!from.is_empty()).then_some((rule_name, from))
    }

    /// Whether the grant may delete refs below `admin` (as kept on it, or, for
    /// a grant from before terms were kept, as its rule says now).
    fn deletes_allowed(&self, grant: &GrantRecord) -> bool {
        match &grant.terms {
            Some(terms) => terms.allow_deletes,
            None => grant.rule.as_deref().is_some_and(|r| self.live().policy.rule(r).is_some_and(|r| r.allow_deletes)),
        }
    }

    /// Audits a refused git request, with the user when the credential named
    /// one; the same refusal from one source within [`FETCH_COALESCE`] is one event.
    async fn record_git_refusal(&self, route: &GitRoute, refusal: &GitRefusal, user: Option<&str>, client: std::net::IpAddr) {
        if !refusal.audited() {
            return;
        }
        {
            let now = self.now();
            let mut recent = self.refusal_windows.lock().expect("refusal windows lock");
            let key = (client, refusal.kind(), user.map(str::to_string), route.repo.clone());
            if recent.get(&key).is_some_and(|at| within(*at, now, FETCH_COALESCE)) {
                return;
            }
            if recent.len() > 10_000 {
                recent.retain(|_, at| within(*at, now, FETCH_COALESCE));
            }
            recent.insert(key, now);
        }
        let mut e = NewEvent::new(user.unwrap_or("anonymous"), Action::GitRefused);
        e.repo = Some(route.repo.clone());
        e.detail = Some(format!("{} from {client}: {}", route.service.name(), refusal.kind()));
        if let Err(err) = self.store.append_events(vec![e], self.now()).await {
            tracing::error!(error = %err, "gateway: could not audit a refusal");
        }
    }

    /// The ref updates of `push` that `grant` does not allow, each with the
    /// reason git will show: a ref outside the grant's refs, or a deletion
    /// below `admin` where the rule does not allow deletes.
    pub fn push_refusals(&self, grant: &GrantRecord, push: &Commands) -> Vec<(String, String)> {
        let deletes_allowed = self.deletes_allowed(grant);
        push.updates
            .iter()
            .filter_map(|u| crate::domain::refs::refusal(u, grant.level, &grant.refs, deletes_allowed).map(|why| (u.name.clone(), why)))
            .collect()
    }

    /// Audits a push refused ref by ref (nothing of it reached the repository).
    async fn record_push_refusal(&self, grant: &GrantRecord, refused: &[(String, String)], client: std::net::IpAddr) {
        tracing::info!(user = %grant.user, repo = %grant.repo, grant = grant.id, refs = refused.len(), "gateway: push refused by the grant's refs");
        let mut e = NewEvent::new(&grant.user, Action::GitRefused);
        e.repo = Some(grant.repo.clone());
        e.grant_id = Some(grant.id);
        e.level = Some(grant.level);
        let refs: Vec<String> = refused.iter().map(|(name, why)| format!("{name} ({})", why.trim_start_matches("jit: "))).collect();
        e.detail = Some(format!("git-receive-pack from {client}: refused {}", refs.join(", ")));
        if let Err(err) = self.store.append_events(vec![e], self.now()).await {
            tracing::error!(error = %err, "gateway: could not audit a refused push");
        }
    }

    /// Audits (and logs) a request the repo's host failed; git's user sees the same words.
    pub async fn record_upstream_failure(&self, grant: &GrantRecord, route: &GitRoute, error: &UpstreamError) {
        tracing::warn!(user = %grant.user, repo = %route.repo, service = route.service.name(), error = %error, "gateway: upstream failed");
        let mut e = NewEvent::new(&grant.user, Action::GitUpstreamFailed);
        e.repo = Some(route.repo.clone());
        e.grant_id = Some(grant.id);
        e.detail = Some(format!("{}: {} ({error})", route.service.name(), error.kind()));
        if let Err(err) = self.store.append_events(vec![e], self.now()).await {
            tracing::error!(error = %err, "gateway: could not audit an upstream failure");
        }
    }

    /// The request `user` would make for `level` on `repo`, as policy takes it:
    /// a reason only where the rule wants one, a duration it allows; or why
    /// no request would do.
    pub async fn suggest_request(&self, user: &str, repo: &str, level: Level) -> String {
        let groups = self.store.user(user).await.ok().flatten().map(|u| u.groups).unwrap_or_default();
        let who = crate::domain::policy::Subject { name: user, groups: &groups };
        match self.live().policy.rule_for(repo, level, &who) {
            Ok(rule) => {
                let hour = crate::domain::AccessDuration::from_secs(3600).expect("an hour is valid");
                let reason = if rule.reason_required { " --reason '…'" } else { "" };
                format!("ask for it: jit request {repo} --level {level} --for {}{reason}", rule.max_duration.min(hour))
            }
            Err(refusal) => format!("no request would do: {refusal}"),
        }
    }

    /// Audits the requests that move data: every `git-upload-pack` and
    /// `git-receive-pack` exchange (a client may skip the ref advertisement
    /// and post straight to them, so that is where the event belongs). Every
    /// push is an event; fetches by one grant within [`FETCH_COALESCE`] are
    /// one event, and the next one written says how many were folded into it.
    async fn record_git_operation(&self, grant: &GrantRecord, route: &GitRoute, push: Option<&Commands>) -> BrokerResult<()> {
        if route.endpoint != Endpoint::Rpc {
            tracing::debug!(user = %grant.user, repo = %route.repo, service = route.service.name(), "ref advertisement");
            return Ok(());
        }
        let action = if route.service == Service::ReceivePack { Action::GitPush } else { Action::GitFetch };
        let mut detail = route.service.name().to_string();
        if let Some(push) = push {
            detail = push_detail(push);
        }
        let mut op = event(&grant.user, action, &route.repo, grant.level);
        op.request_id = Some(grant.request_id);
        op.grant_id = Some(grant.id);
        if action == Action::GitFetch {
            let now = self.now();
            let mut windows = self.fetch_windows.lock().expect("fetch windows lock");
            match windows.get_mut(&grant.id) {
                Some(w) if within(w.started, now, FETCH_COALESCE) => {
                    w.folded += 1;
                    return Ok(());
                }
                previous => {
                    let folded = previous.map(|w| w.folded).unwrap_or(0);
                    if folded > 0 {
                        detail = format!("{detail} {}", stood_for(folded));
                    }
                    // One window per grant that fetched lately; a long-idle broker forgets the
                    // rest (the reaper has written out any count they held long before).
                    if windows.len() > 10_000 {
                        windows.retain(|_, w| keep_window(w, now));
                    }
                    windows.insert(grant.id, FetchWindow { started: now, folded: 0, opened_by: op.clone() });
                }
            }
        }
        op.detail = Some(detail);
        self.store.append_events(vec![op], self.now()).await?;
        tracing::info!(user = %grant.user, repo = %route.repo, service = route.service.name(), "git operation");
        Ok(())
    }
}

impl Broker {
    /// Audits what git did with a push that reached the repository, ref by
    /// ref, from its report-status (`git_push_result`): the `git_push` event
    /// before it says what the push asked for.
    pub async fn record_push_outcome(&self, grant: &GrantRecord, push: &Commands, report: Option<Report>) {
        let mut e = event(&grant.user, Action::GitPushResult, &grant.repo, grant.level);
        e.request_id = Some(grant.request_id);
        e.grant_id = Some(grant.id);
        e.detail = Some(push_outcome(push, report.as_ref()));
        if let Err(err) = self.store.append_events(vec![e], self.now()).await {
            tracing::error!(error = %err, "gateway: could not audit a push's outcome");
        }
    }

    /// Writes out the count of every fetch window whose folded fetches no
    /// later fetch counted: those older than [`FETCH_FLUSH`], or all of them
    /// (at shutdown). Each becomes a `git_fetch` event under the grant that
    /// fetched, saying how many fetches its previous event stood for.
    pub async fn flush_fetch_windows(&self, all: bool) {
        let now = self.now();
        let due: Vec<NewEvent> = {
            let mut windows = self.fetch_windows.lock().expect("fetch windows lock");
            let done: Vec<i64> =
                windows.iter().filter(|(_, w)| w.folded > 0 && (all || !within(w.started, now, FETCH_FLUSH))).map(|(id, _)| *id).collect();
            done.iter()
                .filter_map(|id| windows.remove(id))
                .map(|w| {
                    let mut e = w.opened_by;
                    e.detail = Some(format!("git-upload-pack {}; none since", stood_for(w.folded)));
                    e
                })
                .collect()
        };
        if !due.is_empty()
            && let Err(e) = self.store.append_events(due, now).await
        {
            tracing::error!(error = %e, "gateway: could not write out folded fetch counts");
        }
    }
}

/// Updates of `push` that name a symbolic ref in a local repo, each refused:
/// git moves the ref it points at, which the scope check never saw. (A host
/// behind the upstream proxy shows no symbolic refs but `HEAD`, which no push
/// can name; hosts let no client create one.)
async fn symbolic_ref_refusals(backend: &GitBackend, repo: &str, push: &Commands) -> Vec<(String, String)> {
    let GitBackend::Local { project_root } = backend else { return Vec::new() };
    let (root, repo, names) = (project_root.clone(), repo.to_string(), push.updates.iter().map(|u| u.name.clone()).collect::<Vec<_>>());
    let found =
        tokio::task::spawn_blocking(move || crate::providers::local_gateway::symbolic_refs(&root, &repo, &names)).await.unwrap_or_default();
    found.into_iter().map(|(name, target)| (name, format!("jit: this is a symbolic ref to {target}; push to {target} itself"))).collect()
}

/// What git did with each ref of `push`, as its report says.
fn push_outcome(push: &Commands, report: Option<&Report>) -> String {
    let Some(report) = report else {
        return "git-receive-pack: no report from git (it failed, or the client left first): outcome unknown".into();
    };
    if let Err(why) = &report.unpack {
        return format!("git-receive-pack: the pack was not taken ({why}): nothing landed");
    }
    let refs: Vec<String> = push
        .updates
        .iter()
        .map(|u| match report.refs.iter().find(|(name, _)| *name == u.name) {
            Some((_, Ok(()))) => format!("{u}: done"),
            Some((_, Err(why))) => format!("{u}: rejected ({why})"),
            None => format!("{u}: not reported"),
        })
        .collect();
    format!("git-receive-pack: {}", refs.join("; "))
}

/// What a push changed, ref by ref, for its `git_push` event.
fn push_detail(push: &Commands) -> String {
    match push.updates.as_slice() {
        [] => "git-receive-pack: no ref updates".to_string(),
        updates => {
            let list = updates.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            format!("git-receive-pack: {list}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_guard_never_drops_a_count_nobody_wrote() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let window = |age_secs: i64, folded: u32| FetchWindow {
            started: now - chrono::Duration::seconds(age_secs),
            folded,
            opened_by: NewEvent::new("alice", Action::GitFetch),
        };
        assert!(keep_window(&window(1, 0), now), "still open");
        assert!(keep_window(&window(30, 3), now), "closed, its count not yet written");
        assert!(!keep_window(&window(30, 0), now), "closed, nothing to write");
    }
}
