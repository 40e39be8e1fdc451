//! `jit`: parse, dispatch, map errors to exit codes. Everything else lives in modules.

use clap::Parser;

fn main() {
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
