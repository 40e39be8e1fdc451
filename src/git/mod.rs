//! Git's edges: the credential-helper protocol, the remote helper that routes
//! fronted repos' URLs, and the global git config edits `jit setup` makes.

pub mod config;
pub mod credential;
#[cfg(unix)]
pub mod remote_helper;
