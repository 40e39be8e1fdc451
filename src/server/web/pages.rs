//! The approval pages' HTML (maud: escaped by construction). No script: a
//! page is its forms, readable on a phone (one column, large buttons).

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::domain::records::RequestRecord;

/// The style every page shares: one column, system fonts, full-width buttons.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;line-height:1.4;color:#111}\
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .4rem;border-bottom:1px solid #ddd;vertical-align:top}\
th{width:8rem;color:#555;font-weight:600}textarea,input[type=password],input[type=text]{width:100%;box-sizing:border-box;font-size:1rem;padding:.5rem}\
button{font-size:1.05rem;padding:.7rem 1rem;margin:.4rem 0;width:100%;border:0;border-radius:.4rem;color:#fff;background:#444}\
button.approve{background:#1a7f37}button.deny{background:#b42318}.status{font-weight:700}.note{color:#555}.error{color:#b42318;font-weight:600}\
header{display:flex;justify-content:space-between;align-items:center;gap:1rem}header form button{width:auto;padding:.3rem .7rem;font-size:.9rem}\
ul.requests{list-style:none;padding:0}ul.requests li{padding:.6rem 0;border-bottom:1px solid #ddd}";

/// Who is signed in, for the header (and the sign-out form's CSRF token).
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
}

pub fn layout(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "jit: " (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/requests" { "jit" }
                    @if let Some(v) = viewer {
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            span.note { (v.name) " " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

/// `12 min ago`, `3 h ago`.
fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

fn what(r: &RequestRecord, duration: &str) -> String {
    format!("{} on {} for {}", r.level, r.repo, duration)
}

/// What the signed-in person can decide now.
pub fn list(viewer: &Viewer, pending: &[(RequestRecord, String)], now: DateTime<Utc>) -> Markup {
    let body = html! {
        @if pending.is_empty() {
            p.note { "Nothing waits for your decision." }
        } @else {
            ul.requests {
                @for (r, duration) in pending {
                    li {
                        a href={ "/requests/" (r.id) } { "#" (r.id) " " (r.requester) ": " (what(r, duration)) }
                        br;
                        span.note { (r.reason.as_deref().unwrap_or("no reason given")) " · " (ago(r.created_at, now)) }
                    }
                }
            }
        }
    };
    layout("Requests waiting for you", Some(viewer), body)
}

/// One request, as an approver reads it before deciding.
pub struct Detail<'a> {
    pub request: &'a RequestRecord,
    pub duration: String,
    pub approvers: Vec<String>,
    /// What a rule asking several groups still lacks.
    pub needs: Option<String>,
    /// Whether the viewer may decide it now (buttons shown).
    pub may_decide: bool,
    /// Whether the viewer may review it (a break-glass grant not yet reviewed).
    pub may_review: bool,
    pub pending_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// What the viewer's last decision came to, or why it was refused.
    pub said: Option<(bool, String)>,
}

pub fn detail(viewer: &Viewer, d: &Detail) -> Markup {
    let r = d.request;
    let refs = r.refs.to_vec();
    let body = html! {
        @if let Some((ok, text)) = &d.said {
            p class=(if *ok { "status" } else { "error" }) { (text) }
        }
        table {
            tr { th { "Status" } td.status { (r.status.as_str()) } }
            tr { th { "Requester" } td { (r.requester) } }
            tr { th { "Repo" } td { (r.repo) } }
            tr { th { "Level" } td { (r.level.as_str()) } }
            tr { th { "Refs" } td { @if refs.is_empty() { "every ref" } @else { (refs.join(", ")) } } }
            tr { th { "For" } td { (d.duration) } }
            tr { th { "Reason" } td { (r.reason.as_deref().unwrap_or("none given")) } }
            tr { th { "Asked" } td { (ago(r.created_at, d.now)) " (" (r.created_at.format("%Y-%m-%d %H:%M UTC")) ")" } }
            tr { th { "Rule" } td { (r.rule) } }
            tr { th { "Approvers" } td { (d.approvers.join(", ")) } }
            tr {
                th { "Approvals" }
                td {
                    (r.approvals.len()) " of " (r.approvals_required)
                    @for a in &r.approvals {
                        br; (a.approver) @if let Some(c) = &a.comment { ": " (c) }
                    }
                    @if let Some(needs) = &d.needs { br; span.note { (needs) } }
                }
            }
            @if let Some(by) = &r.decided_by {
                tr { th { "Decided by" } td { (by) @if let Some(note) = &r.decision_note { ": " (note) } } }
            }
            @if r.break_glass {
                tr {
                    th { "Break-glass" }
                    td {
                        "granted at once, without approval; "
                        @match &r.review {
                            Some(v) => { (v.outcome.as_str()) " by " (v.by) @if let Some(c) = &v.comment { ": " (c) } }
                            None => { "not yet reviewed" }
                        }
                    }
                }
            }
        }
        @if d.may_review {
            (choice_form(
                &format!("/requests/{}/review", r.id),
                viewer.csrf,
                "What you found (a flag needs it)",
                "outcome",
                [("approved", "Reviewed: approved"), ("flagged", "Flag it")],
            ))
        }
        @if d.may_decide {
            (choice_form(
                &format!("/requests/{}", r.id),
                viewer.csrf,
                "Comment (a denial needs one: the requester reads it)",
                "decision",
                [("approve", "Approve"), ("deny", "Deny")],
            ))
            p.note { "Undecided, it expires " (d.pending_until.format("%Y-%m-%d %H:%M UTC")) "." }
        } @else if r.status == crate::domain::request::RequestStatus::Pending {
            p.note { "Waiting for " (d.approvers.join(", ")) "." }
        }
    };
    layout(&format!("Request #{}", r.id), Some(viewer), body)
}

/// A form with a comment box (`text`) and two buttons naming `field`: the
/// first a yes (green), the second a no (red); with the session's CSRF token.
fn choice_form(action: &str, csrf: &str, label: &str, field: &str, [(yes, yes_text), (no, no_text)]: [(&str, &str); 2]) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            p {
                label for="text" { (label) }
                textarea id="text" name="text" rows="3" maxlength="2000" {}
            }
            button.approve type="submit" name=(field) value=(yes) { (yes_text) }
            button.deny type="submit" name=(field) value=(no) { (no_text) }
        }
    }
}

/// Sign-in: with the identity provider where one is configured, and with a
/// token (local users, service accounts) always.
pub fn sign_in(next: &str, idp: Option<&str>, error: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(e) = error { p.error { (e) } }
        @if let Some(issuer) = idp {
            form method="post" action="/sign-in/idp" {
                input type="hidden" name="next" value=(next);
                button type="submit" { "Sign in with your identity provider" }
            }
            p.note { "(" (issuer) ")" }
        }
        form method="post" action="/sign-in" {
            input type="hidden" name="next" value=(next);
            p {
                label for="token" { "Or your jit token" }
                input id="token" type="password" name="token" autocomplete="off" required;
            }
            button type="submit" { "Sign in with a token" }
        }
    };
    layout("Sign in", None, body)
}

/// A page that says one thing (an error, or where to go).
pub fn message(title: &str, text: &str, viewer: Option<&Viewer>) -> Markup {
    layout(title, viewer, html! { p { (text) } p { a href="/requests" { "Requests waiting for you" } } })
}
