//! The change feed between brokers sharing one database: a write that
//! others must hear of sends `NOTIFY jit_changes` inside its transaction
//! (delivered only if it commits), and every broker LISTENs on a connection
//! of its own, handing what it hears to the broker. A lost connection is
//! made again (backing off to 5 s), and the broker is then told to resync,
//! since anything may have changed while it was not listening.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::db::{Connector, Sql, error};
use crate::store::{Change, StoreResult};

const CHANNEL: &str = "jit_changes";

/// Tells the other brokers (and this one) of `change` when `tx` commits.
pub async fn announce(tx: &impl Sql, change: &Change) -> StoreResult<()> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload(change)]).await.map_err(error)?;
    Ok(())
}

fn payload(change: &Change) -> String {
    match change {
        Change::Request(id) => format!("request {id}"),
        Change::Identities => "identities".into(),
        Change::Grants => "grants".into(),
        Change::Resync => "resync".into(),
    }
}

fn parse(payload: &str) -> Option<Change> {
    match payload.split_once(' ') {
        Some(("request", id)) => id.parse().ok().map(Change::Request),
        _ => match payload {
            "identities" => Some(Change::Identities),
            "grants" => Some(Change::Grants),
            "resync" => Some(Change::Resync),
            _ => None,
        },
    }
}

/// Listens until `closed` is dropped, sending what it hears to `out`.
pub async fn listen(connector: Connector, out: broadcast::Sender<Change>, mut closed: tokio::sync::oneshot::Receiver<()>) {
    let mut backoff = Duration::from_millis(200);
    let mut first = true;
    loop {
        let session = async {
            let (client, mut connection) = connector.config.connect(connector.tls.clone()).await?;
            let (heard_tx, heard) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(n)) => {
                            let _ = heard_tx.send(n.payload().to_string());
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            });
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            Ok::<_, tokio_postgres::Error>((client, driver, heard))
        };
        let listening = tokio::select! {
            s = session => s,
            _ = &mut closed => return,
        };
        match listening {
            Ok((_client, driver, mut heard)) => {
                if !first {
                    tracing::info!("the change feed is back; resyncing");
                    let _ = out.send(Change::Resync);
                }
                first = false;
                backoff = Duration::from_millis(200);
                loop {
                    tokio::select! {
                        payload = heard.recv() => match payload {
                            Some(p) => {
                                if let Some(change) = parse(&p) {
                                    let _ = out.send(change);
                                }
                            }
                            None => break, // the connection ended
                        },
                        _ = &mut closed => {
                            driver.abort();
                            return;
                        }
                    }
                }
                match driver.await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "the change feed's connection to the database was lost"),
                    _ => tracing::warn!("the change feed's connection to the database ended"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other brokers' changes; trying again");
                first = false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut closed => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_reads_back_as_itself() {
        for change in [Change::Request(42), Change::Identities, Change::Grants, Change::Resync] {
            assert_eq!(parse(&payload(&change)), Some(change));
        }
        assert_eq!(parse("request x"), None);
        assert_eq!(parse("something else"), None);
    }
}
