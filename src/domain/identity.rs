//! Who the identity provider says someone is: the jit user name and groups
//! read from a verified ID token's claims (and the userinfo answer), under
//! the names the `[oidc]` section gives them. No I/O: `server::oidc` fetches
//! and verifies, the broker decides with what this returns.
//!
//! A user name the IdP gives that jit would refuse anywhere else (`..`,
//! control characters, too long) refuses the sign-in; a group jit cannot name
//! is left out (and reported), because one odd group at the IdP must not lock
//! a person out of everything else.

use serde_json::{Map, Value};

use crate::domain::policy::is_valid_name;

/// The claims a sign-in reads, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// The jit user name (default `preferred_username`).
    pub username: String,
    /// The person's groups, each `group:VALUE` in policy (default `groups`).
    pub groups: String,
    /// With a name like `alice@example.com` (Entra ID's UPN, Google's
    /// e-mail): the one domain whose `@DOMAIN` is dropped; a name from any
    /// other domain refuses the sign-in.
    pub username_domain: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames { username: "preferred_username".to_string(), groups: "groups".to_string(), username_domain: None }
    }
}

/// A person as the identity provider vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The IdP's own stable id for the person (`sub`): a jit user made by
    /// one sign-in is the same person only if this matches.
    pub subject: String,
    pub name: String,
    /// Sorted, without duplicates.
    pub groups: Vec<String>,
    /// Groups the IdP sent that jit cannot name (left out).
    pub skipped_groups: Vec<String>,
    /// The `email` claim, unless the IdP says it is unverified (`email_verified: false`).
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "the identity provider sent no `{0}` claim; set `username_claim` in [oidc] to a claim it sends (e.g. `preferred_username`, `email`)"
    )]
    MissingClaim(String),
    #[error("the identity provider's `{claim}` claim is not text")]
    NotText { claim: String },
    #[error("the identity provider names this person `{name}`, which is not in the domain `{domain}` this broker takes")]
    OtherDomain { name: String, domain: String },
    #[error(
        "the identity provider names this person `{name}`, which cannot be a jit user name (1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit); ask an admin to set `username_claim`"
    )]
    BadName { name: String },
}

/// The identity in `claims` (the ID token's, with userinfo's merged in).
pub fn identity_from_claims(claims: &Map<String, Value>, names: &ClaimNames) -> Result<Identity, IdentityError> {
    let text = |claim: &str| -> Result<Option<String>, IdentityError> {
        match claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(IdentityError::NotText { claim: claim.to_string() }),
        }
    };
    let subject = text("sub")?.filter(|s| !s.is_empty()).ok_or_else(|| IdentityError::MissingClaim("sub".to_string()))?;
    let mut name = text(&names.username)?.ok_or_else(|| IdentityError::MissingClaim(names.username.clone()))?;
    if let Some(domain) = &names.username_domain {
        let local = name.rsplit_once('@').filter(|(_, d)| d.eq_ignore_ascii_case(domain)).map(|(local, _)| local.to_string());
        name = local.ok_or_else(|| IdentityError::OtherDomain {
            name: name.chars().take(80).collect::<String>().escape_default().to_string(),
            domain: domain.clone(),
        })?;
    }
    if !is_valid_name(&name) {
        let shown: String = name.chars().take(80).collect();
        return Err(IdentityError::BadName { name: shown.escape_default().to_string() });
    }
    let (groups, skipped_groups) = groups_from(claims.get(&names.groups));
    let verified = claims.get("email_verified").and_then(Value::as_bool) != Some(false);
    let email = text("email").ok().flatten().filter(|e| verified && e.contains('@') && !e.contains(char::is_control));
    Ok(Identity { subject, name, groups, skipped_groups, email })
}

/// The groups claim: a list of strings (or one string). Keycloak sends full
/// paths (`/developers`); the leading `/` is dropped, and a nested path, which
/// jit cannot name, is left out like any other group it cannot.
fn groups_from(claim: Option<&Value>) -> (Vec<String>, Vec<String>) {
    let values: Vec<&Value> = match claim {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::String(_)) => vec![one],
        _ => Vec::new(),
    };
    let (mut groups, mut skipped) = (Vec::new(), Vec::new());
    for value in values {
        let Some(text) = value.as_str() else {
            skipped.push(value.to_string().chars().take(80).collect());
            continue;
        };
        let name = text.strip_prefix('/').unwrap_or(text);
        if is_valid_name(name) {
            groups.push(name.to_string());
        } else {
            skipped.push(text.chars().take(80).collect::<String>().escape_default().to_string());
        }
    }
    groups.sort();
    groups.dedup();
    (groups, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn name_and_groups_come_from_the_configured_claims() {
        let c = claims(
            json!({"sub": "u-1", "preferred_username": "alice", "email": "a@x.org", "groups": ["reviewers", "/developers", "reviewers"]}),
        );
        let id = identity_from_claims(&c, &ClaimNames::default()).unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.name, "alice");
        assert_eq!(id.groups, vec!["developers", "reviewers"]);
        assert!(id.skipped_groups.is_empty());
        assert_eq!(id.email.as_deref(), Some("a@x.org"));
        let unverified = claims(json!({"sub": "u-1", "preferred_username": "alice", "email": "a@x.org", "email_verified": false}));
        assert_eq!(identity_from_claims(&unverified, &ClaimNames::default()).unwrap().email, None, "an unverified address is not used");

        let names = ClaimNames { username: "email_local".into(), groups: "roles".into(), username_domain: None };
        let c = claims(json!({"sub": "u-1", "email_local": "al.ice", "roles": "admins"}));
        let id = identity_from_claims(&c, &names).unwrap();
        assert_eq!((id.name.as_str(), id.groups), ("al.ice", vec!["admins".to_string()]));
    }

    #[test]
    fn a_domain_is_dropped_only_when_it_is_the_one_configured() {
        let names = ClaimNames { username: "email".into(), username_domain: Some("example.com".into()), ..ClaimNames::default() };
        let id = |email: &str| identity_from_claims(&claims(json!({"sub": "u", "email": email})), &names);
        assert_eq!(id("alice@example.com").unwrap().name, "alice");
        assert_eq!(id("alice@EXAMPLE.com").unwrap().name, "alice");
        for other in ["alice@evil.example.com", "alice@example.com.evil", "alice", "alice@"] {
            assert!(matches!(id(other), Err(IdentityError::OtherDomain { .. })), "{other}");
        }
        assert!(matches!(id("a@b@example.com"), Err(IdentityError::BadName { .. })), "what is left must still be a name");
    }

    #[test]
    fn a_name_jit_cannot_use_refuses_the_sign_in() {
        for bad in ["..", "../etc", "a\u{7}b", "", &"x".repeat(65), "alice@example.com"] {
            let c = claims(json!({"sub": "u", "preferred_username": bad}));
            let err = identity_from_claims(&c, &ClaimNames::default()).unwrap_err();
            assert!(matches!(err, IdentityError::BadName { .. }), "{bad:?}: {err:?}");
            assert!(!err.to_string().contains('\u{7}'), "control characters are escaped");
        }
    }

    #[test]
    fn missing_or_odd_claims_are_named() {
        let err = identity_from_claims(&claims(json!({"sub": "u"})), &ClaimNames::default()).unwrap_err();
        assert_eq!(err, IdentityError::MissingClaim("preferred_username".into()));
        let err = identity_from_claims(&claims(json!({"preferred_username": "alice"})), &ClaimNames::default()).unwrap_err();
        assert_eq!(err, IdentityError::MissingClaim("sub".into()));
        let err = identity_from_claims(&claims(json!({"sub": "u", "preferred_username": 7})), &ClaimNames::default()).unwrap_err();
        assert_eq!(err, IdentityError::NotText { claim: "preferred_username".into() });
    }

    #[test]
    fn groups_jit_cannot_name_are_left_out_not_fatal() {
        let c = claims(json!({"sub": "u", "preferred_username": "bob", "groups": ["ok", "/a/b", "has space", 5, "/"]}));
        let id = identity_from_claims(&c, &ClaimNames::default()).unwrap();
        assert_eq!(id.groups, vec!["ok"]);
        assert_eq!(id.skipped_groups, vec!["/a/b", "has space", "5", "/"]);
        let c = claims(json!({"sub": "u", "preferred_username": "bob"}));
        assert!(identity_from_claims(&c, &ClaimNames::default()).unwrap().groups.is_empty());
    }
}
