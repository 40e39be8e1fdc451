//! `jit extend GRANT|REPO --for D [--reason R]`: ask to keep a live grant
//! longer, wait, and on approval keep the longer grant's credential.

use crate::api;
use crate::domain::AccessDuration;
use crate::domain::request::RequestStatus;
use crate::error::CommandError;
use crate::keychain::Keychain;
use crate::output::print_json;
use clap::Args;

use crate::commands::args::duration_parser;

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
    /// Print the request and return without waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Stop waiting after this long (the request stays pending; the grant ends when it would have)
    #[arg(long, value_name = "DURATION", value_parser = duration_parser(), allow_hyphen_values = true)]
    pub timeout: Option<AccessDuration>,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

pub async fn cmd_extend(args: &ExtendArgs) -> Result<(), CommandError> {
    let client = super::client()?;
    let ids = super::my_live_grants(&client, &args.target).await?;
    let [id] = ids[..] else {
        let listed = ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ");
        return Err(CommandError::bad_input(format!("you hold {} live grants on {} ({listed}): which one?", ids.len(), args.target))
            .hint(format!("name it: jit extend {} --for {}", ids[0], args.duration)));
    };
    if !args.no_wait {
        // The longer grant's credential is kept here, as `jit request` keeps one.
        Keychain::open()?.check_writable()?;
    }
    let body = api::ExtendBody { duration: args.duration.to_string(), reason: args.reason.clone() };
    let req = client.extend_grant(id, &body).await?;
    if req.status == RequestStatus::Pending && args.no_wait {
        super::wait::follow_up_later(&client, &req).await;
        if args.json {
            return print_json(&req);
        }
        println!("{}", req.id);
        eprintln!("asked to extend grant {id} by {} (#{}); wait with `jit wait {}`", args.duration, req.id, req.id);
        return Ok(());
    }
    let req = super::wait::wait_for_decision(&client, req, args.timeout.map(|t| t.as_std())).await?;
    super::wait::finish(&client, &req, args.json).await?;
    if !args.json
        && let (RequestStatus::Approved, Some(grant)) = (req.status, &req.grant)
        && grant.id != id
    {
        eprintln!("grant {} takes the place of grant {id}: git keeps working without a gap", grant.id);
    }
    Ok(())
}
