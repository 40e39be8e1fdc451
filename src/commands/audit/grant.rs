//! `jit audit grant ID [--json] [--key K]`: one grant's access period as the
//! audit log holds it — its request and decisions, every credential, fetch
//! and push, and how it ended — checked here against the checkpoints the
//! broker signed, so a report from an altered database does not pass.

use clap::Args;

use crate::api::GrantReport;
use crate::domain::audit::parse_public_key;
use crate::domain::audit_proof;
use crate::domain::request::GrantStatus;
use crate::error::CommandError;
use crate::output::{print_json, table};
use crate::ui;

#[derive(Debug, Args)]
pub struct AuditGrantArgs {
    /// The grant's id (`jit status`, `jit admin grants`)
    #[arg(value_name = "GRANT", value_parser = clap::value_parser!(i64).range(1..))]
    pub grant: i64,
    /// The public key the checkpoints must verify with (`jit audit key`, kept
    /// elsewhere); without it the key the broker sends along is used
    #[arg(long, value_name = "BASE64")]
    pub key: Option<String>,
    /// Print the report and its proof as JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn cmd_audit_grant(args: &AuditGrantArgs) -> Result<(), CommandError> {
    let key_text =
        args.key.as_deref().map(|k| parse_public_key(k).map_err(|e| CommandError::bad_input(format!("--key: {e}")))).transpose()?;
    let report = crate::commands::client()?.grant_report(args.grant).await?;
    let key = match key_text {
        Some(key) => key,
        None => parse_public_key(&report.proof.public_key).map_err(|e| super::verify::broken(format!("the report's key: {e}")))?,
    };
    let checkpoints = audit_proof::verify(&report.events, &report.proof.links, &report.proof.checkpoints, &key)
        .map_err(|e| super::verify::broken(format!("grant {}'s report: {e}", args.grant)))?;
    if args.json {
        return print_json(&report);
    }
    print!("{}", describe(&report, checkpoints));
    Ok(())
}

/// The report in words: the grant, its request, how it ended, its events, and what vouches for them.
fn describe(report: &GrantReport, checkpoints: usize) -> String {
    let g = &report.grant;
    let refs = if g.refs.is_empty() { "every ref".to_string() } else { g.refs.join(", ") };
    let mut out = format!(
        "Grant {}: {} may {} {} ({refs}), from {} to {}\n",
        g.id,
        g.user,
        g.level,
        g.repo,
        ui::precise_time(g.granted_at),
        ui::precise_time(g.expires_at)
    );
    if let Some(r) = &report.request {
        let reason = r.reason.as_deref().map(|s| format!(" because \"{s}\"")).unwrap_or_default();
        out += &format!("Request {}: by {} for {}{reason}, under rule {}", r.id, r.requester, r.duration, r.rule);
        let approvers: Vec<&str> = r.approvals.iter().map(|a| a.by.as_str()).collect();
        out += &match approvers.as_slice() {
            [] => ", approved by the policy\n".to_string(),
            by => format!(", approved by {}\n", by.join(", ")),
        };
    }
    out += &match (g.status, &g.revoked_at) {
        (GrantStatus::Revoked, Some(at)) => {
            format!("Ended: revoked by {} at {}\n", g.revoked_by.as_deref().unwrap_or("the broker"), ui::precise_time(*at))
        }
        (GrantStatus::Active, _) => format!("Live: it ends at {}\n", ui::precise_time(g.expires_at)),
        _ => format!("Ended: expired at {}\n", ui::precise_time(g.expires_at)),
    };
    let rows: Vec<Vec<String>> = report
        .events
        .iter()
        .map(|e| vec![e.seq.to_string(), e.at.clone(), e.actor.clone(), e.action.clone(), e.detail.clone().unwrap_or_default()])
        .collect();
    out += &format!("\n{}\n\n", table(&["SEQ", "AT", "ACTOR", "ACTION", "DETAIL"], &rows));
    out += &format!(
        "Proof: all {} events are in the audit log the broker signed ({checkpoints} signed checkpoint(s) reached, {} other event(s) between).\n",
        report.events.len(),
        report.proof.links.len()
    );
    out
}
