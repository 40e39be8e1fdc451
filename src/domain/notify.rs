//! Notifications, the rules without I/O: which audit events a destination
//! takes, what a webhook's JSON and a Slack message say, how a webhook is
//! signed, and when a failed delivery is tried again. The audit log is the
//! outbox (an event and the change it describes commit together); the
//! broker's deliverer (`server::notify`) walks it per destination.

use chrono::{DateTime, Duration, Utc};
use ring::hmac;
use serde_json::{Value, json};

use crate::domain::audit::AuditEvent;
use crate::domain::records::RequestRecord;

/// The audit actions a destination may subscribe to (its `events`; all by default).
pub const EVENTS: &[&str] = &[
    "requested",
    "extension_requested",
    "approved",
    "granted",
    "denied",
    "canceled",
    "expired",
    "grant_expired",
    "revoked",
    "host_revoke_failed",
    "session_ended",
    "policy_changed",
    "break_glass",
    "break_glass_reviewed",
    "review_reminder",
];

/// Whether an event asks someone to decide: a request, or an extension.
fn asks_for_decision(action: &str) -> bool {
    matches!(action, "requested" | "extension_requested")
}

/// In `events`: every audit event, not only those above (a log sink's default).
pub const EVERY: &str = "*";

/// Where notifications go, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Audit actions, from [`EVENTS`].
    pub events: Vec<String>,
    /// Rule names or globs (`prod-*`); empty: every rule, and events of no request too.
    pub rules: Vec<String>,
}

impl Subscription {
    /// Whether `event` (of a request governed by `rule`, if any) goes to this destination.
    pub fn wants(&self, event: &AuditEvent, rule: Option<&str>) -> bool {
        // An extension asks for a decision as a request does: whoever hears
        // of requests hears of extensions too.
        let asked_as = |e: &str| e == event.action || (e == "requested" && asks_for_decision(&event.action));
        if !self.events.iter().any(|e| e == EVERY || asked_as(e)) {
            return false;
        }
        if self.rules.is_empty() {
            return true;
        }
        rule.is_some_and(|rule| self.rules.iter().any(|pattern| glob::Pattern::new(pattern).is_ok_and(|p| p.matches(rule))))
    }
}

/// Checks a destination's `events` and `rules` as written.
pub fn check_subscription(events: Option<Vec<String>>, rules: Option<Vec<String>>) -> Result<Subscription, String> {
    let events = match events {
        None => EVENTS.iter().map(|e| e.to_string()).collect(),
        Some(list) => {
            if list.is_empty() {
                return Err("events: empty (leave it out for every event)".into());
            }
            if let Some(bad) = list.iter().find(|e| !EVENTS.contains(&e.as_str()) && e.as_str() != EVERY) {
                return Err(format!(
                    "events: `{}` is not an event; known: {}, or \"*\" for every audit event",
                    bad.escape_default(),
                    EVENTS.join(", ")
                ));
            }
            list
        }
    };
    let rules = rules.unwrap_or_default();
    if let Some(bad) = rules.iter().find(|r| r.is_empty() || glob::Pattern::new(r).is_err()) {
        return Err(format!("rules: `{}` is not a rule name or pattern", bad.escape_default()));
    }
    Ok(Subscription { events, rules })
}

/// What a notification says, for every kind of destination.
pub struct Notice<'a> {
    /// Unique per destination and event (`DESTINATION:SEQ`): receivers drop repeats by it.
    pub id: String,
    pub event: &'a AuditEvent,
    pub request: Option<&'a RequestRecord>,
    /// Who may decide the request (users and `group:NAME`).
    pub approvers: Vec<String>,
    /// The broker's public URL, for links.
    pub base_url: &'a str,
}

fn duration_text(secs: u64) -> String {
    crate::domain::AccessDuration::from_secs(secs).map(|d| d.to_string()).unwrap_or_else(|_| format!("{secs}s"))
}

impl Notice<'_> {
    /// The webhook's JSON body.
    pub fn webhook_body(&self) -> Value {
        let e = self.event;
        let request = self.request.map(|r| {
            json!({
                "id": r.id,
                "requester": r.requester,
                "repo": r.repo,
                "level": r.level.as_str(),
                "duration": duration_text(r.duration_secs),
                "reason": r.reason,
                "refs": r.refs.to_vec(),
                "rule": r.rule,
                "status": r.status.as_str(),
                "approvals_required": r.approvals_required,
                "approvals": r.approver_names(),
                "approvers": self.approvers,
                "created_at": r.created_at,
                "grant": r.grant.as_ref().map(|g| json!({"id": g.id, "expires_at": g.expires_at})),
            })
        });
        let links = self.request.map(|r| {
            json!({"api": format!("{}/v1/requests/{}", self.base_url, r.id), "page": self.page_url(r), "approve": format!("jit approve {}", r.id), "deny": format!("jit deny {} --reason …", r.id)})
        });
        json!({
            "id": self.id,
            "event": e.action,
            "at": e.at,
            "actor": e.actor,
            "repo": e.repo,
            "level": e.level,
            "detail": e.detail,
            "request": request,
            "links": links,
            "audit": {"seq": e.seq, "hash": e.hash},
        })
    }

    fn asks(&self) -> bool {
        asks_for_decision(&self.event.action)
    }

    /// The request's approval page (sign-in, then Approve or Deny in the browser).
    fn page_url(&self, r: &RequestRecord) -> String {
        format!("{}/requests/{}", self.base_url, r.id)
    }

    /// Whether the event asks the rule's approvers to review a break-glass grant.
    fn asks_review(&self) -> bool {
        matches!(self.event.action.as_str(), "break_glass" | "review_reminder")
    }

    /// The command that reviews this notice's break-glass grant.
    fn review_command(&self) -> Option<String> {
        let grant = self.request?.grant.as_ref()?;
        Some(format!("jit review {} --approve | --flag --comment TEXT", grant.id))
    }

    /// One line: who did what to which request.
    pub fn summary(&self) -> String {
        let e = self.event;
        match self.request {
            Some(r) => {
                let what = format!("{} access to {} for {}", r.level.as_str(), r.repo, duration_text(r.duration_secs));
                match e.action.as_str() {
                    "requested" => format!("{} asks for {what} (request #{})", r.requester, r.id),
                    "extension_requested" => match r.extends_grant {
                        Some(g) => format!("{} asks to extend grant #{g}: {what} from now (request #{})", r.requester, r.id),
                        None => format!("{} asks to extend their access: {what} (request #{})", r.requester, r.id),
                    },
                    "approved" => format!("{} approved #{}: {} {what}", e.actor, r.id, r.requester),
                    "granted" => format!("#{} granted: {} has {what}", r.id, r.requester),
                    "denied" => format!("{} denied #{}: {} {what}", e.actor, r.id, r.requester),
                    "canceled" => format!("#{} canceled: {} {what}", r.id, r.requester),
                    "expired" => format!("#{} expired undecided: {} {what}", r.id, r.requester),
                    "grant_expired" => format!("#{}'s grant ended: {} {what}", r.id, r.requester),
                    "revoked" => format!("{} revoked #{}'s grant: {} {what}", e.actor, r.id, r.requester),
                    "host_revoke_failed" => format!("the host has not yet taken back #{}'s access: {} {what}", r.id, r.requester),
                    "break_glass" => {
                        format!("BREAK-GLASS: {} took {what} at once, without approval (request #{}); review afterwards", r.requester, r.id)
                    }
                    "break_glass_reviewed" => {
                        let how = r.review.as_ref().map(|v| v.outcome.as_str()).unwrap_or("reviewed");
                        format!("{} {how} break-glass #{}: {} {what}", e.actor, r.id, r.requester)
                    }
                    "review_reminder" => format!("Break-glass #{} is still unreviewed: {} took {what}", r.id, r.requester),
                    other => format!("{other}: #{} {} {what}", r.id, r.requester),
                }
            }
            None => format!("{}: {}", e.action, e.detail.as_deref().unwrap_or(&e.actor)),
        }
    }

    /// An e-mail's subject, plain text and HTML (escaped), with the same facts as the webhook.
    pub fn email(&self) -> (String, String, String) {
        let subject = format!("[jit] {}", self.summary());
        let mut lines = vec![self.summary(), String::new()];
        if let Some(r) = self.request {
            lines.push(format!("Requester:  {}", r.requester));
            lines.push(format!("Repo:       {}", r.repo));
            lines.push(format!("Level:      {}", r.level.as_str()));
            lines.push(format!("For:        {}", duration_text(r.duration_secs)));
            if let Some(reason) = &r.reason {
                lines.push(format!("Reason:     {reason}"));
            }
            lines.push(format!("Rule:       {}", r.rule));
            lines.push(format!("Approvals:  {} of {}", r.approvals.len(), r.approvals_required));
            if !self.approvers.is_empty() {
                lines.push(format!("Approvers:  {}", self.approvers.join(", ")));
            }
            lines.push(String::new());
            if self.asks() {
                lines.push(format!("Decide:     {}", self.page_url(r)));
                lines.push(format!("Approve:    jit approve {}", r.id));
                lines.push(format!("Deny:       jit deny {} --reason TEXT", r.id));
            }
            if let Some(review) = self.review_command().filter(|_| self.asks_review()) {
                lines.push(format!("Review:     {review}"));
            }
            lines.push(format!("API:        {}/v1/requests/{}", self.base_url, r.id));
        }
        lines.push(format!("Audit:      event {} ({})", self.event.seq, self.event.hash));
        let text = lines.join("\n") + "\n";
        let html = format!(
            "<!DOCTYPE html><html><body><pre style=\"font-family: sans-serif\">{}</pre></body></html>",
            crate::domain::text::html_escape(&text)
        );
        (subject.chars().filter(|c| !c.is_control()).collect(), text, html)
    }

    /// A Slack incoming-webhook message (Block Kit), with a plain-text fallback.
    pub fn slack_body(&self) -> Value {
        let mut blocks = Vec::new();
        if self.event.action == "break_glass" {
            // Loud on purpose: access was taken without anyone deciding.
            blocks.push(json!({"type": "header", "text": {"type": "plain_text", "text": ":rotating_light: Break-glass access taken", "emoji": true}}));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", slack_escape(&self.summary()))}}));
        if let Some(r) = self.request {
            let mut fields = vec![
                field("Requester", &r.requester),
                field("Repo", &r.repo),
                field("Level", r.level.as_str()),
                field("For", &duration_text(r.duration_secs)),
                field("Rule", &r.rule),
                field("Approvals", &format!("{} of {}", r.approvals.len(), r.approvals_required)),
            ];
            if let Some(reason) = &r.reason {
                fields.push(field("Reason", reason));
            }
            if !self.approvers.is_empty() && self.asks() {
                fields.push(field("Who can approve", &self.approvers.join(", ")));
            }
            if !self.approvers.is_empty() && self.asks_review() {
                fields.push(field("Who reviews", &self.approvers.join(", ")));
            }
            blocks.push(json!({"type": "section", "fields": fields}));
            if self.asks() {
                // A link button: it opens the approval page, so no Slack app is needed.
                blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve / Deny"}, "url": self.page_url(r), "style": "primary"}]}));
                blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&format!("jit approve {}   ·   jit deny {} --reason …", r.id, r.id))}]}));
            }
            if let Some(review) = self.review_command().filter(|_| self.asks_review()) {
                blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&review)}]}));
            }
        }
        json!({"text": slack_escape(&self.summary()), "blocks": blocks})
    }
}

fn field(name: &str, value: &str) -> Value {
    let value: String = value.chars().take(500).collect();
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(&value))})
}

/// Slack's three control characters in text (`&`, `<`, `>`), so a reason cannot ping or link.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `X-Jit-Signature`: `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` under the destination's secret.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac::sign(&key, &signed).as_ref()))
}

/// Failed deliveries of one event are tried again for this long, then given up.
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);

/// When attempt `failures + 1` is due after `failures` failures: 5 s doubling
/// to 15 min, each with up to a fifth of itself as random jitter (`jitter`
/// in 0..1), so receivers coming back are not hit by every broker at once.
pub fn next_attempt(failures: u32, now: DateTime<Utc>, jitter: f64) -> DateTime<Utc> {
    let base = 5i64.saturating_mul(1i64 << failures.saturating_sub(1).min(20)).min(15 * 60);
    let extra = (base as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as i64;
    now + Duration::seconds(base + extra)
}

/// Whether an HTTP answer is worth trying again: a 5xx, a 429, or no answer (`None`).
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 429 || s >= 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            seq: 7,
            at: "2026-12-06T10:00:00Z".into(),
            actor: "alice".into(),
            action: action.into(),
            request_id: Some(3),
            grant_id: None,
            repo: Some("acme/api".into()),
            level: Some("write".into()),
            detail: Some("hotfix <@U123>".into()),
            prev_hash: "p".into(),
            hash: "h".into(),
        }
    }

    #[test]
    fn a_subscription_takes_its_events_and_rules_only() {
        let all = check_subscription(None, None).unwrap();
        assert!(all.wants(&event("requested"), None));
        assert!(all.wants(&event("extension_requested"), None));
        let requests = check_subscription(Some(vec!["requested".into()]), None).unwrap();
        assert!(requests.wants(&event("extension_requested"), None), "an extension asks for a decision too");
        assert!(!requests.wants(&event("granted"), None));
        let extensions = check_subscription(Some(vec!["extension_requested".into()]), None).unwrap();
        assert!(!extensions.wants(&event("requested"), None), "not the other way round");
        assert!(!all.wants(&event("git_fetch"), Some("x")), "git traffic is never a notification");
        let prod = check_subscription(Some(vec!["requested".into(), "denied".into()]), Some(vec!["prod-*".into()])).unwrap();
        assert!(prod.wants(&event("requested"), Some("prod-write")));
        assert!(!prod.wants(&event("requested"), Some("dev-write")));
        assert!(!prod.wants(&event("requested"), None), "with rules, an event of no request does not go");
        assert!(!prod.wants(&event("approved"), Some("prod-write")));
    }

    #[test]
    fn bad_subscriptions_are_named() {
        assert!(check_subscription(Some(vec!["pushed".into()]), None).unwrap_err().contains("`pushed` is not an event"));
        assert!(check_subscription(Some(vec![]), None).unwrap_err().contains("empty"));
        assert!(check_subscription(None, Some(vec!["[".into()])).unwrap_err().contains("not a rule name"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            signature(b"s3cret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
        assert_ne!(signature(b"s3cret", 1_700_000_001, br#"{"a":1}"#), signature(b"s3cret", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn retries_back_off_to_a_ceiling_with_bounded_jitter() {
        let now = Utc::now();
        let secs = |failures, jitter| (next_attempt(failures, now, jitter) - now).num_seconds();
        assert_eq!([secs(1, 0.0), secs(2, 0.0), secs(3, 0.0), secs(8, 0.0), secs(40, 0.0)], [5, 10, 20, 640, 900]);
        assert_eq!(secs(1, 1.0), 6);
        assert_eq!(secs(40, 1.0), 1080);
        assert!(retryable(None) && retryable(Some(503)) && retryable(Some(429)));
        assert!(!retryable(Some(400)) && !retryable(Some(404)) && !retryable(Some(410)));
    }

    #[test]
    fn an_email_says_it_in_text_and_escaped_html() {
        let e = event("requested");
        let notice = Notice { id: "m:7".into(), event: &e, request: None, approvers: vec![], base_url: "https://jit.example.com" };
        let (subject, text, html) = notice.email();
        assert_eq!(subject, "[jit] requested: hotfix <@U123>");
        assert!(text.contains("hotfix <@U123>") && text.contains("Audit:      event 7 (h)"), "{text}");
        assert!(html.contains("hotfix &lt;@U123&gt;") && !html.contains("<@U123>"), "{html}");
    }

    #[test]
    fn only_what_asks_for_a_decision_says_how_to_decide_it() {
        let request = RequestRecord {
            id: 12,
            requester_id: Some(1),
            requester: "alice".into(),
            repo: "acme/api".into(),
            level: crate::domain::Level::Write,
            duration_secs: 3600,
            reason: Some("hotfix".into()),
            rule: "api-write".into(),
            approvals_required: 1,
            refs: crate::domain::refs::RefScope::all(),
            terms: None,
            status: crate::domain::request::RequestStatus::Pending,
            created_at: Utc::now(),
            decided_at: None,
            decided_by: None,
            decision_note: None,
            approvals: vec![],
            grant: None,
            extends_grant: Some(5),
            break_glass: false,
            review: None,
            reminded_at: None,
        };
        for (action, asks) in [("requested", true), ("extension_requested", true), ("approved", false), ("denied", false)] {
            let e = event(action);
            let approvers = vec!["group:reviewers".to_string()];
            let notice = Notice { id: "n:7".into(), event: &e, request: Some(&request), approvers, base_url: "https://jit.example.com" };
            let (_, text, _) = notice.email();
            assert_eq!(text.contains("Approve:    jit approve 12"), asks, "{action}: {text}");
            assert!(text.contains("Approvers:  group:reviewers"), "{action}: who may approve is always said");
            let slack = notice.slack_body().to_string();
            assert_eq!(slack.contains("jit approve 12"), asks, "{action}: {slack}");
            assert_eq!(slack.contains("Who can approve"), asks, "{action}: {slack}");
            assert_eq!(slack.contains(r#""url":"https://jit.example.com/requests/12""#), asks, "{action}: the page's button: {slack}");
            assert_eq!(text.contains("Decide:     https://jit.example.com/requests/12"), asks, "{action}: {text}");
            assert_eq!(notice.webhook_body()["links"]["page"], "https://jit.example.com/requests/12");
        }
        let e = event("extension_requested");
        let notice = Notice { id: "n:7".into(), event: &e, request: Some(&request), approvers: vec![], base_url: "" };
        assert_eq!(notice.summary(), "alice asks to extend grant #5: write access to acme/api for 1h from now (request #12)");
    }

    #[test]
    fn break_glass_is_loud_and_tells_its_reviewers_how_to_review() {
        let now = Utc::now();
        let grant = crate::domain::records::GrantRecord {
            id: 40,
            request_id: 12,
            user_id: Some(1),
            user: "erin".into(),
            repo: "acme/api".into(),
            level: crate::domain::Level::Write,
            rule: Some("prod-break-glass".into()),
            refs: crate::domain::refs::RefScope::all(),
            terms: None,
            granted_at: now,
            expires_at: now,
            revoked_at: None,
            revoked_by: None,
            ended_at: None,
        };
        let mut request = RequestRecord {
            id: 12,
            requester_id: Some(1),
            requester: "erin".into(),
            repo: "acme/api".into(),
            level: crate::domain::Level::Write,
            duration_secs: 3600,
            reason: Some("INC-77 prod down".into()),
            rule: "prod-break-glass".into(),
            approvals_required: 0,
            refs: crate::domain::refs::RefScope::all(),
            terms: None,
            status: crate::domain::request::RequestStatus::Approved,
            created_at: now,
            decided_at: Some(now),
            decided_by: Some("policy".into()),
            decision_note: None,
            approvals: vec![],
            grant: Some(grant),
            extends_grant: None,
            break_glass: true,
            review: None,
            reminded_at: None,
        };
        let approvers = vec!["group:sre".to_string()];
        for (action, asks_review) in [("break_glass", true), ("review_reminder", true), ("break_glass_reviewed", false)] {
            let e = event(action);
            let notice = Notice { id: "n:7".into(), event: &e, request: Some(&request), approvers: approvers.clone(), base_url: "" };
            let (subject, text, _) = notice.email();
            assert_eq!(text.contains("Review:     jit review 40 --approve"), asks_review, "{action}: {text}");
            assert!(!text.contains("jit approve"), "{action}: nothing to approve: {text}");
            let slack = notice.slack_body().to_string();
            assert_eq!(slack.contains("Who reviews"), asks_review, "{action}: {slack}");
            assert_eq!(slack.contains(":rotating_light:"), action == "break_glass", "{action}: {slack}");
            if action == "break_glass" {
                assert!(subject.starts_with("[jit] BREAK-GLASS: erin took write access to acme/api for 1h at once"), "{subject}");
            }
        }
        request.review = Some(crate::domain::records::Review {
            by: "carol".into(),
            at: now,
            outcome: crate::domain::request::ReviewOutcome::Flagged,
            comment: Some("no incident".into()),
        });
        let e = AuditEvent { actor: "carol".into(), ..event("break_glass_reviewed") };
        let notice = Notice { id: "n:7".into(), event: &e, request: Some(&request), approvers, base_url: "" };
        assert_eq!(notice.summary(), "carol flagged break-glass #12: erin write access to acme/api for 1h");
    }

    #[test]
    fn slack_text_cannot_ping_or_link() {
        let e = event("requested");
        let notice = Notice { id: "s:7".into(), event: &e, request: None, approvers: vec![], base_url: "https://jit.example.com" };
        let body = notice.slack_body().to_string();
        assert!(!body.contains("<@U123>") && body.contains("&lt;@U123&gt;"), "{body}");
    }
}
