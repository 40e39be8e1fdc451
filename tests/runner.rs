//! The everyday integration-test binary. Every test module is declared here
//! (the heavy suites are in `tests/heavy.rs`); `every_test_file_is_declared`
//! fails when a file under `tests/` is in neither.

mod common;

mod test_accounts;
mod test_approval_pages;
mod test_architecture;
mod test_audit_archive;
mod test_audit_integrity;
mod test_bitbucket;
mod test_break_glass;
mod test_broker_api;
mod test_broker_bad_input;
mod test_broker_durability;
mod test_broker_files;
mod test_cli_admin;
mod test_cli_interactive;
mod test_cli_request;
mod test_cli_session;
mod test_credential_cache;
mod test_credential_helper;
mod test_docs;
mod test_extend;
mod test_faults;
mod test_first_day;
mod test_gateway_guards;
mod test_generated;
mod test_git_e2e;
mod test_github;
mod test_gitlab;
mod test_grant_terms;
mod test_input_checks;
mod test_metrics;
mod test_migrate_from_sqlite;
mod test_next_steps;
mod test_notify;
mod test_openapi;
mod test_policy;
mod test_ref_scopes;
mod test_replicas;
mod test_setup;
mod test_sign_in;
mod test_slow_clients;
mod test_tls;
mod test_upstream;

#[test]
fn every_test_file_is_declared() {
    let runner = include_str!("runner.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs") {
            if module == "runner" || module == "heavy" {
                continue;
            }
            assert!(runner.contains(&format!("mod {module};")), "tests/{name} is not declared in tests/runner.rs");
        }
    }
}
