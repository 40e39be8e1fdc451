//! Git's edges: the credential-helper protocol and the global git config edits
//! `jit setup` makes.

pub mod config;
pub mod credential;
