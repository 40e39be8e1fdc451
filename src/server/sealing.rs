//! Sealing what revoking a host credential needs (a GitHub installation
//! token, a GitLab token id) before it reaches the database: ChaCha20-Poly1305
//! (ring's AEAD) under a key from the broker's config, a fresh random nonce per
//! value, and the grant's id as associated data, so a sealed value copied to
//! another grant's row does not open. The key never leaves this type: not in
//! `Debug`, not in a log.
//!
//! The key file holds 32 random bytes as 64 hex digits
//! (`openssl rand -hex 32 > sealing.key`), readable by its owner only.

use std::path::Path;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::domain::token::SecretString;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("{0}")]
    Key(String),
    /// Tampered with, sealed for another grant, or under another key.
    #[error("a sealed value does not open with this broker's key (another key, another grant, or damaged)")]
    Open,
}

pub struct SealingKey {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// Reads the key file: 64 hex digits, and no permission for others.
    pub fn from_file(path: &Path) -> Result<SealingKey, SealError> {
        let text = std::fs::read_to_string(path).map_err(|e| SealError::Key(format!("{}: {e}", path.display())))?;
        crate::fsutil::check_private_file(path).map_err(SealError::Key)?;
        Self::from_hex(text.trim()).map_err(|e| SealError::Key(format!("{}: {e}", path.display())))
    }

    pub fn from_hex(hex_text: &str) -> Result<SealingKey, String> {
        let bytes = hex::decode(hex_text).map_err(|_| "the key is not hex (create one with `openssl rand -hex 32`)".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("the key is {} bytes; it must be 32 (64 hex digits: `openssl rand -hex 32`)", bytes.len()));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| "the key is not usable".to_string())?;
        Ok(SealingKey { key: LessSafeKey::new(key), random: SystemRandom::new() })
    }

    /// The nonce followed by the ciphertext and its tag, bound to grant `grant_id`.
    pub fn seal(&self, grant_id: i64, value: &SecretString) -> Vec<u8> {
        self.seal_for(&grant_id.to_be_bytes(), value)
    }

    pub fn open(&self, grant_id: i64, sealed: &[u8]) -> Result<SecretString, SealError> {
        self.open_for(&grant_id.to_be_bytes(), sealed)
    }

    /// Seals `value` bound to `context` (associated data: it opens only with
    /// the same context), for what is not a grant's: a session's refresh token.
    pub fn seal_for(&self, context: &[u8], value: &SecretString) -> Vec<u8> {
        use crate::domain::token::ExposeSecret;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).expect("the system's random source works");
        let mut sealed = value.expose_secret().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut sealed)
            .expect("a value under 256 GiB seals");
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        out
    }

    pub fn open_for(&self, context: &[u8], sealed: &[u8]) -> Result<SecretString, SealError> {
        // The nonce and the tag at least (an empty value seals to exactly that).
        if sealed.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(context), &mut body).map_err(|_| SealError::Open)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::ExposeSecret;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_value_opens_only_for_its_grant_and_key_and_shows_nothing() {
        let key = SealingKey::from_hex(KEY).unwrap();
        let secret = SecretString::from("ghs_installation-token".to_string());
        let sealed = key.seal(7, &secret);
        assert!(!sealed.windows(6).any(|w| w == b"ghs_in"), "the value is not in clear");
        assert_eq!(key.open(7, &sealed).unwrap().expose_secret(), "ghs_installation-token");
        assert_ne!(key.seal(7, &secret), sealed, "a fresh nonce each time");
        assert_eq!(key.open(8, &sealed).unwrap_err(), SealError::Open, "another grant's row");
        let other = SealingKey::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_eq!(other.open(7, &sealed).unwrap_err(), SealError::Open, "another key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(7, &tampered).unwrap_err(), SealError::Open);
        assert_eq!(key.open(7, &sealed[..5]).unwrap_err(), SealError::Open);
        assert_eq!(key.open(7, &sealed[..NONCE_LEN + 15]).unwrap_err(), SealError::Open);
        let empty = key.seal(7, &SecretString::from(String::new()));
        assert_eq!(empty.len(), NONCE_LEN + 16);
        assert_eq!(key.open(7, &empty).unwrap().expose_secret(), "", "the shortest sealed value opens");
        assert_eq!(format!("{key:?}"), "SealingKey(..)");
    }

    #[test]
    fn the_key_file_is_64_hex_digits_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        assert!(SealingKey::from_hex("abc").unwrap_err().contains("not hex"));
        assert!(SealingKey::from_hex("abcd").unwrap_err().contains("2 bytes; it must be 32"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SealingKey::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("readable by others (mode 644)"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        SealingKey::from_file(&path).unwrap();
        let missing = SealingKey::from_file(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
