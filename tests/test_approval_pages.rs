//! The approval pages over HTTP, where a browser cannot be trusted to
//! behave: sign-in and where it may lead, the cookie's attributes, CSRF,
//! self-approval, requests one may not see, escaping, and sign-out. (A real
//! browser plays the whole page in `heavy/test_approval_page.rs`.)

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;

use crate::common::TestBroker;
use crate::common::web::{csrf, get, location, post, sign_in};

async fn status_of(b: &TestBroker, id: i64) -> String {
    b.get("admin", &format!("/v1/requests/{id}")).await.body["status"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_leads_only_to_the_pages_and_keeps_the_token_from_scripts() {
    let b = TestBroker::start().await;
    for (path, next) in [("/requests/7", "%2Frequests%2F7"), ("/requests", "%2Frequests")] {
        let p = get(&b, path, "").await;
        assert_eq!((p.status, location(&p)), (StatusCode::SEE_OTHER, format!("/sign-in?next={next}").as_str()));
    }
    let form = get(&b, "/sign-in?next=/requests/7", "").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("name=\"next\" value=\"/requests/7\"") && !form.text.contains("identity provider"), "{}", form.text);

    let (wrong, cookie) = sign_in(&b, "not-a-token", "/requests/7").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("That token is not valid.") && cookie.is_empty(), "{}", wrong.text);
    let (empty, _) = sign_in(&b, "  ", "/requests/7").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let (done, cookie) = sign_in(&b, b.token("bob"), "/requests/7").await;
    assert_eq!((done.status, location(&done)), (StatusCode::SEE_OTHER, "/requests/7"));
    let set = done.headers[SET_COOKIE].to_str().unwrap();
    for attribute in ["jit_web=", "Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=28800"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: a Secure cookie would never come back");
    // Never anywhere else after signing in.
    for elsewhere in ["https://evil.example/", "//evil.example/requests/1", "/v1/users", "/requests/1/../../v1/users"] {
        let (p, _) = sign_in(&b, b.token("bob"), elsewhere).await;
        assert_eq!(location(&p), "/requests", "{elsewhere}");
    }
    // A cookie the broker does not know: back to sign-in.
    let p = get(&b, "/requests", "jit_web=forged").await;
    assert_eq!((p.status, location(&p)), (StatusCode::SEE_OTHER, "/sign-in?next=%2Frequests"));
    let list = get(&b, "/requests", &cookie).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains("Nothing waits for your decision."), "{}", list.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_needs_the_forms_own_token_and_follows_the_policy() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("fix <script>alert(1)</script>")).await["id"].as_i64().unwrap();
    let (_, bob) = sign_in(&b, b.token("bob"), "/requests").await;
    let view = get(&b, &format!("/requests/{id}"), &bob).await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(view.text.contains("fix &lt;script&gt;alert(1)&lt;/script&gt;") && !view.text.contains("<script>"), "escaped: {}", view.text);
    for (name, value) in [("content-security-policy", "default-src 'none'"), ("x-frame-options", "DENY"), ("cache-control", "no-store")] {
        assert!(view.headers[name].to_str().unwrap().contains(value), "{name}: {:?}", view.headers[name]);
    }
    let token = csrf(&view);
    assert!(get(&b, "/requests", &bob).await.text.contains(&format!("/requests/{id}")), "listed for bob");

    // Without the form's token, or with another session's: nothing is decided.
    let path = format!("/requests/{id}");
    for forged in ["", "0000000000000000000000000000000000000000000000000000000000000000"] {
        let p = post(&b, &path, &bob, &[("csrf", forged), ("decision", "approve"), ("text", "")]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.text);
    }
    let (_, carol) = sign_in(&b, b.token("carol"), "/requests").await;
    let carols = csrf(&get(&b, &path, &carol).await);
    assert_eq!(post(&b, &path, &bob, &[("csrf", &carols), ("decision", "approve")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&b, id).await, "pending");

    // A denial needs a comment; a decision nobody chose is refused.
    let p = post(&b, &path, &bob, &[("csrf", &token), ("decision", "deny"), ("text", "  ")]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.text.contains("A denial needs a comment"), "{}", p.text);
    assert_eq!(post(&b, &path, &bob, &[("csrf", &token), ("decision", "maybe")]).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(status_of(&b, id).await, "pending");

    // alice sees her own request without buttons, and a forged approval is refused as the CLI refuses it.
    let (_, alice) = sign_in(&b, b.token("alice"), "/requests").await;
    let own = get(&b, &path, &alice).await;
    assert!(own.text.contains("Waiting for") && !own.text.contains(">Approve<"), "{}", own.text);
    let p = post(&b, &path, &alice, &[("csrf", &csrf(&own)), ("decision", "approve")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.text.contains("you cannot approve or deny your own request"), "{}", p.text);
    // mallory may not see it: it does not exist for her.
    let (_, mallory) = sign_in(&b, b.token("mallory"), "/requests").await;
    let hidden = get(&b, &path, &mallory).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(!hidden.text.contains("alert"), "nothing of it shows");
    assert_eq!(get(&b, "/requests/0", &bob).await.status, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&b, id).await, "pending");

    // bob approves: a redirect to the page (a reload decides nothing twice), and the record says so.
    let p = post(&b, &path, &bob, &[("csrf", &token), ("decision", "approve"), ("text", "go ahead")]).await;
    assert_eq!((p.status, location(&p)), (StatusCode::SEE_OTHER, format!("{path}?said=approved").as_str()));
    let after = get(&b, &format!("{path}?said=approved"), &bob).await;
    assert!(after.text.contains("Your approval is recorded.") && after.text.contains("bob: go ahead"), "{}", after.text);
    assert_eq!(status_of(&b, id).await, "approved");
    let again = post(&b, &path, &bob, &[("csrf", &token), ("decision", "deny"), ("text", "no")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text.contains("already approved"), "{}", again.text);

    // Signing out forgets the cookie, and only with the form's token.
    let out = post(&b, "/sign-out", &bob, &[("csrf", "wrong")]).await;
    assert!(out.headers.get(SET_COOKIE).is_none(), "a forged sign-out changes nothing");
    let out = post(&b, "/sign-out", &bob, &[("csrf", &token)]).await;
    assert_eq!((out.status, location(&out)), (StatusCode::SEE_OTHER, "/sign-in"));
    assert!(out.headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_needs_two_groups_says_what_it_lacks_until_both_approve_on_the_page() {
    let policy = crate::common::POLICY.replace(
        "approvers = [\"group:reviewers\", \"alice\"]\napprovals = 1\n",
        "approvals = [{ from = \"group:reviewers\" }, { from = \"group:developers\" }]\n",
    );
    assert_ne!(policy, crate::common::POLICY);
    let b = TestBroker::start_with(&policy).await;
    let id = b.request("alice", "demo", "write", "1h", Some("release")).await["id"].as_i64().unwrap();
    let path = format!("/requests/{id}");
    let (_, bob) = sign_in(&b, b.token("bob"), &path).await;
    let view = get(&b, &path, &bob).await;
    assert!(view.text.contains("needs 1 more from group:reviewers and 1 more from group:developers"), "{}", view.text);
    let p = post(&b, &path, &bob, &[("csrf", &csrf(&view)), ("decision", "approve"), ("text", "reviewed")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let after = get(&b, &path, &bob).await;
    assert!(after.text.contains("needs 1 more from group:developers") && after.text.contains(">pending<"), "{}", after.text);
    assert!(!after.text.contains(">Approve<"), "bob has approved: no second vote");
    let (_, dave) = sign_in(&b, b.token("dave"), &path).await;
    let view = get(&b, &path, &dave).await;
    post(&b, &path, &dave, &[("csrf", &csrf(&view)), ("decision", "approve")]).await;
    assert_eq!(status_of(&b, id).await, "approved");
    let actions = b.actions_for(id).await;
    assert_eq!(actions, ["requested", "approved", "approved", "granted"], "{actions:?}");
}
