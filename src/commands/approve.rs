//! `jit approve [ID] [--comment TEXT] [--yes]`: with no ID on a terminal, a
//! picker of the requests you can review, then a confirmation.

use crate::api::AccessRequest;
use crate::error::{CommandError, ExitKind};
use crate::ui;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request id [default: pick from the pending requests you can review]
    pub id: Option<String>,
    /// A comment for the requester and the audit log
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

fn details(r: &AccessRequest) -> String {
    let reason = r.reason.as_deref().unwrap_or("(none given)");
    let approvals =
        if r.approvals_required > 1 { format!("\n  approvals: {} of {}", r.approvals.len(), r.approvals_required) } else { String::new() };
    // What the grant may update, always: an approver sees exactly what they approve.
    let refs = if r.refs.is_empty() { "every ref".to_string() } else { r.refs.join(", ") };
    format!(
        "  request:   #{}\n  requester: {}\n  repo:      {}\n  level:     {}\n  refs:      {refs}\n  for:       {}\n  reason:    {reason}\n  asked:     {} ago{approvals}",
        r.id,
        r.requester,
        r.repo,
        r.level,
        r.duration,
        ui::age(r.created_at, chrono::Utc::now())
    )
}

fn confirm(r: &AccessRequest) -> Result<bool, CommandError> {
    eprintln!("{}", details(r));
    dialoguer::Confirm::new()
        .with_prompt(format!("Approve {}{} on {} for {}?", r.level, super::refs_note(&r.refs), r.repo, r.requester))
        .default(false)
        .interact()
        .map_err(|e| CommandError::unexpected(format!("prompt failed: {e}")))
}

pub async fn cmd_approve(args: &ApproveArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let req = match &args.id {
        Some(raw) => {
            let id = super::parse_id("request", raw)?;
            let req = client.request(id).await?;
            if !args.yes && ui::can_prompt() && !confirm(&req)? {
                return Err(CommandError::new(ExitKind::TimedOut, "not approved").hint("nothing changed; the request is still pending"));
            }
            req
        }
        None => {
            let pending = client.requests(false, true, Some("pending")).await?;
            // Nothing to review is the same answer on a terminal or not: nothing to do.
            if pending.is_empty() {
                eprintln!("no pending requests you can review");
                return Ok(());
            }
            if !ui::can_prompt() {
                let ids: Vec<String> = pending.iter().map(|r| format!("#{}", r.id)).collect();
                return Err(CommandError::bad_input(format!("no request id and no terminal to pick one (pending: {})", ids.join(", ")))
                    .hint(format!("pass the id: jit approve {}", pending[0].id)));
            }
            let now = chrono::Utc::now();
            let items: Vec<String> = pending
                .iter()
                .map(|r| {
                    format!(
                        "#{} {} · {}{} on {} for {} · {} ago · {}",
                        r.id,
                        r.requester,
                        r.level,
                        super::refs_note(&r.refs),
                        r.repo,
                        r.duration,
                        ui::age(r.created_at, now),
                        r.reason.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            let chosen = dialoguer::Select::new()
                .with_prompt("Which request?")
                .items(&items)
                .default(0)
                .interact_opt()
                .map_err(|e| CommandError::unexpected(format!("prompt failed: {e}")))?;
            let Some(index) = chosen else { return Err(CommandError::new(ExitKind::TimedOut, "nothing chosen; nothing changed")) };
            let req = pending[index].clone();
            if !args.yes && !confirm(&req)? {
                return Err(CommandError::new(ExitKind::TimedOut, "not approved").hint("nothing changed; the request is still pending"));
            }
            req
        }
    };
    let after = client.approve(req.id, args.comment.as_deref()).await?;
    if args.json.json {
        return crate::output::print_json(&after);
    }
    match after.status {
        crate::domain::request::RequestStatus::Approved => {
            eprintln!(
                "{}",
                ui::success(&format!(
                    "approved #{}: {} has {} on {} for {}",
                    after.id, after.requester, after.level, after.repo, after.duration
                ))
            )
        }
        // The broker counts each approver once: an unchanged list means this one was already counted.
        _ if after.approvals == req.approvals => eprintln!(
            "you already approved #{}; it still needs {} of {} approvals",
            after.id,
            after.approvals_required as usize - after.approvals.len(),
            after.approvals_required
        ),
        _ => {
            let needs = after.needs.as_deref().map(|n| format!("; it {n}")).unwrap_or_default();
            eprintln!("recorded your approval of #{} ({} of {} needed{needs})", after.id, after.approvals.len(), after.approvals_required)
        }
    }
    Ok(())
}
