//! The heavy suites, in a test binary of their own so they are timed and
//! reported apart from the everyday suite (`tests/runner.rs`): the crash loop,
//! the bad-input sweep, the property-based fuzzing and the upstream proxy's
//! volume tests (protocol v2, gzip, a push of more than 100 MB), a large refused push, the GitHub contract tests (Prism), Schemathesis fuzzing the broker's own API, and Debian's Prometheus scraping `/metrics`. `cargo test` runs both.

#[path = "common/mod.rs"]
mod common;

#[path = "heavy/test_approval_page.rs"]
mod test_approval_page;
#[path = "heavy/test_bad_input_sweep.rs"]
mod test_bad_input_sweep;
#[path = "heavy/test_crash.rs"]
mod test_crash;
#[path = "heavy/test_database_outage.rs"]
mod test_database_outage;
#[path = "heavy/test_database_tls.rs"]
mod test_database_tls;
#[path = "heavy/test_github_contract.rs"]
mod test_github_contract;
#[path = "heavy/test_host_catch_up.rs"]
mod test_host_catch_up;
#[path = "heavy/test_load_balancer.rs"]
mod test_load_balancer;
#[path = "heavy/test_openapi_contract.rs"]
mod test_openapi_contract;
#[path = "heavy/test_prometheus_scrape.rs"]
mod test_prometheus_scrape;
#[path = "heavy/test_properties.rs"]
mod test_properties;
#[path = "heavy/test_push_volume.rs"]
mod test_push_volume;
#[path = "heavy/test_receive_pack_oracle.rs"]
mod test_receive_pack_oracle;
#[path = "heavy/test_schemathesis.rs"]
mod test_schemathesis;
#[path = "heavy/test_upstream_keepalive.rs"]
mod test_upstream_keepalive;
#[path = "heavy/test_upstream_volume.rs"]
mod test_upstream_volume;

#[test]
fn every_heavy_test_file_is_declared() {
    let heavy = include_str!("heavy.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/heavy");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(heavy.contains(&format!("#[path = \"heavy/{name}\"]")), "tests/heavy/{name} is not declared in tests/heavy.rs");
    }
}
