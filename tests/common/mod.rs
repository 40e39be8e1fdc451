//! Shared test harness: a real broker in-process on 127.0.0.1:0 over a real
//! SQLite file in a temp dir, with users whose tokens the test knows.

#![allow(dead_code)]

pub mod broker;
pub mod env;
pub mod process;

pub use broker::*;
pub use env::*;
pub use process::*;
