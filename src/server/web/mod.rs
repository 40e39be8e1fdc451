//! The approval pages, for approvers where they already are (a link in
//! Slack or a mail): `<public_url>/requests` lists what the signed-in
//! person can decide, `/requests/ID` shows one request with Approve and
//! Deny. Server-rendered, no script; the same broker calls, policy and
//! self-approval rule as `jit approve` and `jit deny`.
//!
//! Sign-in: through the identity provider when `[oidc]` is configured (the
//! browser flow, its session landing in a cookie), else — and always for
//! local users — with a jit token. The cookie holds the session's bearer
//! token (HttpOnly, SameSite=Lax, Secure over HTTPS); every form carries a
//! CSRF token derived from it (SHA-256, one-way), so another site can
//! neither read it nor forge a decision.

mod pages;

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::records::{Page, RequestRecord, UserRecord};
use crate::domain::request::RequestStatus;
use crate::domain::token::{ExposeSecret, SecretString};
use crate::server::auth::ClientAddr;
use crate::server::broker::{Broker, BrokerError, RequestQuery};
use crate::server::error::ApiError;
use pages::Viewer;

/// The cookie that keeps a browser signed in.
pub const COOKIE: &str = "jit_web";
/// How long the browser keeps it (the session behind it may end sooner).
const COOKIE_MAX_AGE_SECS: u64 = 8 * 3600;

type AppState = State<Arc<Broker>>;

/// A form's CSRF token for the browser signed in with `token`: a one-way
/// function of a secret another site does not have.
fn csrf_for(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("jit-web-csrf\0{token}").as_bytes()))
}

/// The session token in the request's cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Where to go after signing in: a request's page, else the list; never elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.strip_prefix("/requests/").is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())) => n.to_string(),
        _ => "/requests".to_string(),
    }
}

/// An HTML answer with the headers every page gets: no framing, no
/// caching, no referrer, nothing loaded from anywhere.
fn html(status: StatusCode, markup: maud::Markup) -> Response {
    html_posting_to(status, markup, None)
}

/// [`html`] whose forms may also lead to `origin` (the sign-in page's form
/// is answered with a redirect to the identity provider, which browsers
/// check against `form-action` too).
fn html_posting_to(status: StatusCode, markup: maud::Markup, origin: Option<&str>) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    let form_action = match origin {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_string(),
    };
    let csp = format!("default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'");
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'")));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/requests")));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn to_sign_in(next: &str) -> Response {
    see_other(&format!("/sign-in?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()))
}

fn set_cookie(broker: &Broker, response: &mut Response, value: &str, max_age: u64) {
    let secure = if broker.config().base_url().starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The browser, signed in: the session's token keeps it, and the page
/// goes on to `next` (also the end of a sign-in through the identity provider).
pub fn signed_in(broker: &Broker, token: &SecretString, next: &str) -> Response {
    let mut r = see_other(&safe_next(Some(next)));
    set_cookie(broker, &mut r, token.expose_secret(), COOKIE_MAX_AGE_SECS);
    r
}

/// A broker refusal's status, and its message with the hint.
fn refusal_text(e: BrokerError) -> (StatusCode, String) {
    let e = ApiError::from(e);
    let text = match &e.hint {
        Some(h) => format!("{} ({h})", e.message),
        None => e.message.clone(),
    };
    (e.status, text)
}

/// A broker refusal as a page of its own.
fn refusal(e: BrokerError, viewer: Option<&Viewer>) -> Response {
    let (status, text) = refusal_text(e);
    html(status, pages::message("Not done", &text, viewer))
}

/// Who the cookie signs in, with the token's CSRF value; `Err` is the page
/// to answer with (to sign in, or too many failures).
async fn viewer(broker: &Broker, addr: ClientAddr, headers: &HeaderMap, here: &str) -> Result<(UserRecord, String), Response> {
    let Some(token) = cookie_token(headers) else { return Err(to_sign_in(here)) };
    match broker.authenticate_session(&token).await {
        Ok(auth) => Ok((auth.user, csrf_for(&token))),
        Err(BrokerError::InvalidToken) => match broker.auth_failed(addr.0, None, "unknown web sign-in cookie") {
            Some(_) => Err(html(StatusCode::TOO_MANY_REQUESTS, pages::message("Too many attempts", "Try again in a minute.", None))),
            None => Err(to_sign_in(here)),
        },
        Err(BrokerError::SessionEnded(_)) => Err(to_sign_in(here)),
        Err(e) => Err(refusal(e, None)),
    }
}

/// `GET /requests`: what the signed-in person can decide now.
pub async fn list(State(broker): AppState, addr: ClientAddr, headers: HeaderMap) -> Response {
    let (user, csrf) = match viewer(&broker, addr, &headers, "/requests").await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let me = Viewer { name: &user.name, csrf: &csrf };
    let query = RequestQuery { mine: false, reviewable: true, status: Some(RequestStatus::Pending) };
    match broker.list_requests(&user, &query, Page { before: None, limit: Page::MAX_LIMIT }).await {
        Ok(listing) => {
            let items: Vec<(RequestRecord, String)> =
                listing.items.into_iter().map(|r| (Broker::duration_text(r.duration_secs), r)).map(|(d, r)| (r, d)).collect();
            html(StatusCode::OK, pages::list(&me, &items, broker.now()))
        }
        Err(e) => refusal(e, Some(&me)),
    }
}

#[derive(Deserialize)]
pub struct Said {
    said: Option<String>,
}

/// `GET /requests/ID`: one request, with Approve and Deny when the viewer may decide it.
pub async fn detail(
    State(broker): AppState,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(said): Query<Said>,
) -> Response {
    let here = format!("/requests/{id}");
    let (user, csrf) = match viewer(&broker, addr, &headers, &here).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let me = Viewer { name: &user.name, csrf: &csrf };
    let Some(id) = request_id(&id) else {
        return html(StatusCode::NOT_FOUND, pages::message("Not found", "There is no such request.", Some(&me)));
    };
    let said = said.said.and_then(|s| match s.as_str() {
        "approved" => Some((true, "Your approval is recorded.".to_string())),
        "denied" => Some((true, "You denied it.".to_string())),
        "reviewed" => Some((true, "Your review is recorded.".to_string())),
        _ => None,
    });
    render_detail(&broker, &me, &user, id, said, StatusCode::OK).await
}

/// The request page, answered with `status` (what the last decision came to, with `said`).
async fn render_detail(
    broker: &Broker,
    me: &Viewer<'_>,
    user: &UserRecord,
    id: i64,
    said: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let request = match broker.get_request(user, id).await {
        Ok(r) => r,
        Err(e) => return refusal(e, Some(me)),
    };
    let may_review = broker.may_review(user, &request);
    let (needs, may_decide) = match (broker.still_needed(&request).await, broker.may_decide(user, &request).await) {
        (Ok(needs), Ok(may)) => (needs, may),
        (Err(e), _) | (_, Err(e)) => return refusal(e, Some(me)),
    };
    let detail = pages::Detail {
        request: &request,
        duration: Broker::duration_text(request.duration_secs),
        approvers: broker.approvers_of(&request.rule),
        needs,
        may_decide,
        may_review,
        pending_until: request.created_at + broker.pending_ttl(),
        now: broker.now(),
        said,
    };
    html(status, pages::detail(me, &detail))
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    text: String,
}

/// `POST /requests/ID`: the Approve or Deny button (a deny needs the text).
pub async fn decide(
    State(broker): AppState,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    let (user, csrf, id) = match form_sender(&broker, addr, &headers, &id, &form.csrf).await {
        Ok(sender) => sender,
        Err(page) => return page,
    };
    let me = Viewer { name: &user.name, csrf: &csrf };
    let text = Some(form.text.trim()).filter(|t| !t.is_empty());
    let decided = match form.decision.as_str() {
        "approve" => broker.approve(&user, id, text).await.map(|_| "approved"),
        "deny" => match text {
            Some(reason) => broker.deny(&user, id, reason).await.map(|_| "denied"),
            None => {
                let why = Some((false, "A denial needs a comment: the requester reads it.".to_string()));
                return render_detail(&broker, &me, &user, id, why, StatusCode::BAD_REQUEST).await;
            }
        },
        _ => return html(StatusCode::BAD_REQUEST, pages::message("Not done", "Choose Approve or Deny.", Some(&me))),
    };
    answered(&broker, &me, &user, id, decided).await
}

/// What a page's form came to: on success a GET of the request's page
/// saying so (reloading it decides nothing twice); a refusal on the page,
/// or a page of its own when there is no such request.
async fn answered(broker: &Broker, me: &Viewer<'_>, user: &UserRecord, id: i64, done: Result<&str, BrokerError>) -> Response {
    match done {
        Ok(said) => see_other(&format!("/requests/{id}?said={said}")),
        Err(e) => match refusal_text(e) {
            (StatusCode::NOT_FOUND, text) => html(StatusCode::NOT_FOUND, pages::message("Not found", &text, Some(me))),
            (status, text) => render_detail(broker, me, user, id, Some((false, text)), status).await,
        },
    }
}

/// Who sent a page's form about request `raw_id`, checked: signed in, with
/// the form's own CSRF token, about a request id; `Err` is the page to answer with.
async fn form_sender(
    broker: &Broker,
    addr: ClientAddr,
    headers: &HeaderMap,
    raw_id: &str,
    sent_csrf: &str,
) -> Result<(UserRecord, String, i64), Response> {
    let (user, csrf) = viewer(broker, addr, headers, &format!("/requests/{raw_id}")).await?;
    let me = Viewer { name: &user.name, csrf: &csrf };
    if let Some(refused) = forged(sent_csrf, &me) {
        return Err(refused);
    }
    match request_id(raw_id) {
        Some(id) => Ok((user, csrf, id)),
        None => Err(html(StatusCode::NOT_FOUND, pages::message("Not found", "There is no such request.", Some(&me)))),
    }
}

/// The answer to a form whose CSRF token is not the session's, if it is not.
fn forged(sent: &str, me: &Viewer) -> Option<Response> {
    (!constant_time_eq(sent.as_bytes(), me.csrf.as_bytes())).then(|| {
        html(
            StatusCode::FORBIDDEN,
            pages::message("Not done", "This form is stale or not from this site; open the request again.", Some(me)),
        )
    })
}

/// A request id in a page's path: a positive number, else no such page.
fn request_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    text: String,
}

/// `POST /requests/ID/review`: a break-glass grant reviewed afterwards (`jit review`'s page form).
pub async fn review(
    State(broker): AppState,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let (user, csrf, id) = match form_sender(&broker, addr, &headers, &id, &form.csrf).await {
        Ok(sender) => sender,
        Err(page) => return page,
    };
    let me = Viewer { name: &user.name, csrf: &csrf };
    let Ok(outcome) = form.outcome.parse::<crate::domain::request::ReviewOutcome>() else {
        return html(StatusCode::BAD_REQUEST, pages::message("Not done", "Choose approved or flagged.", Some(&me)));
    };
    let grant = match broker.get_request(&user, id).await {
        Ok(r) => r.grant.map(|g| g.id),
        Err(e) => return refusal(e, Some(&me)),
    };
    let Some(grant) = grant else {
        return render_detail(&broker, &me, &user, id, Some((false, "This request has no grant to review.".into())), StatusCode::CONFLICT)
            .await;
    };
    let text = Some(form.text.trim()).filter(|t| !t.is_empty());
    let reviewed = broker.review_grant(&user, grant, outcome, text).await.map(|_| "reviewed");
    answered(&broker, &me, &user, id, reviewed).await
}

/// Whether two secrets are the same, in time that does not depend on where they differ (`subtle`, as token hashes are compared).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /sign-in`: the identity provider's button where there is one, and the token form.
pub async fn sign_in_page(State(broker): AppState, Query(q): Query<Next>) -> Response {
    sign_in_answer(&broker, StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

/// The sign-in page (with `why` the last attempt failed, if it did).
fn sign_in_answer(broker: &Broker, status: StatusCode, next: &str, why: Option<&str>) -> Response {
    let issuer = broker.oidc_issuer();
    let origin = issuer.and_then(|i| url::Url::parse(i).ok()).map(|u| u.origin().ascii_serialization());
    html_posting_to(status, pages::sign_in(next, issuer, why), origin.as_deref())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /sign-in`: a jit token, checked as the API checks it, kept in the cookie.
pub async fn sign_in_with_token(State(broker): AppState, addr: ClientAddr, Form(form): Form<TokenForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    let again = |status, why: &str| sign_in_answer(&broker, status, &next, Some(why));
    if token.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Give your jit token.");
    }
    match broker.authenticate_session(token).await {
        Ok(_) => signed_in(&broker, &SecretString::from(token.to_string()), &next),
        Err(BrokerError::InvalidToken) => match broker.auth_failed(addr.0, None, "unknown token on the sign-in page") {
            Some(_) => again(StatusCode::TOO_MANY_REQUESTS, "Too many failed sign-ins from here; try again in a minute."),
            None => again(StatusCode::UNAUTHORIZED, "That token is not valid."),
        },
        Err(e) => refusal(e, None),
    }
}

#[derive(Deserialize)]
pub struct NextForm {
    next: Option<String>,
}

/// `POST /sign-in/idp`: off to the identity provider; back through `/v1/auth/callback`.
pub async fn sign_in_with_idp(State(broker): AppState, Form(form): Form<NextForm>) -> Response {
    match broker.start_browser_sign_in(Some(safe_next(form.next.as_deref()))).await {
        Ok(started) => see_other(&started.url),
        Err(e) => refusal(e, None),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: the cookie forgotten (and an IdP session ended).
pub async fn sign_out(State(broker): AppState, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let mut r = see_other("/sign-in");
    if let Some(token) = cookie_token(&headers).filter(|t| constant_time_eq(csrf_for(t).as_bytes(), form.csrf.as_bytes())) {
        if let Ok(auth) = broker.authenticate_session(&token).await
            && auth.session.is_some()
            && let Err(e) = broker.sign_out(&auth).await
        {
            tracing::warn!(error = %e, "signing out from the approval pages");
        }
        set_cookie(&broker, &mut r, "", 0);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_the_browser_goes_only_to_an_approval_page() {
        assert_eq!(safe_next(Some("/requests/12")), "/requests/12");
        assert_eq!(safe_next(Some("/requests")), "/requests");
        for elsewhere in
            ["https://evil.example/requests/1", "//evil.example", "/requests/1/../../v1/users", "/requests/", "/requests/1x", "/v1/users"]
        {
            assert_eq!(safe_next(Some(elsewhere)), "/requests", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/requests");
    }

    #[test]
    fn the_cookie_is_found_among_others_and_the_csrf_token_is_one_way() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; jit_web=tok123; b=2"));
        assert_eq!(cookie_token(&h).as_deref(), Some("tok123"));
        h.clear();
        h.append(header::COOKIE, HeaderValue::from_static("jit_web="));
        assert_eq!(cookie_token(&h), None);
        let csrf = csrf_for("tok123");
        assert_eq!(csrf.len(), 64);
        assert!(!csrf.contains("tok123"));
        assert_ne!(csrf, csrf_for("tok124"));
        assert!(constant_time_eq(csrf.as_bytes(), csrf_for("tok123").as_bytes()));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
