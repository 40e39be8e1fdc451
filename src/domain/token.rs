//! Bearer tokens and other secrets: generation, hashing, comparison.
//!
//! A token is `jit_` followed by 256 random bits in unpadded base64url. The
//! broker stores only its SHA-256 (a token has full entropy, so a fast hash is
//! the right tool; a password hash would add nothing but latency) and compares
//! hashes in constant time. Secrets travel as [`SecretString`] (from
//! `secrecy`): its `Debug` is redacted, it has no `Display`, and it is
//! serialized only where a field says so with [`expose_secret`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
pub use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_PREFIX: &str = "jit_";

/// Serializes a secret in the clear: only for the few fields whose job is to
/// carry one (an issued token, a minted credential, the stored login).
pub fn expose_secret<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// [`expose_secret`] for an optional secret (skip `None` with `skip_serializing_if`).
pub fn expose_optional_secret<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(s) => expose_secret(s, serializer),
        None => serializer.serialize_none(),
    }
}

/// How git sends a credential to its host: as a user name and password
/// (HTTP Basic, what every host takes), or as the bare token (HTTP Bearer:
/// Bitbucket Data Center's repository tokens, which it refuses in Basic).
/// git sends Bearer from 2.46 on (the helper's `authtype` capability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    #[default]
    Basic,
    Bearer,
}

impl AuthScheme {
    pub fn is_basic(&self) -> bool {
        *self == AuthScheme::Basic
    }
}

/// The SHA-256 of a token, hex-encoded: what the broker keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Constant-time equality, so a comparison leaks nothing about where two hashes differ.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// A fresh token with `prefix` (`jit_` for users; providers use their own).
pub fn generate(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether a string has the shape of a jit token (used to give a clearer error
/// than "wrong token" when someone pastes something else).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A short, one-way name for a token: the local credential cache keys each
/// credential by the login that minted it, so git in a shell logged in as
/// someone else is never answered with it. (The token itself never leaves
/// the keychain; 64 bits of SHA-256 cannot be turned back into it.)
pub fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(token.trim().as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_in_clear_only_where_a_field_says_so() {
        #[derive(serde::Serialize)]
        struct Shown {
            #[serde(serialize_with = "expose_secret")]
            token: SecretString,
            #[serde(serialize_with = "expose_optional_secret")]
            maybe: Option<SecretString>,
            #[serde(serialize_with = "expose_optional_secret")]
            none: Option<SecretString>,
        }
        let shown = Shown { token: "jit_a".to_string().into(), maybe: Some("jit_b".to_string().into()), none: None };
        assert_eq!(serde_json::to_string(&shown).unwrap(), r#"{"token":"jit_a","maybe":"jit_b","none":null}"#);
    }

    /// Basic is the default and is left off the wire, so an answer reads as it
    /// did before Bearer existed; Bearer is always said, in lower case.
    #[test]
    fn only_bearer_is_named_on_the_wire() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Answer {
            #[serde(default, skip_serializing_if = "AuthScheme::is_basic")]
            authtype: AuthScheme,
        }
        assert!(AuthScheme::Basic.is_basic());
        assert!(!AuthScheme::Bearer.is_basic());
        assert_eq!(serde_json::to_string(&Answer { authtype: AuthScheme::Basic }).unwrap(), "{}");
        assert_eq!(serde_json::to_string(&Answer { authtype: AuthScheme::Bearer }).unwrap(), r#"{"authtype":"bearer"}"#);
        let old: Answer = serde_json::from_str("{}").unwrap();
        assert_eq!(old.authtype, AuthScheme::Basic, "an answer without it is Basic");
    }

    #[test]
    fn a_fingerprint_is_short_stable_and_one_per_token() {
        let a = fingerprint("jit_alice_token");
        assert_eq!(a, "55c4bc0ac5bc6ac2", "SHA-256's first 8 bytes, in hex");
        assert_eq!(fingerprint(" jit_alice_token\n"), a, "as the token is read: trimmed");
        assert_ne!(fingerprint("jit_bob_token"), a);
    }

    #[test]
    fn tokens_are_long_random_and_shaped() {
        let a = generate(TOKEN_PREFIX);
        let b = generate(TOKEN_PREFIX);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(looks_like_token(a.expose_secret()), "{}", a.expose_secret());
        // 32 bytes = 256 bits of randomness.
        let raw = URL_SAFE_NO_PAD.decode(&a.expose_secret()[TOKEN_PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), 32);
        assert!(!looks_like_token("ghp_abc"));
        // The shape exactly: the prefix, 43 characters, base64url's alphabet.
        let body = "-_".to_string() + &"a".repeat(41);
        assert!(looks_like_token(&format!("jit_{body}")));
        assert!(!looks_like_token(&format!("jit_{}", &body[1..])), "42 characters");
        assert!(!looks_like_token(&format!("jit_{body}a")), "44 characters");
        assert!(!looks_like_token(&format!("jit_!{}", &body[1..])), "a character outside base64url");
        assert!(!looks_like_token(&format!("jit_+{}", &body[1..])), "standard base64 is not url-safe");
    }

    #[test]
    fn hashes_are_sha256_and_compare_by_value() {
        // The known SHA-256 vector for "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(TokenHash::of("abc").0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let t = generate(TOKEN_PREFIX);
        assert!(TokenHash::of(t.expose_secret()).matches(&TokenHash::of(t.expose_secret())));
        assert!(!TokenHash::of(t.expose_secret()).matches(&TokenHash::of("jit_other")));
    }

    #[test]
    fn secrets_never_print_but_serialize_where_asked() {
        let s = generate(TOKEN_PREFIX);
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains(&s.expose_secret()[4..]), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        #[derive(serde::Serialize)]
        struct Issued {
            #[serde(serialize_with = "expose_secret")]
            token: SecretString,
        }
        let json = serde_json::to_value(Issued { token: s.clone() }).unwrap();
        assert_eq!(json["token"].as_str(), Some(s.expose_secret()));
    }
}
