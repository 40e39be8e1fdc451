//! [`TestEnvironment`]: runs the real `jit` binary in a sealed environment.
//!
//! Each environment has its own HOME, XDG directories, global git config and
//! keyring namespace, and nothing from the caller's environment leaks in but
//! PATH. Every output is recorded; when the environment is dropped it fails
//! the test if any token it knows appears in an output that was not allowed to
//! carry one.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// stdout read as one of jit's tables: one map per row, keyed by column
    /// name. Columns are found where the header's names start, so cells may
    /// hold spaces (`Nov 26 00:26`) and widths may change without breaking a test.
    #[track_caller]
    pub fn table(&self) -> Vec<BTreeMap<String, String>> {
        parse_table(&self.stdout)
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}:\n{}", self.stdout);
        self
    }
}

pub struct TestEnvironment {
    pub root: tempfile::TempDir,
    pub namespace: String,
    pub env: BTreeMap<String, String>,
    secrets: Mutex<Vec<String>>,
    outputs: Mutex<Vec<(String, String)>>,
}

impl Default for TestEnvironment {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnvironment {
    pub fn new() -> TestEnvironment {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        for d in ["home", "data", "config", "state", "cache", "work"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let namespace = format!("test-{}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand_suffix());
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert("HOME".into(), home.display().to_string());
        env.insert("XDG_DATA_HOME".into(), root.path().join("data").display().to_string());
        env.insert("XDG_CONFIG_HOME".into(), root.path().join("config").display().to_string());
        env.insert("XDG_STATE_HOME".into(), root.path().join("state").display().to_string());
        env.insert("XDG_CACHE_HOME".into(), root.path().join("cache").display().to_string());
        env.insert("GIT_CONFIG_GLOBAL".into(), home.join(".gitconfig").display().to_string());
        env.insert("GIT_CONFIG_NOSYSTEM".into(), "1".into());
        env.insert("GIT_TERMINAL_PROMPT".into(), "0".into());
        env.insert("JIT_KEYRING".into(), "keyutils".into());
        env.insert("JIT_KEYRING_NAMESPACE".into(), namespace.clone());
        env.insert("NO_COLOR".into(), "1".into());
        env.insert("LANG".into(), "C.UTF-8".into());
        // Sealed to UTC unless the run asks for a zone (`TZ=Asia/Tokyo ./scripts/test`),
        // so the suite can be checked in any time zone.
        env.insert("TZ".into(), std::env::var("TZ").ok().filter(|tz| !tz.is_empty()).unwrap_or_else(|| "UTC".into()));
        TestEnvironment { root, namespace, env, secrets: Mutex::new(Vec::new()), outputs: Mutex::new(Vec::new()) }
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The helper's local index (`credentials.json`: no secrets), as tests read it.
    pub fn credential_index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.credential_index_path()).unwrap()).unwrap()
    }

    /// Replaces the helper's local index, for tests that stage what it holds.
    pub fn write_credential_index(&self, index: &serde_json::Value) {
        std::fs::write(self.credential_index_path(), serde_json::to_vec(index).unwrap()).unwrap();
    }

    fn credential_index_path(&self) -> PathBuf {
        self.data_dir().join("jit/credentials.json")
    }

    /// Registers a secret that must never appear in any output.
    pub fn secret(&self, s: &str) {
        crate::common::logs::secret(s);
        self.secrets.lock().unwrap().push(s.to_string());
    }

    /// A `Command` for the jit binary in this environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jit"));
        cmd.env_clear().envs(&self.env).args(args).current_dir(self.work_dir());
        cmd
    }

    fn record(&self, out: &Output, allowed_to_carry_tokens: bool) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // stdout may carry a secret where that is the command's job; stderr never.
        let stdout = if allowed_to_carry_tokens { String::new() } else { run.stdout.clone() };
        self.outputs.lock().unwrap().push((stdout, run.stderr.clone()));
        run
    }

    /// Runs jit with `extra` environment and `stdin`, and records its output.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)], stdin: Option<&str>) -> Run {
        self.execute(args, extra, stdin.unwrap_or(""), false)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs jit in `cwd` (a checkout whose remote names the repo), recorded.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.current_dir(cwd);
        let out = assert_cmd::Command::from_std(cmd).write_stdin("").timeout(std::time::Duration::from_secs(120)).output().unwrap();
        self.record(&out, false)
    }

    /// The credential helper: its stdout is git's credential, by design, and
    /// every password or pre-encoded credential it gives is registered as a
    /// secret no other output (nor a broker log) may show.
    ///
    /// It runs `git-credential-jit OP`, what `jit setup` has git run: the
    /// small binary answers from the cache and hands the rest to
    /// `jit credential OP`, so both are exercised.
    pub fn run_helper(&self, op: &str, stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-credential-jit"));
        cmd.env_clear().envs(&self.env).arg(op).current_dir(self.work_dir());
        let out = assert_cmd::Command::from_std(cmd).write_stdin(stdin).timeout(std::time::Duration::from_secs(120)).output().unwrap();
        self.credential_output(self.record(&out, true))
    }

    /// `jit credential OP` itself, as an older `jit setup` configured it.
    pub fn run_jit_helper(&self, op: &str, stdin: &str) -> Run {
        let run = self.execute(&["credential", op], &[], stdin, true);
        self.credential_output(run)
    }

    /// Registers every password or pre-encoded credential a helper gave as a secret.
    fn credential_output(&self, run: Run) -> Run {
        for line in run.stdout.lines() {
            if let Some(secret) = line.strip_prefix("password=").or_else(|| line.strip_prefix("credential=")) {
                self.secret(secret);
            }
        }
        run
    }

    /// For the commands whose job is to print a token (admin user add, token rotate).
    pub fn run_printing_token(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.execute(args, extra, "", true)
    }

    /// Runs jit to completion (bounded), feeding `stdin`, and records its output;
    /// `stdout_carries_secrets` exempts stdout (never stderr) from the leak check.
    fn execute(&self, args: &[&str], extra: &[(&str, &str)], stdin: &str, stdout_carries_secrets: bool) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(extra.iter().copied());
        let out = assert_cmd::Command::from_std(cmd).write_stdin(stdin).timeout(std::time::Duration::from_secs(120)).output().unwrap();
        self.record(&out, stdout_carries_secrets)
    }

    /// Runs jit with arguments that need not be UTF-8, bounded by `timeout`
    /// (`None`: it did not finish), and records its output.
    pub fn run_os(
        &self,
        args: &[std::ffi::OsString],
        extra: &[(&str, &str)],
        stdout_carries_secrets: bool,
        timeout: std::time::Duration,
    ) -> Option<Run> {
        let mut cmd = self.command(&[]);
        cmd.args(args).envs(extra.iter().copied());
        let out = assert_cmd::Command::from_std(cmd).write_stdin("").timeout(timeout).output().unwrap();
        if out.status.code().is_none() && out.status.signal() == Some(9) {
            return None;
        }
        Some(self.record(&out, stdout_carries_secrets))
    }

    /// Records what a terminal session showed, for the leak check.
    pub fn record_screen(&self, text: &str) {
        self.outputs.lock().unwrap().push((text.to_string(), String::new()));
    }

    /// Starts jit in the background (for waits interrupted or decided by
    /// others); killed if the test ends before it does.
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        ChildGuard::new(self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
    }

    /// Starts jit in the background with its stderr read as it comes, so a
    /// test can wait for what it says (`Watched::until`) instead of sleeping.
    pub fn spawn_watched(&self, args: &[&str]) -> Watched {
        let mut child = self.spawn(args);
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watched { child: Some(child), stderr, reader: Some(reader) }
    }

    /// Waits for a watched jit to exit, and records its output.
    pub fn finish(&self, mut watched: Watched) -> Run {
        let child = watched.child.take().unwrap();
        let out = child.wait_with_output();
        watched.reader.take().unwrap().join().unwrap();
        let stderr = watched.stderr.lock().unwrap().clone();
        let out = Output { status: out.status, stdout: out.stdout, stderr: stderr.into_bytes() };
        self.record(&out, false)
    }

    pub fn wait_child(&self, child: ChildGuard) -> Run {
        let out = child.wait_with_output();
        self.record(&out, false)
    }

    /// Runs real `git` in `cwd` with this environment, and records its output.
    pub fn git(&self, cwd: &Path, args: &[&str]) -> Run {
        self.git_with(cwd, args, &[])
    }

    pub fn git_with(&self, cwd: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
        std::fs::create_dir_all(cwd).unwrap();
        let out = Command::new("git")
            .env_clear()
            .envs(&self.env)
            .envs(extra.iter().copied())
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.com")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.com")
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        self.record(&out, false)
    }

    /// Logs `user` in to `server` through `jit login` with the token on stdin.
    pub fn login(&self, server: &str, token: &str) -> Run {
        self.secret(token);
        self.run_with(&["login", "--server", server], &[], Some(token))
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn exists(path: &Path) -> bool {
        path.exists()
    }
}

/// Parses an aligned table (a header line, then rows; columns at least two
/// spaces apart in the header) into rows keyed by column name.
#[track_caller]
pub fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<char> = lines.next().unwrap_or_else(|| panic!("no table in {text:?}")).chars().collect();
    // (name, start column) for each header name; names may hold single spaces.
    let mut columns: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < header.len() {
        if header[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < header.len() && !(header[i] == ' ' && header.get(i + 1).is_none_or(|c| *c == ' ')) {
            i += 1;
        }
        columns.push((header[start..i].iter().collect(), start));
    }
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            let cell =
                |from: usize, to: usize| chars[from.min(chars.len())..to.min(chars.len())].iter().collect::<String>().trim().to_string();
            columns
                .iter()
                .enumerate()
                .map(|(n, (name, start))| {
                    let end = columns.get(n + 1).map(|(_, s)| *s).unwrap_or(usize::MAX);
                    (name.clone(), cell(*start, end))
                })
                .collect()
        })
        .collect()
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos())
}

impl Drop for TestEnvironment {
    fn drop(&mut self) {
        // Leave nothing in the kernel keyring, whatever the test did.
        let _ = self.command(&["logout"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if std::thread::panicking() {
            return;
        }
        let secrets = self.secrets.lock().unwrap();
        for (stdout, stderr) in self.outputs.lock().unwrap().iter() {
            for s in secrets.iter() {
                assert!(
                    !stdout.contains(s.as_str()) && !stderr.contains(s.as_str()),
                    "a secret leaked into command output:\nstdout: {stdout}\nstderr: {stderr}"
                );
            }
        }
    }
}

/// A jit started by [`TestEnvironment::spawn_watched`]; killed if dropped unfinished.
pub struct Watched {
    child: Option<ChildGuard>,
    stderr: std::sync::Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    /// Waits (at most 20 s) until the process has said `needle` on stderr.
    pub fn until(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(std::time::Instant::now() < deadline, "never said {needle:?}; said {:?}", self.stderr.lock().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The first line said so far that holds `needle` (waits for it as [`Watched::until`]).
    pub fn line_with(&self, needle: &str) -> String {
        self.until(needle);
        self.stderr.lock().unwrap().lines().find(|l| l.contains(needle)).unwrap().to_string()
    }
}

/// A spawned process that is killed when the guard drops, so no broker or
/// helper outlives its test, even when the test panics. A broker's guard
/// keeps its stderr ([`ChildGuard::logged`]) and searches it for secrets
/// once the process is gone.
pub struct ChildGuard {
    child: Option<std::process::Child>,
    log: Option<crate::common::StderrLog>,
}

impl ChildGuard {
    pub fn new(child: std::process::Child) -> ChildGuard {
        ChildGuard { child: Some(child), log: None }
    }

    /// Guards a child whose stderr is piped, draining and keeping it.
    pub fn logged(mut child: std::process::Child) -> ChildGuard {
        let log = crate::common::StderrLog::read(&mut child);
        ChildGuard { child: Some(child), log: Some(log) }
    }

    pub fn log(&self) -> &crate::common::StderrLog {
        self.log.as_ref().expect("a logged child")
    }

    /// Waits for the process to end on its own, with what it wrote.
    pub fn wait_with_output(mut self) -> std::process::Output {
        self.child.take().expect("not yet waited for").wait_with_output().unwrap()
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.child.as_ref().expect("not yet waited for")
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.child.as_mut().expect("not yet waited for")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(log) = self.log.as_mut() {
            log.check();
        }
    }
}

/// Sends keys once the prompt is reading them: keys typed while the terminal
/// is still in line mode can be lost when the prompt switches it. The prompt
/// is reading when the terminal shows `mode` (`-icanon`: key by key, for the
/// pickers; `-echo`: hidden, for the token), as `stty` reads it through the
/// pty (on Linux the master reports the terminal's settings).
pub fn keys(session: &mut rexpect::session::PtySession, mode: &str, keys: &str) {
    let master = session.process().get_file_handle().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = std::process::Command::new("stty").arg("-a").stdin(master.try_clone().unwrap()).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).split_whitespace().any(|flag| flag == mode) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the terminal never showed {mode}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    session.send(keys).unwrap();
    session.flush().unwrap();
}
