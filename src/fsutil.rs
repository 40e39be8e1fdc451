//! Files that hold anything private: created owner-only from the first byte,
//! replaced atomically, and changed by one process at a time. None of them
//! is ever reached through a symbolic link (a link planted where a key or a
//! marker belongs would send it elsewhere), and a directory or file another
//! user owns is refused, not used.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// jit's directory in the user's data directory (`$XDG_DATA_HOME/jit`).
pub fn user_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("jit"))
}

/// Creates a directory (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// `O_NOFOLLOW`: opening a symbolic link fails instead of following it.
#[cfg(unix)]
fn no_follow(options: &mut std::fs::OpenOptions) {
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
}

#[cfg(not(unix))]
fn no_follow(_: &mut std::fs::OpenOptions) {}

/// Refuses `path` when it is a symbolic link, or owned by another user than
/// this process's (an absent path is fine: it will be created as ours).
pub fn check_ours(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let refuse = |why: String| Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
    if meta.file_type().is_symlink() {
        return refuse(format!("{} is a symbolic link; jit keeps private files only where it put them", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return refuse(format!("{} is owned by uid {}, not by the broker's user (uid {me})", path.display(), meta.uid()));
        }
    }
    Ok(())
}

/// A secret file from the config (a key, a client secret): refused when
/// others may read it, as `chmod 600` would prevent. A file that cannot be
/// read is left to the reader to report.
pub fn check_private_file(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o007 != 0 {
                return Err(format!("{}: readable by others (mode {:o}); `chmod 600` it", path.display(), mode & 0o777));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a private file, never through a symbolic link, refusing one another user owns.
pub fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let mut file = options.open(path)?;
    check_ours(path)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

/// Makes `dir` owner-only, creating it if needed; returns whether it existed
/// with wider permissions (which were then narrowed). A `dir` that is a
/// symbolic link, or another user's, is refused.
pub fn make_private_dir(dir: &Path) -> std::io::Result<bool> {
    check_ours(dir)?;
    create_private_dir(dir)?;
    check_ours(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700 | 0o700))?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes a file readable by its owner only, created that way (never
/// world-readable, even briefly), and synced to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    no_follow(&mut options);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replaces `path` with `bytes`, owner-only in an owner-only directory: a
/// uniquely named temp file beside it (`tempfile` creates it mode 0600),
/// synced, then renamed over, so a crash or a second writer never leaves half
/// a file and readers see the old or the new one whole.
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".jit-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// An exclusive lock on `path` + `.lock`, held until dropped: one jit process
/// at a time reads, changes and writes the file it guards.
pub struct FileLock {
    _file: File,
}

pub fn lock(path: &Path) -> std::io::Result<FileLock> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(PathBuf::from(lock_path))?;
    file.lock()?;
    Ok(FileLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_private_creates_owner_only_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b.json");
        replace_private(&path, b"one").unwrap();
        replace_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temp file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn a_lock_serializes_read_modify_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counter");
        replace_private(&path, b"0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let _guard = lock(&path).unwrap();
                        let n: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
                        replace_private(&path, (n + 1).to_string().as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "200");
    }
}
