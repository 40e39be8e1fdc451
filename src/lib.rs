//! jit: just-in-time access to Git repositories. One crate, built as the
//! `jit` binary (the CLI and the broker) and `git-credential-jit` (the
//! credential helper's fast path, `src/bin/`); the library form exists so
//! integration tests and benchmarks can embed the broker. ARCHITECTURE.md is the map.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod client;
pub mod clock;
pub mod commands;
pub mod credcache;
pub mod domain;
pub mod environment;
pub mod error;
pub mod fsutil;
pub mod git;
pub mod keychain;
pub mod output;
pub mod providers;
pub mod server;
pub mod session;
pub mod store;
pub mod tls_client;
pub mod ui;
