//! The approval pages as a browser meets them, over plain HTTP: sign in
//! with a token (the cookie to send after), pages fetched and forms posted
//! with it, redirects read rather than followed.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::common::TestBroker;

/// A client that follows no redirect (the tests read each one).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

pub async fn page(r: reqwest::RequestBuilder) -> Page {
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    Page { status, headers, text: r.text().await.unwrap() }
}

pub fn location(p: &Page) -> &str {
    p.headers.get(LOCATION).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Signs `token` in through the form; the cookie header to send after.
pub async fn sign_in(b: &TestBroker, token: &str, next: &str) -> (Page, String) {
    let p = page(client().post(format!("{}/sign-in", b.url)).form(&[("token", token), ("next", next)])).await;
    let cookie = p.headers.get(SET_COOKIE).map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string()).unwrap_or_default();
    (p, cookie)
}

pub async fn get(b: &TestBroker, path: &str, cookie: &str) -> Page {
    page(client().get(format!("{}{path}", b.url)).header("cookie", cookie)).await
}

pub async fn post(b: &TestBroker, path: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
    page(client().post(format!("{}{path}", b.url)).header("cookie", cookie).form(form)).await
}

/// The CSRF token a page's forms carry.
pub fn csrf(p: &Page) -> String {
    let at = p.text.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    p.text[at..at + 64].to_string()
}
