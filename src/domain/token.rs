//! Bearer tokens and other secrets: generation, hashing, comparison, redaction.
//!
//! A token is `jit_` followed by 256 random bits in unpadded base64url. The
//! broker stores only its SHA-256 (a token has full entropy, so a fast hash is
//! the right tool; a password hash would add nothing but latency) and compares
//! hashes in constant time. [`Secret`] never shows its value in `Debug` or
//! `Display`; code must call [`Secret::expose`] to read it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_PREFIX: &str = "jit_";

/// A secret string that does not print itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
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
pub fn generate(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether a string has the shape of a jit token (used to give a clearer error
/// than "wrong token" when someone pastes something else).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_shaped() {
        let a = generate(TOKEN_PREFIX);
        let b = generate(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(looks_like_token(a.expose()), "{}", a.expose());
        // 32 bytes = 256 bits of randomness.
        let raw = URL_SAFE_NO_PAD.decode(&a.expose()[TOKEN_PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), 32);
        assert!(!looks_like_token("ghp_abc"));
    }

    #[test]
    fn hashes_compare_by_value() {
        let t = generate(TOKEN_PREFIX);
        assert!(TokenHash::of(t.expose()).matches(&TokenHash::of(t.expose())));
        assert!(!TokenHash::of(t.expose()).matches(&TokenHash::of("jit_other")));
        assert_eq!(TokenHash::of("abc").0.len(), 64);
    }

    #[test]
    fn secrets_never_print() {
        let s = generate(TOKEN_PREFIX);
        let shown = format!("{s} {s:?} {:?}", Some(&s));
        assert!(!shown.contains(&s.expose()[4..]), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
