//! Rules without I/O: levels, durations, repo names, policy, the request state
//! machine, tokens and the audit chain. Everything here is deterministic and
//! unit-tested in place; the broker and the CLI call it and never re-implement it.

pub mod audit;
pub mod audit_archive;
pub mod audit_proof;
pub mod duration;
pub mod expiry;
pub mod identity;
pub mod level;
pub mod limits;
pub mod network;
pub mod notify;
pub mod policy;
pub mod receive_pack;
pub mod records;
pub mod refs;
pub mod repo;
pub mod request;
pub mod retry;
pub mod smart_http;
pub mod syslog;
pub mod text;
pub mod token;
pub mod transport;
pub mod url_rewrite;

pub use duration::AccessDuration;
pub use level::Level;
