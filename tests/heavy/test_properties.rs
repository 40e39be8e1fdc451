//! Property-based fuzzing (proptest, on stable, so every CI run does it) of
//! what reads untrusted input: the credential protocol and its exact-match
//! rule, clone URLs and repo names, durations, the policy file, git's
//! smart-HTTP routes and the receive-pack command list. Each property runs a bounded number of cases; a failure
//! proptest finds is shrunk and kept in `proptest-regressions/` as a
//! regression case.

use proptest::prelude::*;

use jit::domain::AccessDuration;
use jit::domain::receive_pack::{self, RefUpdate};
use jit::domain::repo::{CloneUrl, RepoSpec, resolve};
use jit::domain::smart_http::route;
use jit::domain::url_rewrite::{self, Fronted};
use jit::git::credential::{parse, target};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// The one repo a grant is for.
const GRANTED: &str = "http://127.0.0.1:8420/git/demo.git";

/// Pieces that make look-alikes of the granted URL.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("git".to_string()),
        Just("demo".to_string()),
        Just("demo.git".to_string()),
        Just(".git".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e".to_string()),
        Just("%64emo".to_string()),
        Just("demo-evil".to_string()),
        Just("DEMO".to_string()),
        Just(String::new()),
        Just("?x=1".to_string()),
        Just("#frag".to_string()),
        Just("\\".to_string()),
        Just("\t".to_string()),
        Just("@".to_string()),
        "[a-z.%@?#\\\\:/]{0,6}",
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("127.0.0.1:8420".to_string()),
        Just("127.0.0.1:8421".to_string()),
        Just("127.0.0.1".to_string()),
        Just("localhost:8420".to_string()),
        Just("127.0.0.2:8420".to_string()),
        Just("x127.0.0.1:8420".to_string()),
        Just("@127.0.0.1:8420".to_string()),
        Just("alice@127.0.0.1:8420".to_string()),
        Just(":@127.0.0.1:8420".to_string()),
        Just("127.0.0.1:8420@evil".to_string()),
        "[a-z0-9.:@\\[\\]]{0,16}",
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// The helper's promise: no URL but the grant's exact clone URL (in one of
    /// its normal spellings) is ever answered, whichever key it came in.
    #[test]
    fn only_the_granted_url_gets_a_credential(
        scheme in prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("ftp")],
        host in host(),
        prefix in prop_oneof![Just("git/demo"), Just("git/demo.git"), Just("git"), Just("")],
        parts in proptest::collection::vec(piece(), 0..3),
        use_url_key in any::<bool>(),
        trailing_slash in any::<bool>(),
    ) {
        // Look-alikes are near misses of the granted path, so most cases
        // start from it and add a piece or two.
        let mut path = std::iter::once(prefix.to_string()).filter(|p| !p.is_empty()).chain(parts).collect::<Vec<_>>().join("/");
        if trailing_slash {
            path.push('/');
        }
        let input = if use_url_key {
            format!("url={scheme}://{host}/{path}\n\n")
        } else {
            format!("protocol={scheme}\nhost={host}\npath={path}\n\n")
        };
        let granted = CloneUrl::parse(GRANTED).unwrap();
        let answered = parse(input.as_bytes()).ok().and_then(|q| target(&q).ok()).is_some_and(|u| u == granted);
        let normal = matches!(path.as_str(), "git/demo.git" | "git/demo" | "git/demo.git/" | "git/demo/");
        let exact = scheme.eq_ignore_ascii_case("http") && host == "127.0.0.1:8420" && normal;
        prop_assert_eq!(answered, exact, "input {:?}", input);
    }

    /// The credential parser never panics, and never accepts what it promises to refuse.
    #[test]
    fn the_credential_parser_takes_anything_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(q) = parse(&bytes[..]) {
            prop_assert!(q.host.as_deref().is_none_or(|h| !h.contains('\0')));
            let _ = target(&q);
        }
    }

    /// A clone URL that parses has a canonical form that parses back to itself.
    #[test]
    fn clone_urls_normalise_to_a_fixed_point(s in "(https?|ftp)://[a-zA-Z0-9.@:%-]{0,20}(/[a-zA-Z0-9._%-]{0,10}){0,4}(/|\\.git)?") {
        if let Ok(url) = CloneUrl::parse(&s) {
            let again = CloneUrl::parse(&url.to_string()).unwrap();
            prop_assert_eq!(&again, &url);
            prop_assert!(!url.to_string().contains('@'));
        }
    }

    /// Resolving what a person typed never picks a repo whose name and URL both differ.
    #[test]
    fn resolve_is_exact_or_refuses(input in "[a-zA-Z0-9./:_-]{0,30}") {
        let repos = vec![
            RepoSpec { name: "acme/api".into(), url: Some(CloneUrl::parse("https://github.com/acme/api.git").unwrap()), provider: None, upstream: None },
            RepoSpec { name: "demo".into(), url: Some(CloneUrl::parse("http://127.0.0.1:8420/git/demo.git").unwrap()), provider: None, upstream: None },
        ];
        if let Ok(repo) = resolve(&input, &repos) {
            let typed = input.trim().trim_end_matches('/').trim_end_matches(".git").to_ascii_lowercase();
            let url = repo.url.as_ref().unwrap();
            let plausible = typed == repo.name
                || typed.ends_with(url.path())
                || url.host_path().ends_with(&typed)
                || CloneUrl::parse(&input).is_ok_and(|u| &u == url);
            prop_assert!(plausible, "{:?} resolved to {}", input, repo.name);
        }
    }

    /// Durations: what parses renders canonically and parses back the same;
    /// nothing parses to zero or past the cap; no input panics.
    #[test]
    fn durations_round_trip(s in "[0-9dhms .,+-]{0,12}") {
        if let Ok(d) = s.parse::<AccessDuration>() {
            prop_assert!(d.secs() >= 1 && d.secs() <= 366 * 86_400);
            prop_assert_eq!(d.to_string().parse::<AccessDuration>().unwrap(), d);
        }
    }

    /// git routes: only the four smart-HTTP endpoints, never with a second service.
    #[test]
    fn routes_are_smart_http_or_nothing(
        repo in "[a-z./]{0,12}",
        rest in prop_oneof![
            Just("info/refs".to_string()),
            Just("git-upload-pack".to_string()),
            Just("git-receive-pack".to_string()),
            Just("HEAD".to_string()),
            "[a-z/-]{0,12}",
        ],
        is_post in any::<bool>(),
        query in proptest::option::of("[a-z%0-9=&-]{0,40}"),
    ) {
        let path = format!("{repo}.git/{rest}");
        if let Ok(r) = route(&path, is_post, query.as_deref()) {
            prop_assert!(!r.repo.split('/').any(|p| p.is_empty() || p == "." || p == ".."));
            prop_assert_eq!(r.rest(), if is_post { r.service.name() } else { "info/refs" });
            let services = query.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).filter(|(k, _)| k == "service").count()).unwrap_or(0);
            prop_assert!(services <= 1);
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// The policy parser refuses bad files with a line number, and never panics.
    #[test]
    fn the_policy_parser_never_panics(
        repos in proptest::collection::vec("[a-z*/\\[\\]]{0,6}", 0..3),
        levels in proptest::collection::vec(prop_oneof![Just("read"), Just("write"), Just("admin"), Just("owner")], 0..3),
        requesters in proptest::collection::vec(prop_oneof![Just("*"), Just("alice"), Just("group:dev"), Just("bad name")], 0..3),
        approvers in proptest::collection::vec(prop_oneof![Just("alice"), Just("bob"), Just("group:rev")], 0..3),
        approvals in 0u32..4,
        auto in any::<bool>(),
        max in prop_oneof![Just("1h"), Just("0s"), Just("forever"), Just("366d")],
        from in proptest::collection::vec(prop_oneof![Just("10.0.0.0/8"), Just("::1"), Just("nope")], 0..2),
    ) {
        let list = |v: &[&str]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
        let repos: Vec<&str> = repos.iter().map(String::as_str).collect();
        let src = format!(
            "[[rule]]\nrepos = [{}]\nlevels = [{}]\nrequesters = [{}]\napprovers = [{}]\napprovals = {approvals}\nauto_approve = {auto}\nmax_duration = {max:?}\nfrom = [{}]\n",
            list(&repos), list(&levels), list(&requesters), list(&approvers), list(&from)
        );
        match jit::server::ServerConfig::from_toml(&src, std::path::Path::new("fuzz.toml"), Some("/tmp".into())) {
            Ok(config) => prop_assert_eq!(config.policy.rules().len(), 1),
            Err(e) => prop_assert!(e.to_string().contains("line") || e.to_string().contains("fuzz.toml"), "{}", e),
        }
    }
}

fn object_id() -> impl Strategy<Value = String> {
    prop_oneof![Just("0".repeat(40)), "[0-9a-f]{40}"]
}

fn ref_update() -> impl Strategy<Value = RefUpdate> {
    (object_id(), object_id(), "(heads|tags)/[a-z0-9_-]{1,12}(/[a-z0-9_-]{1,8}){0,2}")
        .prop_map(|(old, new, name)| RefUpdate { name: format!("refs/{name}"), old, new })
        .prop_filter("an unchanged ref is no command", |u| u.old != u.new)
}

proptest! {
    #![proptest_config(config(500))]

    /// What git's send-pack writes reads back exactly, with the pack left where it starts.
    #[test]
    fn receive_pack_commands_read_back_exactly(
        updates in proptest::collection::vec(ref_update(), 1..20),
        caps in proptest::collection::vec(prop_oneof![Just("report-status"), Just("side-band-64k"), Just("atomic"), Just("agent=git/2.47")], 0..4),
        pack in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut body = receive_pack::encode(&updates, &caps);
        let len = body.len();
        body.extend_from_slice(&pack);
        let parsed = receive_pack::parse(&body).unwrap().unwrap();
        prop_assert_eq!(&parsed.updates, &updates);
        prop_assert_eq!(parsed.len, len);
        // Any shorter read is "not yet", never a wrong answer.
        for cut in [0, 1, 4, len / 2, len - 1] {
            prop_assert_eq!(receive_pack::parse(&body[..cut]), Ok(None));
        }
    }

    /// Anything at all: no panic, and whatever parses names only real refs within the input.
    #[test]
    fn the_receive_pack_parser_takes_anything(bytes in proptest::collection::vec(any::<u8>(), 0..400), prefix in proptest::collection::vec(ref_update(), 0..2)) {
        let mut body = receive_pack::encode(&prefix, &[]);
        body.truncate(body.len().saturating_sub(4));
        body.extend_from_slice(&bytes);
        if let Ok(Some(parsed)) = receive_pack::parse(&body) {
            prop_assert!(parsed.len <= body.len());
            prop_assert!(parsed.updates.iter().all(|u| receive_pack::is_ref_name(&u.name)));
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// `jit setup` hands a whole host to jit's remote helper; only a fronted
    /// repo's own forms may reach its gateway, every look-alike goes on as it is.
    #[test]
    fn only_a_fronted_repos_own_forms_reach_its_gateway(
        form in prop_oneof![
            Just("https://git.example.com/acme/api"),
            Just("git@git.example.com:acme/api"),
            Just("ssh://git@git.example.com/acme/api"),
            Just("https://git.example.com/acme/ap"),
        ],
        tail in prop_oneof![Just(String::new()), Just("/".to_string()), Just(".git".to_string()), Just(".git/".to_string()), "[a-zA-Z0-9./_~:@%-]{0,8}"],
    ) {
        const GATEWAY: &str = "https://jit.example.com/git/acme/api";
        let repos = [Fronted { gateway: GATEWAY.into(), upstream: CloneUrl::parse("https://git.example.com/acme/api.git").unwrap() }];
        let url = format!("{form}{tail}");
        // The repo's own forms, whichever way they were made (`…/ap` + `i` is `…/api`).
        let stem = form.trim_end_matches("api").trim_end_matches("ap");
        let own = ["", "/", ".git", ".git/"].iter().any(|t| url == format!("{stem}api{t}"));
        let resolved = url_rewrite::resolve(&url, &repos);
        if own {
            prop_assert_eq!(resolved, format!("{GATEWAY}{}", if url.ends_with('/') { "/" } else { "" }));
        } else {
            prop_assert_eq!(resolved, url);
        }
    }
}
