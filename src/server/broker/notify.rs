//! The broker's side of notifications: for each destination, the next
//! event of the audit log it takes (with its request, for what the notice
//! says), and what a delivery came to — delivered, tried again later with
//! backoff, or given up on (a day of failures, or a receiver that refused it),
//! each kept in the store so a restart resumes where delivery stood.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Broker, BrokerResult};
use crate::domain::audit::{Action, BROKER_ACTOR, NewEvent};
use crate::domain::notify::{GIVE_UP_AFTER, Notice, next_attempt};
use crate::domain::records::{NotifyProgress, RequestRecord, UserRecord};
use crate::server::notify::destination::{Destination, Kind};

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// `retry`: worth trying again (no answer, a 5xx, a 429); otherwise given up at once.
    Failed {
        error: String,
        retry: bool,
    },
}

/// A notification to deliver now.
pub struct DueNotice {
    pub seq: i64,
    pub webhook: Value,
    pub slack: Value,
    /// Subject, plain text and HTML.
    pub email: (String, String, String),
    /// For an e-mail destination mailing approvers: the addresses of the
    /// request's rule's approvers (not its requester).
    pub approver_emails: Vec<String>,
    /// For a syslog destination: the event as an RFC 5424 message.
    pub syslog: Option<String>,
}

pub enum NextNotice {
    Due(Box<DueNotice>),
    /// The last attempt failed; the next is due then.
    WaitUntil(DateTime<Utc>),
    /// Nothing new.
    Idle,
}

/// Events read from the outbox at once.
const BATCH: u32 = 200;

impl Broker {
    async fn progress_of(&self, destination: &str) -> BrokerResult<Option<NotifyProgress>> {
        Ok(self.store.notify_progress().await?.into_iter().find(|p| p.destination == destination))
    }

    /// The next event `destination` takes, if one is due; the events it does
    /// not take are passed over (and the progress kept).
    pub async fn next_notice(&self, destination: &Destination) -> BrokerResult<NextNotice> {
        let Some(progress) = self.progress_of(&destination.name).await? else { return Ok(NextNotice::Idle) };
        if let Some(at) = progress.next_attempt_at
            && at > self.now()
        {
            return Ok(NextNotice::WaitUntil(at));
        }
        let events = self.store.audit(progress.delivered_seq, None, BATCH).await?;
        let mut passed = None;
        for event in &events {
            let request = match (event.request_id, event.grant_id) {
                (Some(id), _) => self.store.request(id).await?,
                (None, Some(grant)) => match self.store.grant(grant).await? {
                    Some(g) => self.store.request(g.request_id).await?,
                    None => None,
                },
                (None, None) => None,
            };
            if !destination.subscription.wants(event, request.as_ref().map(|r| r.rule.as_str())) {
                passed = Some(event.seq);
                continue;
            }
            if let Some(seq) = passed {
                self.store.notify_delivered(&destination.name, seq).await?;
            }
            let notice = Notice {
                id: format!("{}:{}", destination.name, event.seq),
                event,
                request: request.as_ref(),
                approvers: request.as_ref().map(|r| self.approvers_of(&r.rule)).unwrap_or_default(),
                base_url: &self.config.base_url(),
            };
            let approver_emails = match (&destination.kind, request.as_ref()) {
                (Kind::Email { to, .. }, Some(r)) if to.approvers => self.approver_emails(r).await?,
                _ => Vec::new(),
            };
            let syslog = matches!(destination.kind, Kind::Syslog(_)).then(|| {
                let host = self.replica().split(':').next().unwrap_or_default().to_string();
                crate::domain::syslog::message(event, &host, &notice.summary())
            });
            return Ok(NextNotice::Due(Box::new(DueNotice {
                seq: event.seq,
                webhook: notice.webhook_body(),
                slack: notice.slack_body(),
                email: notice.email(),
                approver_emails,
                syslog,
            })));
        }
        if let Some(seq) = passed {
            self.store.notify_delivered(&destination.name, seq).await?;
        }
        Ok(NextNotice::Idle)
    }

    /// The addresses of the people who may decide `request` (not its requester).
    async fn approver_emails(&self, request: &RequestRecord) -> BrokerResult<Vec<String>> {
        let in_force = self.live();
        let Some(rule) = in_force.policy.rule(&request.rule) else { return Ok(Vec::new()) };
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| u.name != request.requester && rule.may_approve(&super::subject(u)))
            .filter_map(|u| u.email)
            .collect())
    }

    /// Records what delivering event `seq` to `destination` came to.
    pub async fn notice_outcome(&self, destination: &Destination, seq: i64, outcome: Outcome) -> BrokerResult<()> {
        let name = &destination.name;
        let now = self.now();
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(destination = %name, seq, "notification delivered");
                Ok(self.store.notify_delivered(name, seq).await?)
            }
            Outcome::Failed { error, retry } => {
                let progress = self.progress_of(name).await?;
                let failures = progress.as_ref().map(|p| p.failures).unwrap_or(0) + 1;
                let first = progress.and_then(|p| p.first_failed_at).unwrap_or(now);
                if retry && now - first < GIVE_UP_AFTER {
                    let next = next_attempt(failures, now, rand::random::<f64>());
                    tracing::warn!(destination = %name, seq, failures, error = %error, next_attempt = %next, "notification not delivered; trying again");
                    return Ok(self.store.notify_failed(name, failures, first, &error, next).await?);
                }
                let why = if retry { format!("{error}, after {failures} attempts over a day") } else { error.clone() };
                tracing::error!(destination = %name, seq, error = %why, "notification given up");
                let mut event = NewEvent::new(BROKER_ACTOR, Action::NotificationFailed);
                event.detail = Some(format!("{name} ({}): event {seq} not delivered: {why}", destination.kind_name()));
                Ok(self.store.notify_gave_up(name, seq, &why, event, now).await?)
            }
        }
    }

    /// `GET /v1/notifications` (admins): each destination and where its delivery stands.
    pub async fn notifications(&self, caller: &UserRecord) -> BrokerResult<Vec<(Destination, NotifyProgress, i64)>> {
        self.require_admin(caller)?;
        self.delivery_progress().await
    }

    /// Each destination, where its delivery stands, and how many events it is behind.
    pub(super) async fn delivery_progress(&self) -> BrokerResult<Vec<(Destination, NotifyProgress, i64)>> {
        let progress = self.store.notify_progress().await?;
        let head = self.audit_head().await?;
        Ok(self
            .config
            .notify
            .iter()
            .filter_map(|d| {
                progress.iter().find(|p| p.destination == d.name).map(|p| (d.clone(), p.clone(), (head - p.delivered_seq).max(0)))
            })
            .collect())
    }
}
