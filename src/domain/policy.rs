//! Access policy: ordered rules that decide who may request what, who must
//! approve it, and for how long.
//!
//! A request is evaluated against the rules in file order. The first rule whose
//! repo patterns and levels match *and* that lets the requester ask is the one
//! that applies; no such rule means the request is refused (default deny). The
//! rule then fixes the approvers, the number of distinct approvals, whether the
//! request is auto-approved, the longest duration and whether a reason is
//! required. Nobody approves their own request, whatever a rule says; that
//! check lives in [`super::request`].

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use super::duration::AccessDuration;
use super::level::Level;

/// Who a rule names: a user, a group (`group:NAME`) or anyone (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Group(String),
    Anyone,
}

pub use super::text::is_valid_name;

impl Principal {
    fn parse(s: &str) -> Result<Self, String> {
        let ok_name = is_valid_name;
        if s == "*" {
            Ok(Principal::Anyone)
        } else if let Some(group) = s.strip_prefix("group:") {
            if ok_name(group) { Ok(Principal::Group(group.to_string())) } else { Err(format!("bad group name in `{s}`")) }
        } else if ok_name(s) {
            Ok(Principal::User(s.to_string()))
        } else {
            Err(format!("bad principal `{s}`: expected a user name, `group:NAME` or `*`"))
        }
    }

    fn includes(&self, who: &Subject) -> bool {
        match self {
            Principal::Anyone => true,
            Principal::User(name) => *name == who.name,
            Principal::Group(group) => who.groups.iter().any(|g| g == group),
        }
    }
}

/// Refuses a rule no request under it could ever pass: fewer named approvers
/// than approvals, or a named requester left with too few approvers once
/// they cannot approve their own request. Groups and `*` have members only
/// the user list knows, so a rule naming one is taken as satisfiable.
fn check_satisfiable(requesters: &[Principal], approvers: &[Principal], needed: u32) -> Result<(), String> {
    let mut named: Vec<&str> = Vec::new();
    for p in approvers {
        match p {
            Principal::User(u) => named.push(u),
            Principal::Group(_) | Principal::Anyone => return Ok(()),
        }
    }
    named.sort();
    named.dedup();
    if (named.len() as u32) < needed {
        return Err(format!("needs {needed} approvals but names only {} approver(s) ({})", named.len(), named.join(", ")));
    }
    for r in requesters {
        if let Principal::User(requester) = r {
            let others = named.iter().filter(|a| **a != requester.as_str()).count() as u32;
            if others < needed {
                return Err(format!(
                    "{requester} may request but could never be approved: nobody approves their own request, which leaves {others} of the {needed} approvals needed"
                ));
            }
        }
    }
    Ok(())
}

/// A user as policy sees them: a name and the groups they belong to.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub groups: &'a [String],
}

/// `approvals` as written: a number of distinct approvers, or so many from
/// each of several principals (`[{ from = "group:security", count = 1 }, …]`).
#[derive(Debug, Clone)]
pub enum RawApprovals {
    Count(u32),
    From(Vec<RawQuorum>),
}

/// By hand, so a wrong value is named as what it is (serde's untagged enums
/// say only that nothing matched).
impl<'de> Deserialize<'de> for RawApprovals {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, Unexpected};
        struct Approvals;
        impl<'de> de::Visitor<'de> for Approvals {
            type Value = RawApprovals;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of approvals, or a list of { from = \"group:NAME\", count = N }")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawApprovals, E> {
                u32::try_from(n).map(RawApprovals::Count).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawApprovals, E> {
                u32::try_from(n).map(RawApprovals::Count).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<RawApprovals, A::Error> {
                Vec::<RawQuorum>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(RawApprovals::From)
            }
        }
        d.deserialize_any(Approvals)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuorum {
    pub from: String,
    pub count: Option<u32>,
}

/// So many approvals from one principal, each approver counted once, in one
/// quorum ([`missing`] places them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    pub from: Principal,
    pub count: u32,
}

impl Principal {
    /// As written in a rule: `carol`, `group:reviewers`, `*`.
    pub fn display(&self) -> String {
        match self {
            Principal::User(u) => u.clone(),
            Principal::Group(g) => format!("group:{g}"),
            Principal::Anyone => "*".to_string(),
        }
    }
}

/// What `quorums` still lack, given who approved: `(principal, how many
/// more)`, none when every quorum is met. Each approver counts once, in one
/// quorum, placed so that as many quorums as possible are met (a largest
/// matching of approvers to the quorums' places, by augmenting paths: a
/// handful of approvers, so simple is fast).
pub fn missing(quorums: &[Quorum], approvers: &[Subject]) -> Vec<(String, u32)> {
    let places: Vec<usize> = quorums.iter().enumerate().flat_map(|(q, quorum)| std::iter::repeat_n(q, quorum.count as usize)).collect();
    let mut holder: Vec<Option<usize>> = vec![None; places.len()];
    fn place(
        a: usize,
        approvers: &[Subject],
        quorums: &[Quorum],
        places: &[usize],
        holder: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for p in 0..places.len() {
            if seen[p] || !quorums[places[p]].from.includes(&approvers[a]) {
                continue;
            }
            seen[p] = true;
            if holder[p].is_none_or(|other| place(other, approvers, quorums, places, holder, seen)) {
                holder[p] = Some(a);
                return true;
            }
        }
        false
    }
    for a in 0..approvers.len() {
        let mut seen = vec![false; places.len()];
        place(a, approvers, quorums, &places, &mut holder, &mut seen);
    }
    quorums
        .iter()
        .enumerate()
        .filter_map(|(q, quorum)| {
            let filled = places.iter().zip(&holder).filter(|(at, h)| **at == q && h.is_some()).count() as u32;
            (filled < quorum.count).then(|| (quorum.from.display(), quorum.count - filled))
        })
        .collect()
}

/// `needs 1 more from group:security and 2 more from group:reviewers`.
pub fn missing_text(missing: &[(String, u32)]) -> String {
    let parts: Vec<String> = missing.iter().map(|(from, n)| format!("{n} more from {from}")).collect();
    format!("needs {}", parts.join(" and "))
}

/// One rule as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Option<String>,
    pub repos: Vec<String>,
    pub levels: Vec<String>,
    pub requesters: Vec<String>,
    #[serde(default)]
    pub approvers: Vec<String>,
    pub approvals: Option<RawApprovals>,
    #[serde(default)]
    pub auto_approve: bool,
    pub max_duration: String,
    #[serde(default)]
    pub reason_required: bool,
    /// Networks a grant under this rule may be used from (git and minting); none: anywhere.
    #[serde(default)]
    pub from: Vec<String>,
    /// Refs its grants may update (`refs/heads/hotfix/*`); none: every ref.
    #[serde(default)]
    pub refs: Vec<String>,
    /// Whether its write grants may delete refs (otherwise deleting needs admin).
    #[serde(default)]
    pub allow_deletes: bool,
    /// How long before a grant's end git starts warning (default 10m).
    pub warn_before: Option<String>,
    /// Granted at once to `--break-glass` requests (and only to them), its
    /// `approvers` reviewing afterwards.
    #[serde(default)]
    pub break_glass: bool,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// 1-based line of the rule in its file, for messages.
    pub line: usize,
    repos: Vec<glob::Pattern>,
    levels: BTreeSet<Level>,
    requesters: Vec<Principal>,
    approvers: Vec<Principal>,
    pub approvals_required: u32,
    /// Approvals needed from each of several principals (`approvals = [{ from, count }, …]`);
    /// empty: any `approvals_required` distinct approvers.
    pub quorums: Vec<Quorum>,
    pub auto_approve: bool,
    pub max_duration: AccessDuration,
    pub reason_required: bool,
    /// Where its grants may be used from; empty: anywhere.
    pub from: Vec<ipnet::IpNet>,
    /// Which refs its grants may update.
    pub refs: super::refs::RefScope,
    pub allow_deletes: bool,
    /// How long before a grant's end git warns that it is ending.
    pub warn_before: AccessDuration,
    /// For `--break-glass` requests only: granted at once, reviewed afterwards by its approvers.
    pub break_glass: bool,
}

impl Rule {
    fn covers(&self, repo: &str, level: Level) -> bool {
        self.levels.contains(&level) && self.covers_repo(repo)
    }

    fn covers_repo(&self, repo: &str) -> bool {
        let opts = glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };
        self.repos.iter().any(|p| p.matches_with(repo, opts))
    }

    pub fn may_request(&self, who: &Subject) -> bool {
        self.requesters.iter().any(|p| p.includes(who))
    }

    /// Whether `who` is among this rule's approvers (self-approval is refused elsewhere).
    pub fn may_approve(&self, who: &Subject) -> bool {
        self.approvers.iter().any(|p| p.includes(who))
    }

    /// The approvers as written, for "who can approve" hints.
    pub fn approvers_display(&self) -> Vec<String> {
        self.approvers.iter().map(Principal::display).collect()
    }
}

/// Why a rule tried before the one that applies did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    /// Its repo patterns do not match the repo.
    OtherRepos,
    /// It covers the repo, not that level.
    OtherLevels,
    /// It covers repo and level, but the person is not among its requesters.
    NotARequester,
    /// It is a break-glass rule, for `--break-glass` requests only.
    BreakGlassOnly,
    /// A `--break-glass` request: only break-glass rules govern it.
    NotBreakGlass,
}

impl Passed {
    pub fn describe(self) -> &'static str {
        match self {
            Passed::OtherRepos => "its repos do not include this one",
            Passed::OtherLevels => "it does not grant this level here",
            Passed::NotARequester => "this person is not among its requesters",
            Passed::BreakGlassOnly => "it is for break-glass requests only (--break-glass)",
            Passed::NotBreakGlass => "it is not a break-glass rule",
        }
    }
}

/// How the policy decides one request, rule by rule, in order: the rules
/// passed over and why, then the one that applies (if any). What `jit
/// policy explain` prints; [`Policy::rule_for`] is the same walk, kept short.
#[derive(Debug)]
pub struct Explanation<'a> {
    pub passed: Vec<(&'a Rule, Passed)>,
    pub applies: Option<&'a Rule>,
}

/// A rule in the file that cannot be used; start-up refuses the whole policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy rule at line {line}: {message}")]
pub struct PolicyError {
    pub line: usize,
    pub message: String,
}

/// Why a request is refused by policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no policy rule allows {level} access to `{repo}` (default deny)")]
    NoRule { repo: String, level: Level },
    #[error("policy does not let {user} request {level} access to `{repo}`")]
    NotRequester { user: String, repo: String, level: Level },
    #[error("{asked} is longer than the {max} that rule `{rule}` allows for {level} on `{repo}`")]
    TooLong { asked: AccessDuration, max: AccessDuration, rule: String, level: Level, repo: String },
    #[error("rule `{rule}` requires a reason for {level} access to `{repo}`; pass --reason")]
    ReasonRequired { rule: String, level: Level, repo: String },
    #[error("rule `{rule}`: {source}")]
    Refs { rule: String, source: super::refs::RefError },
    #[error("no break-glass rule covers {level} access to `{repo}`")]
    NoBreakGlass { repo: String, level: Level },
    #[error("a break-glass request needs a reason naming the emergency (--reason \"INC-77 prod down\")")]
    BreakGlassReason,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// 1-based line of a byte offset in `source`.
pub fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

impl Policy {
    /// Validates rules read from `source` (whose spans they carry), naming the
    /// line of the first bad one.
    pub fn from_raw(raw: Vec<Spanned<RawRule>>, source: &str) -> Result<Policy, PolicyError> {
        let mut rules = Vec::with_capacity(raw.len());
        let mut names = BTreeSet::new();
        for (index, spanned) in raw.into_iter().enumerate() {
            let line = line_of(source, spanned.span().start);
            let rule = Self::validate(spanned.into_inner(), index, line).map_err(|message| PolicyError { line, message })?;
            if !names.insert(rule.name.clone()) {
                return Err(PolicyError { line, message: format!("duplicate rule name `{}`", rule.name) });
            }
            rules.push(rule);
        }
        Ok(Policy { rules })
    }

    fn validate(raw: RawRule, index: usize, line: usize) -> Result<Rule, String> {
        let name = raw.name.unwrap_or_else(|| format!("rule-{}", index + 1));
        if raw.repos.is_empty() {
            return Err("`repos` must name at least one repo pattern".into());
        }
        if let Some(p) = raw.repos.iter().find(|p| p.trim().is_empty() || p.trim() != p.as_str()) {
            return Err(format!("bad repo pattern `{p}`: empty, or with spaces around it"));
        }
        let repos = raw
            .repos
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("bad repo pattern `{p}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if raw.levels.is_empty() {
            return Err("`levels` must name at least one of read, write, admin".into());
        }
        let levels = raw.levels.iter().map(|l| l.parse::<Level>().map_err(|e| e.to_string())).collect::<Result<BTreeSet<_>, _>>()?;
        if raw.requesters.is_empty() {
            return Err("`requesters` must name at least one user, `group:NAME` or `*`".into());
        }
        let requesters = raw.requesters.iter().map(|p| Principal::parse(p)).collect::<Result<Vec<_>, _>>()?;
        let mut approvers = raw.approvers.iter().map(|p| Principal::parse(p)).collect::<Result<Vec<_>, _>>()?;
        let max_duration = raw.max_duration.parse::<AccessDuration>().map_err(|e| format!("max_duration: {e}"))?;
        if raw.break_glass {
            if raw.auto_approve {
                return Err("a break-glass rule grants at once already: leave out `auto_approve`".into());
            }
            if raw.approvals.is_some() {
                return Err("a break-glass rule grants without approvals, its `approvers` review afterwards: leave out `approvals`".into());
            }
            if approvers.is_empty() {
                return Err("a break-glass rule needs `approvers`: they review its grants afterwards".into());
            }
            // Nobody reviews their own: someone else must be able to.
            check_satisfiable(&requesters, &approvers, 1).map_err(|e| format!("its grants could never be reviewed: {e}"))?;
        }
        let mut quorums = Vec::new();
        let approvals_required = match (raw.auto_approve || raw.break_glass, raw.approvals) {
            (true, Some(RawApprovals::Count(0))) => 0,
            (true, Some(_)) => {
                return Err("`auto_approve = true` cannot also require approvals".into());
            }
            (true, None) => 0,
            (false, Some(RawApprovals::Count(0))) => {
                return Err("`approvals` must be at least 1 (or set `auto_approve = true`)".into());
            }
            (false, Some(RawApprovals::Count(n))) => n,
            (false, None) => 1,
            (false, Some(RawApprovals::From(list))) => {
                if !approvers.is_empty() {
                    return Err("with `approvals = [{ from, count }, …]` the `from`s are the approvers: leave out `approvers`".into());
                }
                if list.is_empty() {
                    return Err("`approvals` names no `from`: give at least one `{ from = \"group:NAME\", count = 1 }`".into());
                }
                for q in list {
                    let from = Principal::parse(&q.from).map_err(|e| format!("approvals: {e}"))?;
                    let count = q.count.unwrap_or(1);
                    if count == 0 {
                        return Err(format!("approvals: `count` for `{}` must be at least 1", q.from));
                    }
                    if matches!(from, Principal::User(_)) && count > 1 {
                        return Err(format!("approvals: `{}` is one person, who counts once; `count` must be 1", q.from));
                    }
                    if quorums.iter().any(|o: &Quorum| o.from == from) {
                        return Err(format!("approvals: `{}` is named twice; give its count once", q.from));
                    }
                    if !approvers.contains(&from) {
                        approvers.push(from.clone());
                    }
                    quorums.push(Quorum { from, count });
                }
                quorums.iter().map(|q| q.count).sum()
            }
        };
        if !raw.auto_approve && approvers.is_empty() {
            return Err("a rule that is not auto-approved needs `approvers`".into());
        }
        if !raw.auto_approve && !raw.break_glass {
            check_satisfiable(&requesters, &approvers, approvals_required)?;
        }
        let from = super::network::parse_networks("from", &raw.from)?;
        let refs = super::refs::RefScope::parse(&raw.refs).map_err(|e| format!("refs: {e}"))?;
        let warn_before = match &raw.warn_before {
            Some(t) => t.parse::<AccessDuration>().map_err(|e| format!("warn_before: {e}"))?,
            None => AccessDuration::from_secs(super::expiry::DEFAULT_WARN_BEFORE_SECS).expect("a valid default"),
        };
        Ok(Rule {
            name,
            line,
            repos,
            levels,
            requesters,
            approvers,
            approvals_required,
            quorums,
            auto_approve: raw.auto_approve,
            max_duration,
            reason_required: raw.reason_required,
            from,
            refs,
            allow_deletes: raw.allow_deletes,
            warn_before,
            break_glass: raw.break_glass,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule asks approvals of several principals (`approvals = [{ from, count }, …]`).
    pub fn has_quorums(&self) -> bool {
        self.rules.iter().any(|r| !r.quorums.is_empty())
    }

    /// Every level some rule can grant on `repo`.
    pub fn levels_for(&self, repo: &str) -> BTreeSet<Level> {
        self.rules.iter().flat_map(|r| r.levels.iter().copied().filter(|l| r.covers(repo, *l))).collect()
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Every rule, in order, up to the one that governs `who` asking for
    /// `level` on `repo` (with `break_glass`, as a `--break-glass` request),
    /// each with why it did not apply.
    pub fn explain(&self, repo: &str, level: Level, who: &Subject, break_glass: bool) -> Explanation<'_> {
        let mut passed = Vec::new();
        for rule in &self.rules {
            let why = if rule.break_glass && !break_glass {
                Passed::BreakGlassOnly
            } else if !rule.break_glass && break_glass {
                Passed::NotBreakGlass
            } else if !rule.covers_repo(repo) {
                Passed::OtherRepos
            } else if !rule.levels.contains(&level) {
                Passed::OtherLevels
            } else if !rule.may_request(who) {
                Passed::NotARequester
            } else {
                return Explanation { passed, applies: Some(rule) };
            };
            passed.push((rule, why));
        }
        Explanation { passed, applies: None }
    }

    /// The rule that governs `who` asking for `level` on `repo` (break-glass
    /// rules govern only break-glass requests: [`Policy::break_glass_rule_for`]).
    pub fn rule_for(&self, repo: &str, level: Level, who: &Subject) -> Result<&Rule, Refusal> {
        self.first_rule(repo, level, who, false)
    }

    /// The break-glass rule that governs `who` asking for `level` on `repo`
    /// with `--break-glass`.
    pub fn break_glass_rule_for(&self, repo: &str, level: Level, who: &Subject) -> Result<&Rule, Refusal> {
        self.first_rule(repo, level, who, true).map_err(|e| match e {
            Refusal::NoRule { repo, level } => Refusal::NoBreakGlass { repo, level },
            other => other,
        })
    }

    fn first_rule(&self, repo: &str, level: Level, who: &Subject, break_glass: bool) -> Result<&Rule, Refusal> {
        let mut covered = false;
        for rule in self.rules.iter().filter(|r| r.break_glass == break_glass && r.covers(repo, level)) {
            covered = true;
            if rule.may_request(who) {
                return Ok(rule);
            }
        }
        if covered {
            Err(Refusal::NotRequester { user: who.name.to_string(), repo: repo.to_string(), level })
        } else {
            Err(Refusal::NoRule { repo: repo.to_string(), level })
        }
    }

    /// Checks a whole request: rule, duration cap and reason.
    pub fn check_request(
        &self,
        repo: &str,
        level: Level,
        duration: AccessDuration,
        reason: Option<&str>,
        who: &Subject,
    ) -> Result<&Rule, Refusal> {
        let rule = self.rule_for(repo, level, who)?;
        Self::check_terms(rule, repo, level, duration, reason)
    }

    /// Checks a break-glass request: a break-glass rule, its duration cap,
    /// and a reason (always: it is what the reviewers read).
    pub fn check_break_glass(
        &self,
        repo: &str,
        level: Level,
        duration: AccessDuration,
        reason: Option<&str>,
        who: &Subject,
    ) -> Result<&Rule, Refusal> {
        let rule = self.break_glass_rule_for(repo, level, who)?;
        if reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(Refusal::BreakGlassReason);
        }
        Self::check_terms(rule, repo, level, duration, reason)
    }

    fn check_terms<'r>(
        rule: &'r Rule,
        repo: &str,
        level: Level,
        duration: AccessDuration,
        reason: Option<&str>,
    ) -> Result<&'r Rule, Refusal> {
        if duration > rule.max_duration {
            return Err(Refusal::TooLong {
                asked: duration,
                max: rule.max_duration,
                rule: rule.name.clone(),
                level,
                repo: repo.to_string(),
            });
        }
        if rule.reason_required && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(Refusal::ReasonRequired { rule: rule.name.clone(), level, repo: repo.to_string() });
        }
        Ok(rule)
    }

    /// Whether `who` may approve (or revoke) `level` on `repo` for someone under
    /// any rule that covers it.
    pub fn is_approver_for(&self, repo: &str, level: Level, who: &Subject) -> bool {
        self.rules.iter().any(|r| r.covers(repo, level) && r.may_approve(who))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explanation_walks_the_rules_as_the_decision_does() {
        let p = policy(
            "[[rule]]\nname = \"web\"\nrepos = [\"web/*\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nmax_duration = \"1h\"\nauto_approve = true\n\n\
             [[rule]]\nname = \"api-read\"\nrepos = [\"acme/*\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nmax_duration = \"1h\"\nauto_approve = true\n\n\
             [[rule]]\nname = \"api-write-ops\"\nrepos = [\"acme/*\"]\nlevels = [\"write\"]\nrequesters = [\"group:ops\"]\napprovers = [\"carol\"]\nmax_duration = \"1h\"\n\n\
             [[rule]]\nname = \"api-write\"\nrepos = [\"acme/*\"]\nlevels = [\"write\"]\nrequesters = [\"group:dev\"]\napprovers = [\"carol\"]\nmax_duration = \"2h\"\n",
        )
        .unwrap();
        let groups = vec!["dev".to_string()];
        let alice = Subject { name: "alice", groups: &groups };
        let e = p.explain("acme/api", Level::Write, &alice, false);
        let passed: Vec<(&str, Passed)> = e.passed.iter().map(|(r, why)| (r.name.as_str(), *why)).collect();
        assert_eq!(passed, [("web", Passed::OtherRepos), ("api-read", Passed::OtherLevels), ("api-write-ops", Passed::NotARequester)]);
        assert_eq!(e.applies.map(|r| r.name.as_str()), Some("api-write"));
        assert_eq!(p.rule_for("acme/api", Level::Write, &alice).unwrap().name, "api-write", "the same answer as the decision");
        let nobody = Subject { name: "mallory", groups: &[] };
        let e = p.explain("acme/api", Level::Write, &nobody, false);
        assert!(e.applies.is_none() && e.passed.len() == 4);
        assert!(p.rule_for("acme/api", Level::Write, &nobody).is_err());
    }

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        rule: Vec<Spanned<RawRule>>,
    }

    fn policy(src: &str) -> Result<Policy, PolicyError> {
        let file: File = toml::from_str(src).expect("test toml parses");
        Policy::from_raw(file.rule, src)
    }

    fn subject<'a>(name: &'a str, groups: &'a [String]) -> Subject<'a> {
        Subject { name, groups }
    }

    #[test]
    fn a_break_glass_rule_governs_only_break_glass_requests_and_needs_a_reason() {
        let p = policy(
            "[[rule]]\nname = \"prod-bg\"\nrepos = [\"prod/*\"]\nlevels = [\"write\"]\nrequesters = [\"group:oncall\"]\napprovers = [\"group:sre\"]\nmax_duration = \"1h\"\nbreak_glass = true\n\n\
             [[rule]]\nname = \"prod-write\"\nrepos = [\"prod/*\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\napprovers = [\"group:sre\"]\nmax_duration = \"8h\"\n",
        )
        .unwrap();
        let oncall = vec!["oncall".to_string()];
        let erin = subject("erin", &oncall);
        let hour = AccessDuration::from_secs(3600).unwrap();
        assert_eq!(
            p.rule_for("prod/api", Level::Write, &erin).unwrap().name,
            "prod-write",
            "an ordinary request passes the break-glass rule by"
        );
        let e = p.explain("prod/api", Level::Write, &erin, false);
        assert_eq!(e.passed[0].1, Passed::BreakGlassOnly);
        let e = p.explain("prod/api", Level::Write, &erin, true);
        assert_eq!(e.applies.map(|r| r.name.as_str()), Some("prod-bg"), "the same answer as check_break_glass");
        let e = p.explain("prod/api", Level::Admin, &erin, true);
        assert_eq!(e.passed.iter().map(|(_, why)| *why).collect::<Vec<_>>(), [Passed::OtherLevels, Passed::NotBreakGlass]);
        assert!(e.applies.is_none());
        assert_eq!(p.check_break_glass("prod/api", Level::Write, hour, Some("INC-77"), &erin).unwrap().name, "prod-bg");
        assert_eq!(p.check_break_glass("prod/api", Level::Write, hour, None, &erin).unwrap_err(), Refusal::BreakGlassReason);
        assert_eq!(p.check_break_glass("prod/api", Level::Write, hour, Some("  "), &erin).unwrap_err(), Refusal::BreakGlassReason);
        let two_hours = AccessDuration::from_secs(7200).unwrap();
        assert!(matches!(p.check_break_glass("prod/api", Level::Write, two_hours, Some("INC-77"), &erin), Err(Refusal::TooLong { .. })));
        let dev = subject("dave", &[]);
        assert!(matches!(p.check_break_glass("prod/api", Level::Write, hour, Some("x"), &dev), Err(Refusal::NotRequester { .. })));
        assert!(matches!(p.check_break_glass("prod/api", Level::Admin, hour, Some("x"), &erin), Err(Refusal::NoBreakGlass { .. })));
        assert!(p.rule("prod-bg").unwrap().approvals_required == 0);

        let bad = |extra: &str| {
            policy(&format!(
                "[[rule]]\nrepos = [\"prod/*\"]\nlevels = [\"write\"]\nrequesters = [\"erin\"]\nmax_duration = \"1h\"\nbreak_glass = true\n{extra}"
            ))
            .unwrap_err()
            .message
        };
        assert!(bad("approvers = [\"carol\"]\nauto_approve = true\n").contains("leave out `auto_approve`"));
        assert!(bad("approvers = [\"carol\"]\napprovals = 2\n").contains("leave out `approvals`"));
        assert!(bad("").contains("needs `approvers`"));
        assert!(bad("approvers = [\"erin\"]\n").contains("could never be reviewed"), "{}", bad("approvers = [\"erin\"]\n"));
    }

    #[test]
    fn each_approver_counts_once_in_the_quorum_that_lets_most_be_met() {
        let q = |from: &str, count: u32| Quorum { from: Principal::parse(from).unwrap(), count };
        let quorums = [q("group:reviewers", 1), q("group:security", 1)];
        let (both, reviewers, security) = (vec!["reviewers".into(), "security".into()], vec!["reviewers".into()], vec!["security".into()]);
        assert_eq!(missing(&quorums, &[]), [("group:reviewers".to_string(), 1), ("group:security".to_string(), 1)]);
        // One person in both groups meets one of them, not both.
        assert_eq!(missing(&quorums, &[subject("x", &both)]).len(), 1);
        // X in both, then Y in reviewers only: X is placed in security, so both are met
        // (a first-come placement would put X in reviewers and leave security short).
        assert_eq!(missing(&quorums, &[subject("x", &both), subject("y", &reviewers)]), []);
        assert_eq!(missing(&quorums, &[subject("y", &reviewers), subject("z", &reviewers)]), [("group:security".to_string(), 1)]);
        assert_eq!(missing(&quorums, &[subject("s", &security), subject("y", &reviewers)]), []);
        let two = [q("group:reviewers", 2), q("carol", 1)];
        assert_eq!(
            missing(&two, &[subject("y", &reviewers)]),
            [("group:reviewers".to_string(), 1), ("carol".to_string(), 1)],
            "a user quorum is met by that user alone"
        );
        assert_eq!(missing(&two, &[subject("y", &reviewers), subject("z", &reviewers), subject("carol", &[])]), []);
        assert_eq!(missing_text(&missing(&two, &[])), "needs 2 more from group:reviewers and 1 more from carol");
    }

    #[test]
    fn approvals_from_several_groups_are_read_and_bad_ones_named() {
        let rule = |approvals: &str| {
            policy(&format!(
                "[[rule]]\nname = \"prod\"\nrepos = [\"prod/*\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\n{approvals}\nmax_duration = \"1h\"\n"
            ))
        };
        let p = rule("approvals = [{ from = \"group:reviewers\", count = 2 }, { from = \"group:security\" }]").unwrap();
        let r = &p.rules()[0];
        assert_eq!(r.approvals_required, 3);
        assert_eq!(r.approvers_display(), ["group:reviewers", "group:security"], "the froms are the approvers");
        assert_eq!(r.quorums.len(), 2);
        assert!(p.has_quorums());
        assert!(!policy(DEMO).unwrap().has_quorums(), "none asks several principals");
        let sec = vec!["security".to_string()];
        assert!(r.may_approve(&subject("s", &sec)));
        assert!(!r.may_approve(&subject("x", &[])));
        for (approvals, says) in [
            ("approvers = [\"bob\"]\napprovals = [{ from = \"group:security\" }]", "leave out `approvers`"),
            ("approvals = []", "names no `from`"),
            ("approvals = [{ from = \"group:security\", count = 0 }]", "must be at least 1"),
            ("approvals = [{ from = \"carol\", count = 2 }]", "one person, who counts once"),
            ("approvals = [{ from = \"group:a\" }, { from = \"group:a\" }]", "named twice"),
            ("approvals = [{ from = \"group:\" }]", "bad group name"),
            ("auto_approve = true\napprovals = [{ from = \"group:a\" }]", "cannot also require approvals"),
        ] {
            let err = rule(approvals).unwrap_err().to_string();
            assert!(err.contains(says), "{approvals}: {err}");
        }
        // Wrong shapes, named by the TOML reader with their line.
        for (approvals, says) in [
            ("approvals = [{ from = \"group:a\", cnt = 1 }]", "unknown field `cnt`"),
            ("approvals = -1", "a number of approvals, or a list of { from"),
            ("approvals = \"two\"", "a number of approvals, or a list of { from"),
        ] {
            let src =
                format!("[[rule]]\nrepos = [\"x\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\n{approvals}\nmax_duration = \"1h\"\n");
            let Err(err) = toml::from_str::<File>(&src) else { panic!("{approvals} parsed") };
            let err = err.to_string();
            assert!(err.contains(says) && err.contains("line 5"), "{approvals}: {err}");
        }
    }

    const DEMO: &str = r#"
[[rule]]
name = "demo-read"
repos = ["demo"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "demo-write"
repos = ["demo"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
approvals = 1
reason_required = true
max_duration = "8h"

[[rule]]
name = "acme"
repos = ["acme/*"]
levels = ["read", "write", "admin"]
requesters = ["*"]
approvers = ["carol", "group:reviewers"]
approvals = 2
max_duration = "1h"
"#;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_matching_rule_applies() {
        let p = policy(DEMO).unwrap();
        let dev = groups(&["developers"]);
        let alice = Subject { name: "alice", groups: &dev };
        let r = p.rule_for("demo", Level::Read, &alice).unwrap();
        assert_eq!(r.name, "demo-read");
        assert!(r.auto_approve);
        assert_eq!(r.approvals_required, 0);
        assert_eq!(p.rule_for("acme/api", Level::Admin, &alice).unwrap().approvals_required, 2);
    }

    #[test]
    fn default_deny_and_requester_checks() {
        let p = policy(DEMO).unwrap();
        let none: Vec<String> = vec![];
        let mallory = Subject { name: "mallory", groups: &none };
        assert_eq!(p.rule_for("demo", Level::Admin, &mallory).unwrap_err(), Refusal::NoRule { repo: "demo".into(), level: Level::Admin });
        assert!(matches!(p.rule_for("demo", Level::Read, &mallory), Err(Refusal::NotRequester { .. })));
        assert!(matches!(p.rule_for("other", Level::Read, &mallory), Err(Refusal::NoRule { .. })));
        // `*` does not cross `/`.
        assert!(matches!(p.rule_for("acme/api/sub", Level::Read, &mallory), Err(Refusal::NoRule { .. })));
        assert!(p.rule_for("acme/api", Level::Read, &mallory).is_ok());
    }

    #[test]
    fn duration_and_reason_are_enforced() {
        let p = policy(DEMO).unwrap();
        let dev = groups(&["developers"]);
        let alice = Subject { name: "alice", groups: &dev };
        let h = |s: &str| s.parse::<AccessDuration>().unwrap();
        assert!(matches!(p.check_request("demo", Level::Write, h("9h"), Some("x"), &alice), Err(Refusal::TooLong { .. })));
        assert!(matches!(p.check_request("demo", Level::Write, h("1h"), None, &alice), Err(Refusal::ReasonRequired { .. })));
        assert!(matches!(p.check_request("demo", Level::Write, h("1h"), Some("  "), &alice), Err(Refusal::ReasonRequired { .. })));
        assert!(p.check_request("demo", Level::Write, h("8h"), Some("hotfix"), &alice).is_ok());
        let msg = p.check_request("demo", Level::Write, h("9h"), Some("x"), &alice).unwrap_err().to_string();
        assert!(msg.contains("9h") && msg.contains("8h"), "{msg}");
    }

    #[test]
    fn approvers_by_user_and_group() {
        let p = policy(DEMO).unwrap();
        let rule = p.rule("acme").unwrap();
        let none: Vec<String> = vec![];
        let rev = groups(&["reviewers"]);
        assert!(rule.may_approve(&Subject { name: "carol", groups: &none }));
        assert!(rule.may_approve(&Subject { name: "bob", groups: &rev }));
        assert!(!rule.may_approve(&Subject { name: "alice", groups: &none }));
        assert!(p.is_approver_for("demo", Level::Write, &Subject { name: "bob", groups: &rev }));
        assert!(!p.is_approver_for("demo", Level::Read, &Subject { name: "bob", groups: &rev }));
    }

    #[test]
    fn bad_rules_name_their_line() {
        let cases = [
            (
                "[[rule]]\nrepos = [\"x\"]\nlevels = [\"owner\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n",
                "unknown level `owner`",
            ),
            ("\n\n[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nmax_duration = \"1h\"\n", "needs `approvers`"),
            (
                "[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\napprovers = [\"bob\"]\napprovals = 0\nmax_duration = \"1h\"\n",
                "at least 1",
            ),
            (
                "[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"forever\"\n",
                "max_duration",
            ),
            (
                "[[rule]]\nrepos = [\"[\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n",
                "bad repo pattern",
            ),
            (
                "[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"bad name\"]\nauto_approve = true\nmax_duration = \"1h\"\n",
                "bad principal",
            ),
            (
                "[[rule]]\nrepos = []\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n",
                "at least one repo",
            ),
        ];
        for (src, needle) in cases {
            let err = policy(src).unwrap_err();
            assert!(err.message.contains(needle), "{needle}: {err}");
        }
        let err = policy("\n\n[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nmax_duration = \"1h\"\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.to_string().starts_with("policy rule at line 3:"));
    }

    #[test]
    fn rules_that_could_never_pass_are_refused() {
        let rule = |body: &str| format!("[[rule]]\nrepos = [\"x\"]\nlevels = [\"write\"]\nmax_duration = \"1h\"\n{body}");
        for (body, needle) in [
            ("requesters = [\"alice\"]\napprovers = [\"alice\"]\n", "alice may request but could never be approved"),
            ("requesters = [\"*\"]\napprovers = [\"bob\"]\napprovals = 2\n", "needs 2 approvals but names only 1 approver(s) (bob)"),
            ("requesters = [\"alice\", \"bob\"]\napprovers = [\"alice\", \"bob\"]\napprovals = 2\n", "could never be approved"),
        ] {
            let err = policy(&rule(body)).unwrap_err();
            assert_eq!(err.line, 1);
            assert!(err.message.contains(needle), "{body}: {err}");
        }
        for ok in [
            "requesters = [\"alice\"]\napprovers = [\"alice\", \"bob\"]\n",
            "requesters = [\"group:dev\"]\napprovers = [\"group:dev\"]\napprovals = 3\n",
            "requesters = [\"*\"]\napprovers = [\"bob\", \"carol\"]\napprovals = 2\n",
        ] {
            assert!(policy(&rule(ok)).is_ok(), "{ok}");
        }
        let err =
            policy("[[rule]]\nrepos = [\"\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n")
                .unwrap_err();
        assert!(err.message.contains("bad repo pattern ``"), "{err}");
    }

    #[test]
    fn rules_may_name_the_networks_their_grants_are_used_from() {
        let src = "[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\nfrom = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n";
        let p = policy(src).unwrap();
        assert_eq!(p.rules()[0].from.len(), 3);
        let err = policy(&src.replace("10.0.0.0/8", "10.0.0.0/33")).unwrap_err();
        assert!(err.message.contains("`10.0.0.0/33` is not a network"), "{err}");
    }

    #[test]
    fn auto_approval_and_approvals_exclude_each_other() {
        let src = "[[rule]]\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n";
        let err = policy(&format!("{src}approvals = 2\n")).unwrap_err();
        assert!(err.message.contains("cannot also require approvals"), "{err}");
        let zero = policy(&format!("{src}approvals = 0\n")).unwrap();
        assert_eq!(zero.rules()[0].approvals_required, 0, "auto-approved with `approvals = 0` said outright");
        let err = policy(&src.replace("auto_approve = true", "approvers = [\"carol\"]\napprovals = 0")).unwrap_err();
        assert!(err.message.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn rules_may_scope_their_grants_to_refs() {
        let src = "[[rule]]\nrepos = [\"x\"]\nlevels = [\"write\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\nrefs = [\"hotfix/*\", \"refs/tags/v*\"]\nallow_deletes = true\n";
        let p = policy(src).unwrap();
        assert_eq!(p.rules()[0].refs.to_vec(), ["refs/heads/hotfix/*", "refs/tags/v*"]);
        assert!(p.rules()[0].allow_deletes);
        let unscoped = policy(&src.replace("refs = [\"hotfix/*\", \"refs/tags/v*\"]\nallow_deletes = true\n", "")).unwrap();
        assert!(unscoped.rules()[0].refs.is_all() && !unscoped.rules()[0].allow_deletes);
        let err = policy(&src.replace("hotfix/*", "hot fix")).unwrap_err();
        assert!(err.message.starts_with("refs: invalid ref pattern `hot fix`"), "{err}");
    }

    #[test]
    fn duplicate_rule_names_are_refused() {
        let src = "[[rule]]\nname = \"a\"\nrepos = [\"x\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n[[rule]]\nname = \"a\"\nrepos = [\"y\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"1h\"\n";
        let err = policy(src).unwrap_err();
        assert_eq!(err.line, 8);
        assert!(err.message.contains("duplicate"));
    }
}
