//! Notifications out of the broker: the `[[notify]]` destinations and their
//! delivery. Each destination walks the audit log (the outbox: an event
//! commits with the change it describes) on a loop of its own, so a dead
//! receiver delays only itself, never a request, an approval or another
//! destination. Delivery is at least once: a receiver drops repeats by the
//! notification's `id`. What a notification says is `domain::notify`'s.
//!
//! ```toml
//! [[notify]]
//! name = "security-slack"
//! kind = "slack"                           # slack | webhook
//! url_file = "/etc/jit/slack-webhook-url"  # or url_env; a Slack webhook URL is a secret
//! events = ["requested", "approved", "denied", "revoked"]  # default: every event
//! rules = ["prod-*"]                       # default: every rule
//!
//! [[notify]]
//! name = "siem"
//! kind = "webhook"
//! url = "https://siem.example.com/jit"     # or url_file / url_env
//! secret_file = "/etc/jit/webhook-secret"  # or secret_env: the HMAC-SHA256 signing key
//! timeout = "10s"                          # the default: one delivery attempt's limit
//! ```

pub mod destination;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use self::destination::{Destination, Kind, Recipients, Smtp};
use crate::domain::notify::{retryable, signature};
use crate::domain::token::ExposeSecret;
use crate::providers::host_api;
use crate::server::broker::{Broker, DueNotice, NextNotice, Outcome};

/// One loop a destination, until shutdown.
pub async fn run(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let destinations = broker.config().notify.clone();
    if destinations.is_empty() {
        return;
    }
    let loops = destinations.into_iter().map(|d| deliver(broker.clone(), d, shutdown.clone()));
    futures_util::future::join_all(loops).await;
}

async fn deliver(broker: Arc<Broker>, destination: Destination, mut shutdown: watch::Receiver<bool>) {
    let http = match reqwest::Client::builder()
        .timeout(destination.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(destination = %destination.name, error = %e, "notifications: cannot build the HTTP client");
            return;
        }
    };
    loop {
        let wait = match broker.next_notice(&destination).await {
            Ok(NextNotice::Due(notice)) => {
                let outcome = tokio::select! {
                    outcome = send(&http, &destination, &notice) => outcome,
                    _ = shutdown.changed() => return,
                };
                if let Err(e) = broker.notice_outcome(&destination, notice.seq, outcome).await {
                    tracing::warn!(destination = %destination.name, error = %e, "notifications: cannot record a delivery");
                }
                continue;
            }
            // Looked at again every interval too: the broker's clock may move (tests).
            Ok(NextNotice::WaitUntil(at)) => (at - broker.now()).to_std().unwrap_or(Duration::ZERO).min(broker.config().reaper_interval),
            Ok(NextNotice::Idle) => broker.config().reaper_interval,
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "notifications: cannot read the outbox");
                broker.config().reaper_interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One attempt: the outcome in the broker's terms (never with the URL: it may be a credential).
async fn send(http: &reqwest::Client, destination: &Destination, notice: &DueNotice) -> Outcome {
    let (webhook, slack) = (&notice.webhook, &notice.slack);
    let request = http.post(destination.url().expose_secret()).header("content-type", "application/json");
    let request = match &destination.kind {
        Kind::Email { smtp, from, to } => return mail(destination, smtp, from, to, notice).await,
        Kind::Syslog(target) => return syslog(destination, target, notice).await,
        Kind::Slack => request.body(slack.to_string()),
        Kind::Webhook { secret } => {
            let body = webhook.to_string();
            let timestamp = chrono::Utc::now().timestamp();
            let id = webhook["id"].as_str().unwrap_or_default().to_string();
            let event = webhook["event"].as_str().unwrap_or_default().to_string();
            request
                .header("x-jit-timestamp", timestamp.to_string())
                .header("x-jit-signature", signature(secret.expose_secret().as_bytes(), timestamp, body.as_bytes()))
                .header("x-jit-delivery", id)
                .header("x-jit-event", event)
                .body(body)
        }
    };
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => {
            let status = resp.status().as_u16();
            Outcome::Failed { error: format!("the receiver answered HTTP {status}"), retry: retryable(Some(status)) }
        }
        Err(e) => Outcome::Failed { error: host_api::transport(e), retry: true },
    }
}

/// One RFC 5424 message, framed by its length (RFC 5425), on a connection of
/// its own: a receiver that is down or slow fails this attempt only (the
/// outbox tries again), never the broker.
async fn syslog(destination: &Destination, target: &destination::SyslogTarget, notice: &DueNotice) -> Outcome {
    let frame = crate::domain::syslog::framed(notice.syslog.as_deref().unwrap_or_default());
    let attempt = async {
        let tcp =
            tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await.map_err(|e| format!("could not connect: {e}"))?;
        if !target.tls {
            return write_frame(tcp, &frame).await;
        }
        let config = crate::tls_client::config(target.ca_file.as_deref()).map_err(|e| format!("ca_file {e}"))?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone()).map_err(|e| format!("{}: {e}", target.host))?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| host_api::tls_problem(&e).unwrap_or_else(|| format!("TLS handshake failed: {e}")))?;
        write_frame(tls, &frame).await
    };
    match tokio::time::timeout(destination.timeout, attempt).await {
        Ok(Ok(())) => Outcome::Delivered,
        Ok(Err(error)) => Outcome::Failed { error, retry: true },
        Err(_) => Outcome::Failed { error: "timed out".into(), retry: true },
    }
}

/// Writes one frame and closes the stream (over TLS, with its close notification).
async fn write_frame(mut stream: impl tokio::io::AsyncWrite + Unpin, frame: &[u8]) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(frame).await.map_err(|e| e.to_string())?;
    stream.shutdown().await.map_err(|e| e.to_string())
}

/// One e-mail, plain text and HTML, through the destination's SMTP server.
/// A transient SMTP answer (4xx) or no answer is tried again; a permanent one
/// (5xx: an address refused, a relay denied) is given up on.
async fn mail(destination: &Destination, smtp: &Smtp, from: &lettre::message::Mailbox, to: &Recipients, notice: &DueNotice) -> Outcome {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let mut recipients: Vec<Mailbox> = to.addresses.iter().cloned().map(|a| Mailbox::new(None, a)).collect();
    for address in &notice.approver_emails {
        match address.parse::<lettre::Address>() {
            Ok(a) if !recipients.iter().any(|m| m.email == a) => recipients.push(Mailbox::new(None, a)),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "notifications: an approver's e-mail address is not usable")
            }
        }
    }
    if recipients.is_empty() {
        tracing::warn!(destination = %destination.name, seq = notice.seq, "notifications: nobody to mail (no approver has an e-mail address)");
        return Outcome::Delivered;
    }
    let (subject, text, html) = &notice.email;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject.clone())
        .message_id(Some(format!("<{}@jit>", notice.webhook["id"].as_str().unwrap_or_default().replace(':', "."))));
    for r in recipients {
        builder = builder.to(r);
    }
    let message = match builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone())) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed { error: format!("cannot build the e-mail: {e}"), retry: false },
    };
    let transport = if smtp.plain {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host))
    } else if smtp.implicit_tls {
        AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
    };
    let mut transport = match transport {
        Ok(t) => t.port(smtp.port).timeout(Some(destination.timeout)),
        Err(e) => return Outcome::Failed { error: format!("the mail server: {e}"), retry: true },
    };
    if let Some((user, password)) = &smtp.credentials {
        transport = transport
            .credentials(lettre::transport::smtp::authentication::Credentials::new(user.clone(), password.expose_secret().to_string()));
    }
    match transport.build().send(message).await {
        Ok(_) => Outcome::Delivered,
        Err(e) => Outcome::Failed { error: format!("the mail server: {e}"), retry: !e.is_permanent() },
    }
}
