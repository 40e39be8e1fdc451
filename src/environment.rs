//! Every environment variable jit reads, in one list: `--help` is rendered
//! from it, and a test checks that the code reads no variable it lacks.

/// Which side reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The commands that talk to a broker (and git's helpers).
    Client,
    /// `jit server`.
    Server,
    /// Both.
    Both,
}

pub struct Variable {
    pub name: &'static str,
    pub reader: Reader,
    pub meaning: &'static str,
}

const fn var(name: &'static str, reader: Reader, meaning: &'static str) -> Variable {
    Variable { name, reader, meaning }
}

pub const VARIABLES: &[Variable] = &[
    var("JIT_SERVER", Reader::Client, "the broker's URL (overrides the stored login's)"),
    var("JIT_TOKEN", Reader::Client, "a bearer token (overrides the stored one; sent only to JIT_SERVER or the stored server)"),
    var("JIT_CA_FILE", Reader::Client, "a CA certificate (PEM) to trust for the broker beyond the system's roots"),
    var("JIT_ALLOW_INSECURE_HTTP", Reader::Client, "1: send the token over plain http to a non-loopback broker anyway (warned)"),
    var("JIT_KEYRING", Reader::Client, "auto | secret-service | keyutils | file: where secrets are kept"),
    var("JIT_KEYRING_NAMESPACE", Reader::Client, "keeps this shell's keychain entries apart from others' of the same OS user"),
    var("JIT_DATABASE_URL", Reader::Server, "the PostgreSQL database (postgres://…; overrides server.database_url)"),
    var("JIT_LOG", Reader::Server, "log filter (default: info), e.g. jit=debug"),
    var("JIT_LOG_FORMAT", Reader::Server, "text (default) | json: one JSON object a log line, with the HTTP request's id"),
    var("NO_COLOR", Reader::Both, "no colour in output or logs"),
    var("HOME", Reader::Both, "the default for XDG_DATA_HOME (~/.local/share) and for git's global config (~/.gitconfig)"),
    var("XDG_DATA_HOME", Reader::Both, "where jit keeps its local index (no secrets) and the dev broker its data"),
    var("XDG_CONFIG_HOME", Reader::Client, "where `jit setup` finds git's global config, as git does"),
    var("GIT_CONFIG_GLOBAL", Reader::Client, "the global git config `jit setup` edits, as git chooses it"),
    var("DISPLAY", Reader::Client, "a desktop: `jit login` opens the identity provider's page in its browser (also WAYLAND_DISPLAY)"),
    var("WAYLAND_DISPLAY", Reader::Client, "see DISPLAY"),
    var("DBUS_SESSION_BUS_ADDRESS", Reader::Client, "the Secret Service's bus (JIT_KEYRING=auto uses it when set)"),
    var("GIT_SSH_COMMAND", Reader::Client, "git's ssh, honoured by jit's remote helper as git honours it (also GIT_SSH, GIT_SSH_VARIANT)"),
    var("GIT_SSH", Reader::Client, "see GIT_SSH_COMMAND"),
    var("GIT_SSH_VARIANT", Reader::Client, "see GIT_SSH_COMMAND"),
    var("GIT_ALLOW_PROTOCOL", Reader::Client, "git's protocol allow-list, applied by jit's remote helper (also GIT_PROTOCOL_FROM_USER)"),
    var("GIT_PROTOCOL_FROM_USER", Reader::Client, "see GIT_ALLOW_PROTOCOL"),
    var("GIT_EXEC_PATH", Reader::Client, "where jit's remote helper finds git-remote-https, as git sets it"),
    var("PATH", Reader::Server, "where the gateway finds git (git http-backend)"),
];

/// The `Environment:` section of `--help` for `reader`'s commands (`Both`:
/// every variable, for `jit --help`).
pub fn help(reader: Reader) -> String {
    let mut text = String::from("Environment:");
    for v in VARIABLES.iter().filter(|v| reader == Reader::Both || v.reader == reader || v.reader == Reader::Both) {
        // The "see …" entries are named by the one they point to.
        if v.meaning.starts_with("see ") {
            continue;
        }
        text.push_str(&format!("\n  {:<24} {}", v.name, v.meaning));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_lists_its_own_and_the_shared_ones() {
        let client = help(Reader::Client);
        assert!(client.contains("JIT_TOKEN") && client.contains("NO_COLOR") && !client.contains("JIT_LOG"));
        let server = help(Reader::Server);
        assert!(server.contains("JIT_LOG") && server.contains("NO_COLOR") && !server.contains("JIT_TOKEN"));
        assert!(!client.contains("\n  GIT_SSH "), "pointed-to entries are named by their first");
        let all = help(Reader::Both);
        assert!(VARIABLES.iter().filter(|v| !v.meaning.starts_with("see ")).all(|v| all.contains(v.name)));
    }
}
