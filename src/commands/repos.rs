//! `jit repos [--json]`: the repos the broker knows, by short name and clone
//! URL (for a repo on another host, the host's URL, which git sends through
//! jit's gateway once `jit setup` ran).

use crate::error::CommandError;

pub async fn cmd_repos(json: bool) -> Result<(), CommandError> {
    let client = super::client()?;
    let repos = client.repos().await?;
    // What git's helpers route by, kept current (best effort: listing still works without it).
    let _ = crate::credcache::remember_repos(client.base(), &repos);
    if json {
        return crate::output::print_json(&repos);
    }
    let rows: Vec<Vec<String>> = repos
        .iter()
        .map(|r| match (&r.upstream_url, &r.own_credentials_url) {
            (Some(host), _) => vec![r.name.clone(), host.clone(), r.clone_url.clone().unwrap_or_default()],
            (None, Some(url)) => vec![r.name.clone(), url.clone(), "your own credentials (membership)".into()],
            (None, None) => vec![r.name.clone(), r.clone_url.clone().unwrap_or_default(), String::new()],
        })
        .collect();
    crate::output::print_table(&["NAME", "CLONE URL", "VIA"], &rows);
    Ok(())
}
