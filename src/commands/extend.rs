//! `jit extend GRANT|REPO --for D [--reason R]`: ask to keep a live grant
//! longer, wait, and on approval keep the longer grant's credential.

use crate::api;
use crate::domain::AccessDuration;
use crate::domain::request::RequestStatus;
use crate::error::CommandError;
use crate::keychain::Keychain;
use clap::Args;

use crate::commands::args::{WaitFlags, duration_parser};

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// A grant id, or a repo you hold one live grant on
    pub target: String,
    /// How much longer: 30m, 1h, 2h30m (added to the grant's end)
    #[arg(long = "for", value_name = "DURATION", value_parser = duration_parser(), allow_hyphen_values = true)]
    pub duration: AccessDuration,
    /// Why you need it longer (some policies require one)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub wait: WaitFlags,
}

pub async fn cmd_extend(args: &ExtendArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let ids = super::my_live_grants(&client, &args.target).await?;
    let [id] = ids[..] else {
        let listed = ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ");
        return Err(CommandError::bad_input(format!("you hold {} live grants on {} ({listed}): which one?", ids.len(), args.target))
            .hint(format!("name it: jit extend {} --for {}", ids[0], args.duration)));
    };
    if !args.wait.no_wait {
        // The longer grant's credential is kept here, as `jit request` keeps one.
        Keychain::open()?.check_writable()?;
    }
    let body = api::ExtendBody { duration: args.duration.to_string(), reason: args.reason.clone() };
    let req = client.extend_grant(id, &body).await?;
    let asked = format!("asked to extend grant {id} by {}", args.duration);
    let Some(req) = super::wait::after_asking(&client, req, &args.wait, &asked).await? else { return Ok(()) };
    if !args.wait.json
        && let (RequestStatus::Approved, Some(grant)) = (req.status, &req.grant)
        && grant.id != id
    {
        eprintln!("grant {} takes the place of grant {id}: git keeps working without a gap", grant.id);
    }
    Ok(())
}
