//! The broker's front of house: accepting connections so that hostile or
//! broken clients cannot take it down.
//!
//! - Every connection must send a full request head within `header_timeout`
//!   (the same timer closes keep-alive connections that sit idle), and TLS
//!   handshakes get the same bound: trickled headers do not hold a socket.
//! - At most `max_connections` at once. The last `health_headroom` of them are
//!   kept for health checkers (`health_from`: loopback by default) and only
//!   answer `/healthz`, so a broker full of hostile connections still says how
//!   it is. Past the cap a connection is closed at once, never queued.
//! - At most `per_address` connections from one client address, except from
//!   a `trusted_proxies` address: a load balancer carries everyone's
//!   connections, so only the total cap holds for it (the limits applied
//!   after the headers are read use the client it forwards for).
//! - Every request body must keep coming (`body`: no pause over its idle
//!   limit, no slower on average than its minimum rate after a grace), so a
//!   connection that stops sending mid-body is ended, authenticated or not.
//! - Shutdown stops accepting, lets requests in flight (git transfers
//!   included) finish for `shutdown_grace`, then ends the rest.
//!
//! Each request carries the peer address as axum's `ConnectInfo`, for
//! rate limits and network rules.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::tls::TlsAcceptor;
use crate::domain::limits::{BodyMeter, BodyPace};

/// How many connections, from where, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// The last slots below the cap, kept for `/healthz` from `health_from`.
    pub health_headroom: usize,
    /// Where health checks come from (load balancers, monitoring).
    pub health_from: Vec<ipnet::IpNet>,
    pub per_address: usize,
    /// Proxies (load balancers), `server.trusted_proxies`: their
    /// `X-Forwarded-For` is believed (none: the peer is the client), and they
    /// are exempt from `per_address`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// For a request head (and a TLS handshake), and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// How long requests in flight may finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// How slowly a request body may arrive.
    pub body: BodyPace,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 512,
            health_headroom: 16,
            health_from: vec!["127.0.0.1/32".parse().expect("valid"), "::1/128".parse().expect("valid")],
            per_address: 128,
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(20),
            body: BodyPace { idle: Duration::from_secs(30), grace: Duration::from_secs(10), min_rate: 4096 },
        }
    }
}

/// Live connections, in all and per address.
#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection's place in the counts, given back when it ends.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("connection counts");
        c.total -= 1;
        if let Some(n) = c.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.ip);
            }
        }
    }
}

/// What a new connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Full,
    HealthOnly,
    Refused,
}

fn admit(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &ConnectionLimits) -> (Admission, Option<Slot>) {
    let mut c = counts.lock().expect("connection counts");
    let from_here = c.by_address.get(&ip).copied().unwrap_or(0);
    let in_headroom = c.total >= limits.max_connections.saturating_sub(limits.health_headroom);
    let health_checker = limits.health_from.iter().any(|net| net.contains(&ip));
    let proxy = limits.trusted_proxies.iter().any(|net| net.contains(&ip));
    let admission = if c.total >= limits.max_connections || (from_here >= limits.per_address && !proxy) {
        Admission::Refused
    } else if in_headroom && health_checker {
        Admission::HealthOnly
    } else if in_headroom {
        Admission::Refused
    } else {
        Admission::Full
    };
    if admission == Admission::Refused {
        return (admission, None);
    }
    c.total += 1;
    *c.by_address.entry(ip).or_default() += 1;
    (admission, Some(Slot { counts: counts.clone(), ip }))
}

fn busy() -> Response<Body> {
    let mut r = Response::new(Body::from("jit: the broker is at its connection limit; try again\n"));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
    r
}

const TOO_SLOW: &str = "the request body arrived too slowly";

/// `body`, ended with an error once it pauses or lags past `pace`.
fn paced(body: Incoming, pace: BodyPace) -> Body {
    let started = tokio::time::Instant::now();
    let stream = futures_util::stream::unfold(Some((Body::new(body).into_data_stream(), BodyMeter::new(pace))), move |state| async move {
        let (mut inner, mut meter) = state?;
        let Some(wait) = meter.next_wait(started.elapsed()) else {
            return Some((Err(axum::Error::new(TOO_SLOW)), None));
        };
        match tokio::time::timeout(wait, futures_util::StreamExt::next(&mut inner)).await {
            Ok(Some(Ok(chunk))) => {
                meter.arrived(chunk.len());
                Some((Ok(chunk), Some((inner, meter))))
            }
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(None) => None,
            Err(_) => {
                tracing::debug!(?meter, "request body too slow; ending it");
                Some((Err(axum::Error::new(TOO_SLOW)), None))
            }
        }
    });
    Body::from_stream(stream)
}

/// Serves `app` on one accepted stream until it closes, times out or the server stops.
async fn serve_connection<I>(io: I, app: Router, peer: SocketAddr, admission: Admission, timing: (Duration, BodyPace), watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (header_timeout, pace) = timing;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        async move {
            let mut request = request.map(|body| paced(body, pace));
            request.extensions_mut().insert(ConnectInfo(peer));
            if admission == Admission::HealthOnly && request.uri().path() != "/healthz" {
                return Ok::<_, std::convert::Infallible>(busy());
            }
            app.oneshot(request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Resolves once `shutdown` turns true (holding no guard across the wait).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// Accepts on `listener` until `shutdown` turns true, then drains within the grace period.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    on_shutdown: impl FnOnce(),
) -> std::io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset before accept: back off, never die.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        // One address, one count: an IPv4 peer on a dual-stack socket is `::ffff:a.b.c.d`.
        let (admission, slot) = admit(&counts, crate::domain::network::canonical(peer.ip()), &limits);
        if admission == Admission::Refused {
            tracing::debug!(%peer, "connection refused: at the cap");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (app, watcher, tls, timing) = (app.clone(), graceful.watcher(), tls.clone(), (limits.header_timeout, limits.body));
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, app, peer, admission, timing, watcher).await,
                Some(acceptor) => match tokio::time::timeout(timing.0, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(tls_stream, app, peer, admission, timing, watcher).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    on_shutdown();
    // Idle connections close now; requests in flight get the grace period;
    // then whatever is left ends.
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?limits.shutdown_grace, left = connections.len(), "shutdown grace over; ending the remaining connections");
    }
    connections.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_keeps_headroom_for_health_checkers_and_limits_each_address() {
        let limits = ConnectionLimits { max_connections: 5, health_headroom: 2, per_address: 2, ..ConnectionLimits::default() };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let [a, b, c]: [IpAddr; 3] = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        let checker: IpAddr = "127.0.0.1".parse().unwrap();
        let mut held = vec![];
        for (ip, expect) in [
            (a, Admission::Full),
            (a, Admission::Full),
            (a, Admission::Refused), // per address
            (b, Admission::Full),
            (b, Admission::Refused), // the headroom is not for b
            (c, Admission::Refused),
            (checker, Admission::HealthOnly),
            (checker, Admission::HealthOnly),
            (checker, Admission::Refused), // at the cap, and per address
        ] {
            let (admission, slot) = admit(&counts, ip, &limits);
            assert_eq!(admission, expect, "{ip}");
            held.extend(slot);
        }
        assert_eq!(counts.lock().unwrap().total, 5);
        // A connection that ends gives its slot back.
        drop(held);
        let counts = counts.lock().unwrap();
        assert_eq!((counts.total, counts.by_address.len()), (0, 0), "every slot given back");
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_total_cap() {
        let balancer: IpAddr = "10.0.0.5".parse().unwrap();
        let limits = ConnectionLimits {
            max_connections: 300,
            health_headroom: 0,
            per_address: 2,
            trusted_proxies: vec!["10.0.0.5/32".parse().unwrap()],
            ..ConnectionLimits::default()
        };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let held: Vec<Slot> = (0..300).filter_map(|_| admit(&counts, balancer, &limits).1).collect();
        assert_eq!(held.len(), 300, "everyone behind the balancer gets in, up to the total cap");
        assert_eq!(admit(&counts, balancer, &limits).0, Admission::Refused, "the total cap still holds");
        drop(held);
        let other: IpAddr = "10.0.0.6".parse().unwrap();
        let others: Vec<Slot> = (0..3).filter_map(|_| admit(&counts, other, &limits).1).collect();
        assert_eq!(others.len(), 2, "any other address keeps its own cap");
    }
}
