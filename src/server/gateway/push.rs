//! Reading a push on its way through the gateway: its command list parsed
//! (and re-encoded, so the repository applies only what was checked) before
//! anything is forwarded, its last bytes held until the grant is checked
//! again, and git's report-status in the answer audited as its outcome.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::StreamExt;

use crate::domain::receive_pack::{self, Commands};
use crate::domain::records::GrantRecord;
use crate::domain::token::TokenHash;
use crate::server::Broker;
use crate::server::broker::git::GitRefusal;

/// The most of a push's answer kept to read git's report from: the report is
/// a line a ref, after whatever progress git sent on side-band channel 2.
const MAX_PUSH_ANSWER: usize = 1 << 20;

/// Streams a push's answer to the client untouched, keeping a copy; once it
/// has ended (or the client left), git's report-status in it is audited ref
/// by ref as the push's outcome.
pub fn with_outcome_recorded(answer: Response, broker: Arc<Broker>, grant: GrantRecord, push: Commands) -> Response {
    struct Teed {
        seen: Vec<u8>,
        record: Option<(Arc<Broker>, GrantRecord, Commands)>,
    }
    impl Teed {
        /// Audits the outcome once: from the report when the answer came whole.
        fn record(&mut self, complete: bool) {
            let Some((broker, grant, push)) = self.record.take() else { return };
            let report = (complete && self.seen.len() <= MAX_PUSH_ANSWER)
                .then(|| receive_pack::read_report(&self.seen, receive_pack::uses_sideband(&push.capabilities)))
                .flatten();
            tokio::spawn(async move { broker.record_push_outcome(&grant, &push, report).await });
        }
    }
    impl Drop for Teed {
        // The client left before the answer ended.
        fn drop(&mut self) {
            self.record(false);
        }
    }
    let (parts, body) = answer.into_parts();
    let teed = Teed { seen: Vec::new(), record: Some((broker, grant, push)) };
    let stream = futures_util::stream::unfold((body.into_data_stream(), teed), |(mut inner, mut teed)| async move {
        match inner.next().await {
            Some(Ok(chunk)) => {
                if teed.seen.len() <= MAX_PUSH_ANSWER {
                    teed.seen.extend_from_slice(&chunk);
                }
                Some((Ok(chunk), (inner, teed)))
            }
            Some(Err(e)) => Some((Err(e), (inner, teed))),
            None => {
                teed.record(true);
                None
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// How long a refused push may take to send the rest of itself (its pack):
/// git reads the answer only once it has sent everything.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads and drops what is left of a request, within [`DRAIN_TIMEOUT`].
pub async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while let Some(Ok(_)) = stream.next().await {} }).await;
}

/// A receive-pack result git reads as its own report-status.
pub fn report_status(body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-git-receive-pack-result"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    r
}

/// How many bytes at the end of a push are held back until the grant is
/// checked again: more than a pack's trailing checksum (20 or 32 bytes), so
/// git cannot finish reading the pack (nor a delete-only list its flush)
/// before the check.
const PUSH_TAIL: usize = 64;

/// Streams a push's body on to the repository, holding back its last
/// [`PUSH_TAIL`] bytes until the client has sent everything; then, if the
/// grant ended meanwhile, ends the stream with an error instead, so the
/// repository sees a cut pack and applies nothing.
pub fn held_until_still_live(body: Body, broker: Arc<Broker>, pushed: (GrantRecord, TokenHash, Commands)) -> Body {
    struct Held {
        inner: axum::body::BodyDataStream,
        tail: Vec<u8>,
        /// `None` once the stream has ended.
        check: Option<(Arc<Broker>, (GrantRecord, TokenHash, Commands))>,
    }
    let start = Held { inner: body.into_data_stream(), tail: Vec::new(), check: Some((broker, pushed)) };
    let stream = futures_util::stream::unfold(start, |mut held| async move {
        let (broker, pushed) = held.check.take()?;
        loop {
            match held.inner.next().await {
                Some(Ok(chunk)) => {
                    held.tail.extend_from_slice(&chunk);
                    if held.tail.len() > PUSH_TAIL {
                        let keep = held.tail.split_off(held.tail.len() - PUSH_TAIL);
                        let out = std::mem::replace(&mut held.tail, keep);
                        held.check = Some((broker, pushed));
                        return Some((Ok(Bytes::from(out)), held));
                    }
                }
                Some(Err(e)) => return Some((Err(e), held)),
                None => {
                    let (grant, credential, commands) = &pushed;
                    if broker.push_may_land(grant, credential, commands).await {
                        let tail = std::mem::take(&mut held.tail);
                        return Some((Ok(Bytes::from(tail)), held));
                    }
                    return Some((Err(axum::Error::new("the grant ended while the push was in flight")), held));
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// How long a client may take to send a push's command list.
const COMMANDS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a push's body up to the end of its command list and parses it;
/// returns the commands and a body that starts with the list as parsed (never
/// the client's own bytes, so the repository applies only what was checked),
/// then streams the rest (the pack) untouched.
pub async fn read_push_commands(headers: &mut HeaderMap, body: Body) -> Result<(Commands, Body), GitRefusal> {
    // git never compresses a push (only fetch negotiations); an encoded one could not be read here.
    if headers.get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes() != b"identity") {
        return Err(GitRefusal::BadPush("compressed push requests are not accepted".into()));
    }
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    let commands = loop {
        match receive_pack::parse(&read) {
            Ok(Some(commands)) => break commands,
            Ok(None) => {}
            Err(receive_pack::CommandsError::Signed) => return Err(GitRefusal::SignedPush),
            Err(e) => return Err(GitRefusal::BadPush(e.to_string())),
        }
        match tokio::time::timeout(COMMANDS_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(chunk))) => read.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => return Err(GitRefusal::BadPush(format!("the push could not be read: {e}"))),
            Ok(None) => return Err(GitRefusal::BadPush("the push ended before its command list did".into())),
            Err(_) => return Err(GitRefusal::BadPush("the push's command list did not arrive in time".into())),
        }
    };
    let mut checked = commands.encode();
    checked.extend_from_slice(&read[commands.len..]);
    // The body's length changes by what the encoding changed.
    if let Some(declared) = headers.get(header::CONTENT_LENGTH) {
        let length = declared
            .to_str()
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .and_then(|n| (n + checked.len()).checked_sub(read.len()))
            .ok_or_else(|| GitRefusal::BadPush("the push's Content-Length does not match its body".into()))?;
        headers.insert(header::CONTENT_LENGTH, length.into());
    }
    let replay = futures_util::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(checked)) });
    Ok((commands, Body::from_stream(replay.chain(stream))))
}
