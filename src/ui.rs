//! Terminal rules: data on stdout, progress and hints on stderr; no spinner,
//! colour or prompt unless a person is there; `NO_COLOR` respected.

use std::io::IsTerminal;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use indicatif::{ProgressBar, ProgressStyle};

/// A prompt needs a person on both ends: input from a terminal, and a terminal to draw on.
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stderr_is_terminal()
}

/// `✔ text` in green on a colour terminal, plain otherwise.
pub fn success(text: &str) -> String {
    if color() { format!("\x1b[32m✔\x1b[0m {text}") } else { format!("✔ {text}") }
}

/// A spinner on stderr, or nothing when stderr is not a terminal.
pub fn spinner(message: String) -> Option<ProgressBar> {
    if !stderr_is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {msg} · {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

/// `16:42` today, `Nov 26 16:42` otherwise, in local time.
pub fn local_time(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    if local.date_naive() == Local::now().date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%b %d %H:%M").to_string()
    }
}

/// `21:16:05` today, `Nov 25 21:16:05` otherwise, in local time: for when
/// the second matters (a grant that just ended).
pub fn precise_time(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    if local.date_naive() == Local::now().date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%b %d %H:%M:%S").to_string()
    }
}

/// `42s`, `5m`, `3h`, `2d`: how long ago.
pub fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(age(now - chrono::Duration::seconds(42), now), "42s");
        assert_eq!(age(now - chrono::Duration::minutes(5), now), "5m");
        assert_eq!(age(now - chrono::Duration::hours(3), now), "3h");
        assert_eq!(age(now + chrono::Duration::hours(3), now), "0s");
    }
}
