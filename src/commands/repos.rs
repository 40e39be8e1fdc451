//! `jit repos [--json]`: the repos the broker knows, by short name and clone URL.

use crate::error::CommandError;

pub async fn cmd_repos(json: bool) -> Result<(), CommandError> {
    let repos = super::client()?.repos().await?;
    if json {
        return crate::output::print_json(&repos);
    }
    let rows: Vec<Vec<String>> = repos.iter().map(|r| vec![r.name.clone(), r.clone_url.clone().unwrap_or_default()]).collect();
    crate::output::print_table(&["NAME", "CLONE URL"], &rows);
    Ok(())
}
