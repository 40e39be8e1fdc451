//! Secrets in the OS keychain: the login token and git credentials.
//!
//! Built on `keyring-core` with one store per platform, chosen here and
//! nowhere else: macOS Keychain, Windows Credential Manager, Secret Service on
//! Linux desktops (when a D-Bus session exists), kernel keyutils on headless
//! Linux (our own store, [`keyutils`], in the user's persistent keyring, so it
//! works in a plain shell, a container or cron with no session keyring). `JIT_KEYRING=auto|secret-service|keyutils|file` overrides; `file` is
//! an explicit, warned opt-in for machines with no keychain (mode 0600, under
//! the user's data dir).
//!
//! Two guarantees matter more than convenience:
//! - No silent in-memory fallback: entries are always built in a store chosen
//!   here (never `keyring-core`'s default store), and a store that does not
//!   outlive the process is refused ([`require_persistent`]).
//! - No hanging: calls into a store that talks to another process (Secret
//!   Service, which may be locked and prompting) run with a timeout. Kernel
//!   keyutils is a system call and is called directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::api::CredentialPersistence;
use keyring_core::{CredentialStore, Entry};

use crate::domain::token::{ExposeSecret, SecretString};

#[cfg(target_os = "linux")]
pub mod keyutils;

/// How long a keychain call may take before we give up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Keyutils,
    MacosKeychain,
    WindowsCredentialManager,
    File,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
            Backend::MacosKeychain => "macos-keychain",
            Backend::WindowsCredentialManager => "windows-credential-manager",
            Backend::File => "file",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("unknown JIT_KEYRING value `{0}`: expected auto, secret-service, keyutils or file")]
    UnknownBackend(String),
    #[error("the {backend} keychain is not available: {message}")]
    Unavailable { backend: &'static str, message: String, hint: Option<String> },
    #[error("the {backend} keychain did not answer within {secs}s (is it locked?)")]
    Timeout { backend: &'static str, secs: u64 },
    #[error("refusing the {0} keychain: it does not keep secrets beyond this process")]
    NotPersistent(String),
    #[error("keychain file {path}: {message}")]
    File { path: PathBuf, message: String },
}

impl KeychainError {
    pub fn hint(&self) -> Option<String> {
        match self {
            KeychainError::Unavailable { hint, .. } => hint.clone(),
            KeychainError::Timeout { .. } => Some("unlock your keychain, or set JIT_KEYRING=keyutils on a headless Linux machine".into()),
            _ => None,
        }
    }
}

enum Inner {
    Store(Arc<CredentialStore>),
    File(PathBuf),
}

/// An opened keychain: get, set and delete secrets by key.
pub struct Keychain {
    backend: Backend,
    inner: Inner,
    service: String,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keychain").field("backend", &self.backend).field("service", &self.service).finish()
    }
}

/// The service name entries live under; `JIT_KEYRING_NAMESPACE` keeps test
/// runs (or two brokers' logins) apart.
fn service_name() -> String {
    service_for(std::env::var("JIT_KEYRING_NAMESPACE").ok().as_deref())
}

fn service_for(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("jit-{ns}"),
        _ => "jit".to_string(),
    }
}

/// Refuses stores that keep secrets only in memory (such as `keyring-core`'s mock).
pub fn require_persistent(store: &Arc<CredentialStore>) -> Result<(), KeychainError> {
    match store.persistence() {
        CredentialPersistence::EntryOnly | CredentialPersistence::ProcessOnly => Err(KeychainError::NotPersistent(store.vendor())),
        _ => Ok(()),
    }
}

fn platform_default() -> Backend {
    if cfg!(target_os = "macos") {
        Backend::MacosKeychain
    } else if cfg!(target_os = "windows") {
        Backend::WindowsCredentialManager
    } else if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        Backend::SecretService
    } else {
        Backend::Keyutils
    }
}

/// Which backend `JIT_KEYRING` (or the platform) asks for.
pub fn choose_backend(setting: Option<&str>) -> Result<Backend, KeychainError> {
    match setting.map(str::trim).unwrap_or("auto") {
        "" | "auto" => Ok(platform_default()),
        "secret-service" => Ok(Backend::SecretService),
        "keyutils" => Ok(Backend::Keyutils),
        "file" => Ok(Backend::File),
        other => Err(KeychainError::UnknownBackend(other.to_string())),
    }
}

fn unavailable(backend: Backend, message: impl std::fmt::Display) -> KeychainError {
    KeychainError::Unavailable {
        backend: backend.name(),
        message: message.to_string(),
        hint: Some("set JIT_KEYRING to another backend (keyutils, secret-service, or file as a last resort)".into()),
    }
}

fn open_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    let store: Arc<CredentialStore> = match backend {
        #[cfg(target_os = "linux")]
        Backend::Keyutils => keyutils::Store::new().map_err(|e| map_error(backend, e))?,
        #[cfg(target_os = "linux")]
        // Connecting is already a conversation with the bus, which may never answer.
        Backend::SecretService => {
            bounded(backend, move || zbus_secret_service_keyring_store::Store::new().map_err(|e| unavailable(backend, e)))?
        }
        #[cfg(target_os = "macos")]
        Backend::MacosKeychain => apple_native_keyring_store::keychain::Store::new().map_err(|e| unavailable(backend, e))?,
        #[cfg(target_os = "windows")]
        Backend::WindowsCredentialManager => windows_native_keyring_store::Store::new().map_err(|e| unavailable(backend, e))?,
        other => return Err(unavailable(other, "not supported on this platform")),
    };
    require_persistent(&store)?;
    Ok(store)
}

/// The file used by `JIT_KEYRING=file`.
pub fn file_path() -> Option<PathBuf> {
    crate::fsutil::user_data_dir().map(|d| d.join("secrets.json"))
}

impl Keychain {
    /// Opens the keychain `JIT_KEYRING` names (default: the platform's).
    pub fn open() -> Result<Keychain, KeychainError> {
        let backend = choose_backend(std::env::var("JIT_KEYRING").ok().as_deref())?;
        let inner = match backend {
            Backend::File => Inner::File(file_path().ok_or_else(|| unavailable(backend, "no user data directory"))?),
            other => Inner::Store(open_store(other)?),
        };
        Ok(Keychain { backend, inner, service: service_name() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The backend, and for keyutils which keyring: for people.
    pub fn describe(&self) -> String {
        #[cfg(target_os = "linux")]
        if let Inner::Store(store) = &self.inner
            && let Some(ring) = store.as_any().downcast_ref::<keyutils::Store>().map(keyutils::Store::ring)
        {
            return match ring {
                keyutils::Ring::Persistent => "keyutils (your persistent keyring: kept across logouts, gone at reboot)".into(),
                keyutils::Ring::Session => "keyutils (this login's session keyring)".into(),
            };
        }
        match &self.inner {
            Inner::File(path) => format!("file ({}, mode 0600; not an OS keychain)", path.display()),
            Inner::Store(_) => self.backend.name().to_string(),
        }
    }

    /// The warning to show when a secret is written to the file backend.
    pub fn file_warning(&self) -> Option<String> {
        match &self.inner {
            Inner::File(path) => {
                Some(format!("warning: JIT_KEYRING=file keeps secrets in {} (mode 0600), not in an OS keychain", path.display()))
            }
            Inner::Store(_) => None,
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<SecretString>, KeychainError> {
        match &self.inner {
            Inner::File(path) => Ok(read_file(path)?.remove(key).map(SecretString::from)),
            Inner::Store(store) => {
                let (store, service, key, backend) = (store.clone(), self.service.clone(), key.to_string(), self.backend);
                self.call(move || {
                    let entry = Entry::new_in_store(&store, &service, &key).map_err(|e| map_error(backend, e))?;
                    match entry.get_password() {
                        Ok(p) => Ok(Some(SecretString::from(p))),
                        Err(keyring_core::Error::NoEntry) => Ok(None),
                        Err(e) => Err(map_error(backend, e)),
                    }
                })
            }
        }
    }

    pub fn set(&self, key: &str, secret: &SecretString) -> Result<(), KeychainError> {
        match &self.inner {
            Inner::File(path) => {
                let _guard = lock_file(path)?;
                let mut all = read_file(path)?;
                all.insert(key.to_string(), secret.expose_secret().to_string());
                write_file(path, &all)
            }
            Inner::Store(store) => {
                let (store, service, key, backend, value) =
                    (store.clone(), self.service.clone(), key.to_string(), self.backend, secret.clone());
                self.call(move || {
                    let entry = Entry::new_in_store(&store, &service, &key).map_err(|e| map_error(backend, e))?;
                    entry.set_password(value.expose_secret()).map_err(|e| map_error(backend, e))
                })
            }
        }
    }

    /// Writes and deletes a probe entry: whether secrets can be kept here at all.
    pub fn check_writable(&self) -> Result<(), KeychainError> {
        let probe = format!("probe-{}", std::process::id());
        self.set(&probe, &SecretString::from("probe"))?;
        self.delete(&probe).map(|_| ())
    }

    /// Deletes a secret; `Ok(false)` when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, KeychainError> {
        match &self.inner {
            Inner::File(path) => {
                let _guard = lock_file(path)?;
                let mut all = read_file(path)?;
                let existed = all.remove(key).is_some();
                if existed {
                    write_file(path, &all)?;
                }
                Ok(existed)
            }
            Inner::Store(store) => {
                let (store, service, key, backend) = (store.clone(), self.service.clone(), key.to_string(), self.backend);
                self.call(move || {
                    let entry = Entry::new_in_store(&store, &service, &key).map_err(|e| map_error(backend, e))?;
                    match entry.delete_credential() {
                        Ok(()) => Ok(true),
                        Err(keyring_core::Error::NoEntry) => Ok(false),
                        Err(e) => Err(map_error(backend, e)),
                    }
                })
            }
        }
    }

    /// Runs a store call, with a timeout for stores that talk to another process.
    fn call<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T, KeychainError> + Send + 'static) -> Result<T, KeychainError> {
        match self.backend {
            // A system call: it cannot hang on another process, so no thread for it.
            Backend::Keyutils => f(),
            backend => bounded(backend, f),
        }
    }
}

/// Runs `f` on a thread of its own and gives up after [`CALL_TIMEOUT`] (the
/// thread is left to finish or not; the process does not wait for it).
fn bounded<T: Send + 'static>(backend: Backend, f: impl FnOnce() -> Result<T, KeychainError> + Send + 'static) -> Result<T, KeychainError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(CALL_TIMEOUT).unwrap_or(Err(KeychainError::Timeout { backend: backend.name(), secs: CALL_TIMEOUT.as_secs() }))
}

/// Turns a store error into ours, with the fix for the known keyutils trap.
fn map_error(backend: Backend, e: keyring_core::Error) -> KeychainError {
    match (backend, &e) {
        (Backend::Keyutils, keyring_core::Error::NoStorageAccess(_)) => KeychainError::Unavailable {
            backend: backend.name(),
            message: format!(
                "no keyring to keep secrets in ({e}): the kernel offers no persistent keyring here and this process has no usable session keyring"
            ),
            hint: Some("run jit inside a session keyring: `keyctl session - <command>` (Debian package keyutils); JIT_KEYRING=file is the last resort".into()),
        },
        _ => unavailable(backend, e),
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, KeychainError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| KeychainError::File { path: path.to_path_buf(), message: format!("not a jit secrets file: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(KeychainError::File { path: path.to_path_buf(), message: e.to_string() }),
    }
}

fn lock_file(path: &Path) -> Result<crate::fsutil::FileLock, KeychainError> {
    crate::fsutil::lock(path).map_err(|e| KeychainError::File { path: path.to_path_buf(), message: e.to_string() })
}

fn write_file(path: &Path, all: &BTreeMap<String, String>) -> Result<(), KeychainError> {
    crate::fsutil::replace_private(path, &serde_json::to_vec_pretty(all).expect("strings serialize"))
        .map_err(|e| KeychainError::File { path: path.to_path_buf(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_choice_is_explicit_or_platform() {
        assert_eq!(choose_backend(Some("keyutils")).unwrap(), Backend::Keyutils);
        assert_eq!(choose_backend(Some("file")).unwrap(), Backend::File);
        assert_eq!(choose_backend(Some("secret-service")).unwrap(), Backend::SecretService);
        let err = choose_backend(Some("memory")).unwrap_err().to_string();
        assert!(err.contains("`memory`") && err.contains("keyutils"), "{err}");
        assert!(choose_backend(None).is_ok());
    }

    #[test]
    fn a_namespace_keeps_entries_apart_and_an_empty_one_is_none() {
        assert_eq!(service_for(Some("ci-7")), "jit-ci-7");
        assert_eq!(service_for(Some("")), "jit");
        assert_eq!(service_for(None), "jit");
    }

    #[test]
    fn debug_names_the_backend_and_service_only() {
        let kc = Keychain { backend: Backend::File, inner: Inner::File("/x/secrets.json".into()), service: "jit-t".into() };
        assert_eq!(format!("{kc:?}"), r#"Keychain { backend: File, service: "jit-t" }"#);
    }

    #[test]
    fn an_in_memory_store_is_refused() {
        // keyring-core's mock is what the `keyring` crate falls back to silently;
        // jit refuses any store that would lose secrets at exit.
        let mock: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        assert!(matches!(require_persistent(&mock), Err(KeychainError::NotPersistent(_))));
    }

    #[test]
    fn access_denied_on_keyutils_names_the_fix() {
        let e = map_error(Backend::Keyutils, keyring_core::Error::NoStorageAccess(Box::new(std::io::Error::other("denied"))));
        let hint = e.hint().unwrap();
        assert!(hint.contains("keyctl session -") && hint.contains("JIT_KEYRING=file"), "{hint}");
    }

    #[test]
    fn file_backend_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secrets.json");
        let kc = Keychain { backend: Backend::File, inner: Inner::File(path.clone()), service: "jit-test".into() };
        assert!(kc.get("login").unwrap().is_none());
        kc.set("login", &SecretString::from("s3cret")).unwrap();
        assert_eq!(kc.get("login").unwrap().unwrap().expose_secret(), "s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        assert!(kc.file_warning().unwrap().contains("0600"));
        assert!(kc.delete("login").unwrap());
        assert!(!kc.delete("login").unwrap());
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(kc.get("login"), Err(KeychainError::File { .. })));
        // Only a missing file is an empty one: one that cannot be read is an error, not "no secrets".
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(kc.get("login"), Err(KeychainError::File { .. })));
    }
}
