//! Grants scoped to refs: which branches and tags a write grant may update.
//!
//! A rule may say `refs = ["refs/heads/hotfix/*"]`; a request may narrow that
//! (`jit request … --ref 'hotfix/*'`). A pattern is a full ref name where `*`
//! stands for any run of characters (`/` included); a short form such as
//! `hotfix/*` means `refs/heads/hotfix/*`. An empty scope is every ref.
//! Deleting a ref needs `admin` unless the rule allows deletes.

use std::fmt;

use super::Level;
use super::receive_pack::{RefUpdate, is_ref_name};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("invalid ref pattern `{0}`: use a ref name such as refs/heads/hotfix/* (`*` matches any characters)")]
    Invalid(String),
    #[error("ref pattern `{asked}` is outside what the rule allows ({allowed})")]
    OutsideRule { asked: String, allowed: String },
    #[error("ref pattern `{0}` holds a hidden or direction-changing character (U+{1:04X}), which would mislead the approver who reads it")]
    Hidden(String, u32),
}

/// One ref pattern, normalized to a full ref name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefPattern(String);

impl RefPattern {
    pub fn parse(input: &str) -> Result<RefPattern, RefError> {
        let input = input.trim();
        // Approvers read patterns; git would take these characters, people would not see them.
        if let Some(c) = input.chars().find(|c| super::text::is_hidden(*c)) {
            return Err(RefError::Hidden(input.escape_debug().to_string(), u32::from(c)));
        }
        let full = if input.starts_with("refs/") { input.to_string() } else { format!("refs/heads/{input}") };
        // Valid when every `*` stood for a plain name character.
        if input.is_empty() || full.len() > 255 || !is_ref_name(&full.replace('*', "x")) {
            return Err(RefError::Invalid(input.to_string()));
        }
        Ok(RefPattern(full))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the ref named `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }

    /// Whether every ref this pattern matches is matched by `outer` (each `*`
    /// here is then inside a `*` there, since `outer` reads it as a character).
    pub fn within(&self, outer: &RefPattern) -> bool {
        outer.matches(&self.0)
    }
}

impl fmt::Display for RefPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` matches any run of bytes; everything else itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// The refs a grant may update: empty is every ref.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefScope(Vec<RefPattern>);

impl RefScope {
    pub fn all() -> RefScope {
        RefScope(Vec::new())
    }

    /// Parses patterns as written (in a rule or on the command line).
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<RefScope, RefError> {
        let mut out: Vec<RefPattern> = patterns.iter().map(|p| RefPattern::parse(p.as_ref())).collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(RefScope(out))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, name: &str) -> bool {
        self.is_all() || self.0.iter().any(|p| p.matches(name))
    }

    /// Whether everything `inner` allows, this allows too.
    pub fn covers(&self, inner: &RefScope) -> bool {
        self.is_all() || (!inner.is_all() && inner.0.iter().all(|p| self.0.iter().any(|o| p.within(o))))
    }

    /// The scope of a grant: what the request asked, which must lie within
    /// the rule's; nothing asked is the rule's own.
    pub fn narrow(rule: &RefScope, asked: RefScope) -> Result<RefScope, RefError> {
        if asked.is_all() {
            return Ok(rule.clone());
        }
        if let Some(outside) = asked.0.iter().find(|p| !rule.covers(&RefScope(vec![(*p).clone()]))) {
            return Err(RefError::OutsideRule { asked: outside.to_string(), allowed: rule.to_string() });
        }
        Ok(asked)
    }

    /// As stored: one pattern a line; `None` for every ref.
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_all()).then(|| self.0.iter().map(RefPattern::as_str).collect::<Vec<_>>().join("\n"))
    }

    pub fn from_stored(stored: Option<&str>) -> Result<RefScope, RefError> {
        match stored {
            None => Ok(RefScope::all()),
            Some(text) => RefScope::parse(&text.lines().collect::<Vec<_>>()),
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for RefScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() { f.write_str("every ref") } else { f.write_str(&self.to_vec().join(", ")) }
    }
}

/// Why one ref update of a push is refused, if it is.
pub fn refusal(update: &RefUpdate, level: Level, scope: &RefScope, deletes_allowed: bool) -> Option<String> {
    if !scope.allows(&update.name) {
        return Some(format!("jit: your grant allows {} only", scope.to_vec().join(", ")));
    }
    if update.is_delete() && level < Level::Admin && !deletes_allowed {
        return Some("jit: deleting a ref needs an admin grant".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening round two, finding 15: `--ref` patterns took bidi and invisible characters.
    #[test]
    fn hidden_characters_are_not_ref_patterns() {
        for bad in ["release/\u{202E}1", "\u{200B}main", "hot\u{2066}fix/*"] {
            assert!(matches!(RefPattern::parse(bad), Err(RefError::Hidden(..))), "{bad:?}");
        }
        assert!(RefPattern::parse("release/é*").is_ok(), "other non-ASCII letters are names");
    }

    fn p(s: &str) -> RefPattern {
        RefPattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_are_full_ref_names_with_stars() {
        assert_eq!(p("hotfix/*").as_str(), "refs/heads/hotfix/*");
        assert_eq!(p("refs/tags/v*").as_str(), "refs/tags/v*");
        assert_eq!(p("main").as_str(), "refs/heads/main");
        for bad in ["", "refs/heads/a..b", "refs/heads/x.lock", "a b", "refs/heads/", "hot fix/*", "refs/heads/a\\b", "~x"] {
            assert!(RefPattern::parse(bad).is_err(), "{bad:?}");
        }
        // At most 255 bytes, as a full name.
        let longest = format!("refs/heads/{}", "x".repeat(244));
        assert_eq!(RefPattern::parse(&longest).unwrap().as_str().len(), 255);
        assert!(RefPattern::parse(&format!("{longest}x")).is_err());
        assert!(RefPattern::parse(&"x".repeat(300)).is_err());
    }

    #[test]
    fn stars_match_any_run_including_slashes() {
        let hotfix = p("hotfix/*");
        assert!(hotfix.matches("refs/heads/hotfix/x"));
        assert!(hotfix.matches("refs/heads/hotfix/a/b"));
        assert!(!hotfix.matches("refs/heads/hotfix"));
        assert!(!hotfix.matches("refs/heads/main"));
        assert!(!hotfix.matches("refs/heads/hotfixes/x"));
        assert!(p("refs/heads/*-wip").matches("refs/heads/a/b-wip"));
        assert!(!p("refs/heads/*-wip").matches("refs/heads/a-wipe"));
        assert!(p("main").matches("refs/heads/main") && !p("main").matches("refs/heads/main2"));
        assert!(p("a*b").matches("refs/heads/ab"), "a star may match nothing");
        assert!(!p("a*ab").matches("refs/heads/ab"), "what came before a star is not read again");
    }

    #[test]
    fn a_request_may_only_narrow_the_rule() {
        let rule = RefScope::parse(&["refs/heads/hotfix/*"]).unwrap();
        assert_eq!(RefScope::narrow(&rule, RefScope::all()).unwrap(), rule);
        let narrower = RefScope::parse(&["hotfix/INC-42*"]).unwrap();
        assert_eq!(RefScope::narrow(&rule, narrower.clone()).unwrap(), narrower);
        let err = RefScope::narrow(&rule, RefScope::parse(&["main"]).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "ref pattern `refs/heads/main` is outside what the rule allows (refs/heads/hotfix/*)");
        assert!(RefScope::narrow(&rule, RefScope::parse(&["refs/heads/*"]).unwrap()).is_err(), "wider is not narrower");
        assert!(RefScope::narrow(&RefScope::all(), RefScope::parse(&["main"]).unwrap()).is_ok());
    }

    #[test]
    fn covering_compares_scopes() {
        let all = RefScope::all();
        let heads = RefScope::parse(&["refs/heads/*"]).unwrap();
        let hotfix = RefScope::parse(&["hotfix/*"]).unwrap();
        assert!(all.covers(&hotfix) && all.covers(&all));
        assert!(heads.covers(&hotfix) && !hotfix.covers(&heads));
        assert!(!hotfix.covers(&all), "a scoped grant never covers an unscoped one");
        assert!(hotfix.covers(&hotfix));
    }

    #[test]
    fn scopes_are_stored_one_pattern_a_line() {
        let scope = RefScope::parse(&["refs/tags/v*", "hotfix/*", "hotfix/*"]).unwrap();
        assert_eq!(scope.to_stored().as_deref(), Some("refs/heads/hotfix/*\nrefs/tags/v*"));
        assert_eq!(RefScope::from_stored(scope.to_stored().as_deref()).unwrap(), scope);
        assert_eq!(RefScope::all().to_stored(), None);
        assert!(RefScope::from_stored(None).unwrap().is_all());
        assert_eq!(scope.to_string(), "refs/heads/hotfix/*, refs/tags/v*");
    }

    #[test]
    fn updates_outside_the_scope_and_deletes_below_admin_are_refused() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let update = |name: &str, new: &str| RefUpdate { name: name.into(), old: one.clone(), new: new.into() };
        let hotfix = RefScope::parse(&["hotfix/*"]).unwrap();
        assert_eq!(refusal(&update("refs/heads/hotfix/x", &one), Level::Write, &hotfix, false), None);
        assert_eq!(
            refusal(&update("refs/heads/main", &one), Level::Write, &hotfix, false).as_deref(),
            Some("jit: your grant allows refs/heads/hotfix/* only")
        );
        let delete = update("refs/heads/hotfix/x", &zero);
        assert_eq!(refusal(&delete, Level::Write, &hotfix, false).as_deref(), Some("jit: deleting a ref needs an admin grant"));
        assert_eq!(refusal(&delete, Level::Write, &hotfix, true), None, "the rule allows deletes");
        assert_eq!(refusal(&delete, Level::Admin, &hotfix, false), None);
        assert_eq!(refusal(&update("refs/heads/main", &one), Level::Write, &RefScope::all(), false), None);
    }
}
