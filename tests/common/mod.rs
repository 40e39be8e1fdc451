//! Shared test harness: a real broker in-process on 127.0.0.1:0 over a real
//! SQLite file in a temp dir, with users whose tokens the test knows.

#![allow(dead_code)]

pub mod broker;
pub mod env;
pub mod fake_bitbucket;
pub mod fake_github;
pub mod fake_gitlab;
pub mod fake_host;
pub mod gateway;
pub mod idp;
pub mod logs;
pub mod postgres;
pub mod process;
pub mod receiver;
pub mod tls;
pub mod upstream;
pub mod web;

pub use broker::*;
pub use env::*;
pub use process::*;

/// Taken by the tests that load the whole machine (the crash loop, the
/// 100 MB push), so they take turns instead of starving each other.
pub static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `probe` until `done` holds of what it returns (at most 5 s, then
/// returns the last answer for the test to assert on): for what the broker
/// does in the background, like the reaper's work after the clock moves.
pub async fn eventually<T, F, Fut>(mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let value = probe().await;
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
