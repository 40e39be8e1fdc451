//! A keyring-core store over the Linux kernel's keyutils, in the user's
//! **persistent** keyring.
//!
//! The published keyutils store reaches every key through the process's
//! session keyring. A plain ssh shell, a container or a cron job often has no
//! session keyring of its own, only the user-session fallback, where linking
//! and reading keys is refused ("access denied"), so the store did not work
//! without `keyctl session -`. The persistent keyring (`_persistent.<uid>`,
//! see persistent-keyring(7)) is the kernel's answer: one per user, reachable
//! from any process of that user, kept across logouts until it goes unused
//! for `/proc/sys/kernel/keys/persistent_keyring_expiry` seconds (three days
//! by default; every use resets the timer), gone at reboot like every kernel
//! key. Where the kernel has no persistent keyrings, this store falls back to
//! the session keyring, and fails with the fix named when there is none.
//!
//! Keys are `user` keys described `keyring:{user}@{service}`, as the published
//! store names them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::{CredentialApi, CredentialPersistence, CredentialStoreApi};
use keyring_core::{Credential, Entry, Error, Result};
use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};

/// Which keyring the store ended up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    Persistent,
    Session,
}

#[derive(Debug)]
pub struct Store {
    ring: KeyRing,
    kind: Ring,
}

fn storage_error(e: KeyError) -> Error {
    match e {
        // No keyring this process may use: the one fix is to give it one.
        KeyError::AccessDenied | KeyError::PermissionDenied | KeyError::KeyRevoked | KeyError::KeyExpired => {
            Error::NoStorageAccess(Box::new(std::io::Error::other(format!("{e:?}"))))
        }
        other => Error::PlatformFailure(Box::new(std::io::Error::other(format!("{other:?}")))),
    }
}

impl Store {
    /// The persistent keyring (linked into this process's session, or the
    /// user-session fallback), else the session keyring.
    pub fn new() -> Result<Arc<Store>> {
        if let Ok(ring) = KeyRing::get_persistent(KeyRingIdentifier::Session) {
            return Ok(Arc::new(Store { ring, kind: Ring::Persistent }));
        }
        let ring = KeyRing::from_special_id(KeyRingIdentifier::Session, false).map_err(storage_error)?;
        Ok(Arc::new(Store { ring, kind: Ring::Session }))
    }

    pub fn ring(&self) -> Ring {
        self.kind
    }
}

impl CredentialStoreApi for Store {
    fn vendor(&self) -> String {
        "jit: Linux keyutils, user's persistent keyring".to_string()
    }

    fn id(&self) -> String {
        format!("{:?}", self.kind)
    }

    fn build(&self, service: &str, user: &str, _modifiers: Option<&HashMap<&str, &str>>) -> Result<Entry> {
        let key = Key { ring: self.ring, description: format!("keyring:{user}@{service}"), specifiers: (service.into(), user.into()) };
        Ok(Entry::new_with_credential(Arc::new(key)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn persistence(&self) -> CredentialPersistence {
        match self.kind {
            Ring::Persistent => CredentialPersistence::UntilReboot,
            Ring::Session => CredentialPersistence::UntilLogout,
        }
    }
}

/// One key, by description, in the store's keyring.
#[derive(Debug)]
struct Key {
    ring: KeyRing,
    description: String,
    specifiers: (String, String),
}

impl Key {
    fn find(&self) -> Result<linux_keyutils::Key> {
        self.ring.search(&self.description).map_err(|e| match e {
            KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked => Error::NoEntry,
            other => storage_error(other),
        })
    }
}

impl CredentialApi for Key {
    fn set_secret(&self, secret: &[u8]) -> Result<()> {
        // add_key replaces a key of the same type and description in this keyring.
        self.ring.add_key(&self.description, secret).map(|_| ()).map_err(storage_error)
    }

    fn get_secret(&self) -> Result<Vec<u8>> {
        self.find()?.read_to_vec().map_err(storage_error)
    }

    fn delete_credential(&self) -> Result<()> {
        self.find()?.invalidate().map_err(storage_error)
    }

    fn get_credential(&self) -> Result<Option<Arc<Credential>>> {
        self.find().map(|_| None)
    }

    fn get_specifiers(&self) -> Option<(String, String)> {
        Some(self.specifiers.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
