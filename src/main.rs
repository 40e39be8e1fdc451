//! `jit`: parse, dispatch, map errors to exit codes. Everything else lives in modules.

use clap::Parser;

fn main() {
    // git runs `jit credential get` for every fetch and push: a fresh cached
    // credential is answered before clap (or anything else) starts.
    let mut args = std::env::args_os().skip(1);
    // git runs jit's remote helper (the `remote-jit` alias, a link named
    // `git-remote-jit` to this binary) for URLs on hosts where jit fronts
    // repos; it becomes git's own transport.
    #[cfg(unix)]
    if std::env::args_os()
        .next()
        .is_some_and(|a| std::path::Path::new(&a).file_name().is_some_and(|n| n == jit::domain::url_rewrite::HELPER_LINK))
    {
        let rest: Vec<_> = std::env::args_os().skip(1).collect();
        match jit::git::remote_helper::run(&rest) {
            Ok(()) => std::process::exit(0),
            Err(err) => {
                eprintln!("fatal: jit: {err}");
                std::process::exit(128);
            }
        }
    }
    if let (Some(command), Some(op), None) = (args.next(), args.next(), args.next())
        && command == "credential"
        && matches!(op.to_str(), Some("get" | "store" | "erase"))
    {
        let op = op.to_string_lossy();
        let stdin = std::io::stdin();
        if let Err(read) = jit::commands::credential::answer_from_cache_alone(&op, stdin.lock(), &mut std::io::stdout().lock()) {
            let input = std::io::Read::chain(std::io::Cursor::new(read), stdin.lock());
            if let Err(err) = jit::commands::credential::answer(&op, input) {
                eprintln!("{err}");
            }
        }
        // A credential helper exits 0 whatever happens, as git expects.
        std::process::exit(0);
    }
    let cli = jit::cli::Cli::parse();
    let code = match cli.run() {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{err}");
            err.kind.code()
        }
    };
    std::process::exit(code);
}
