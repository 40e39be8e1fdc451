//! `jit policy check|explain|test --config FILE`: test a broker's config
//! before shipping it, with the broker's own code and no broker running.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::commands::args::{LevelParser, duration_parser, name_parser};
use crate::domain::policy::Subject;
use crate::domain::{AccessDuration, Level};
use crate::error::{CommandError, ExitKind};
use crate::server::ServerConfig;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a config exactly as the broker does at start-up
    ///
    /// The same code reads the file: rules, repos, providers and their files.
    /// Exit 0 when the broker would start on it, 2 naming what is wrong.
    #[command(after_long_help = "Example:\n  jit policy check --config /etc/jit.toml")]
    Check(ConfigArg),
    /// Which rule governs a request, and why the earlier ones do not
    ///
    /// Walks the rules in order as the broker does, then says whether the
    /// request is auto-approved or who must approve it and how many, the
    /// longest duration, a reason, refs and networks. Exit 0 when the request
    /// would be accepted, 5 when the policy refuses it.
    #[command(
        after_long_help = "Example:\n  jit policy explain --config /etc/jit.toml --user alice --group developers --repo acme/api --level write --for 2h"
    )]
    Explain(ExplainArgs),
    /// Check a table of expected decisions against the policy
    ///
    /// Each `[[case]]` names who asks (user, groups), what (repo, level,
    /// optionally `for` and `from`) and what must follow: `expect =
    /// "allowed"` or `"denied"`, and for an allowed one optionally `auto`
    /// and `approvers` (each must be among the rule's). Exit 0 when every
    /// case holds, 1 naming each that does not, 2 for a bad file.
    #[command(after_long_help = "Example:\n  jit policy test --config /etc/jit.toml policy-cases.toml")]
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The cases (TOML: `[[case]]` tables)
    #[arg(value_name = "CASES")]
    pub cases: PathBuf,
}

/// One expected decision, as a cases file writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    repo: String,
    level: String,
    #[serde(rename = "for")]
    duration: Option<String>,
    from: Option<std::net::IpAddr>,
    expect: String,
    auto: Option<bool>,
    approvers: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default)]
    case: Vec<toml::Spanned<Case>>,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The broker's config file (TOML)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Who asks
    #[arg(long, value_name = "NAME", value_parser = name_parser("user"))]
    pub user: String,
    /// A group they belong to (repeat for several)
    #[arg(long = "group", value_name = "GROUP", value_parser = name_parser("group"))]
    pub groups: Vec<String>,
    /// The repo, by its short name
    #[arg(long, value_name = "REPO")]
    pub repo: String,
    /// Access level
    #[arg(long, value_name = "LEVEL", value_parser = LevelParser)]
    pub level: Level,
    /// How long: checked against the rule's longest
    #[arg(long = "for", value_name = "DURATION", value_parser = duration_parser())]
    pub duration: Option<AccessDuration>,
    /// An address git would come from: checked against the rule's networks
    #[arg(long, value_name = "IP")]
    pub from: Option<std::net::IpAddr>,
    /// As a `jit request --break-glass`: only break-glass rules govern it
    #[arg(long)]
    pub break_glass: bool,
}

fn load(path: &std::path::Path) -> Result<ServerConfig, CommandError> {
    ServerConfig::load(path, crate::server::config::default_data_dir()).map_err(super::server::config_error)
}

pub fn cmd_policy(cmd: &PolicyCommand) -> Result<(), CommandError> {
    match cmd {
        PolicyCommand::Check(args) => {
            let config = load(&args.config)?;
            println!(
                "{}: the broker would start on it ({} rules, {} repos, {} providers)",
                args.config.display(),
                config.policy.rules().len(),
                config.repos.len(),
                config.providers.all().count()
            );
            Ok(())
        }
        PolicyCommand::Explain(args) => explain(args),
        PolicyCommand::Test(args) => test(args),
    }
}

/// What keeps `rule` from accepting a request for `duration` from `from`.
fn refusals(rule: &crate::domain::policy::Rule, duration: Option<AccessDuration>, from: Option<std::net::IpAddr>) -> Vec<String> {
    let mut refused = Vec::new();
    if let Some(asked) = duration
        && asked > rule.max_duration
    {
        refused.push(format!("{asked} is longer than the {} it allows", rule.max_duration));
    }
    if let Some(ip) = from
        && !crate::domain::network::allowed_from(&rule.from, ip)
    {
        refused.push(format!("{ip} is outside its networks"));
    }
    refused
}

fn test(args: &TestArgs) -> Result<(), CommandError> {
    let config = load(&args.config.config)?;
    let bad = |message: String| CommandError::bad_input(format!("{}: {message}", args.cases.display()));
    let source = std::fs::read_to_string(&args.cases).map_err(|e| bad(e.to_string()))?;
    let file: CasesFile = toml::from_str(&source).map_err(|e| bad(e.to_string()))?;
    if file.case.is_empty() {
        return Err(bad("no [[case]] in it".into()));
    }
    let mut failed = Vec::new();
    for spanned in &file.case {
        let line = crate::domain::policy::line_of(&source, spanned.span().start);
        let case = spanned.get_ref();
        let level: Level = case.level.parse().map_err(|e: crate::domain::level::UnknownLevel| bad(format!("line {line}: {e}")))?;
        let duration =
            case.duration.as_deref().map(str::parse::<AccessDuration>).transpose().map_err(|e| bad(format!("line {line}: {e}")))?;
        let expect_allowed = match case.expect.as_str() {
            "allowed" => true,
            "denied" => false,
            other => return Err(bad(format!("line {line}: expect `{other}`: \"allowed\" or \"denied\""))),
        };
        let who = Subject { name: &case.user, groups: &case.groups };
        let rule = config.policy.explain(&case.repo, level, &who, false).applies;
        let allowed = rule.is_some_and(|r| refusals(r, duration, case.from).is_empty());
        let what = format!("case at line {line} ({} {} on {})", case.user, level, case.repo);
        let mut wrong = Vec::new();
        if allowed != expect_allowed {
            let got = match rule {
                Some(r) if allowed => format!("allowed by rule `{}`", r.name),
                Some(r) => format!("denied by rule `{}`: {}", r.name, refusals(r, duration, case.from).join("; ")),
                None => "denied: no rule applies".to_string(),
            };
            wrong.push(format!("expected {}, got {got}", case.expect));
        }
        if let (Some(rule), true) = (rule, allowed) {
            if let Some(auto) = case.auto
                && auto != rule.auto_approve
            {
                wrong.push(format!("expected auto = {auto}, rule `{}` has {}", rule.name, rule.auto_approve));
            }
            let theirs = rule.approvers_display();
            let missing: Vec<&String> = case.approvers.iter().flatten().filter(|a| !theirs.contains(a)).collect();
            if !missing.is_empty() {
                let missing = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                wrong.push(format!("expected approvers to include {missing}; rule `{}` has {}", rule.name, theirs.join(", ")));
            }
        }
        if wrong.is_empty() {
            println!("ok    {what}");
        } else {
            println!("FAIL  {what}: {}", wrong.join("; "));
            failed.push(what);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(CommandError::unexpected(format!("{} of {} case(s) failed: {}", failed.len(), file.case.len(), failed.join(", "))))
}

fn explain(args: &ExplainArgs) -> Result<(), CommandError> {
    let config = load(&args.config.config)?;
    let who = Subject { name: &args.user, groups: &args.groups };
    let groups = if args.groups.is_empty() { "no groups".to_string() } else { format!("groups: {}", args.groups.join(", ")) };
    println!("{} on {} for {} ({groups}):", args.level, args.repo, args.user);
    let explanation = config.policy.explain(&args.repo, args.level, &who, args.break_glass);
    for (rule, why) in &explanation.passed {
        println!("  rule `{}` (line {}): passed over: {}", rule.name, rule.line, why.describe());
    }
    let Some(rule) = explanation.applies else {
        println!("  no rule applies: refused (default deny)");
        return Err(CommandError::new(
            ExitKind::NotAllowed,
            format!("the policy refuses {} on {} for {}", args.level, args.repo, args.user),
        ));
    };
    println!("  rule `{}` (line {}) applies", rule.name, rule.line);
    if rule.break_glass {
        println!(
            "    granted at once (break-glass; a reason is required), reviewed afterwards by {} (never the requester)",
            rule.approvers_display().join(", ")
        );
    } else if rule.auto_approve {
        println!("    approved at once (auto_approve)");
    } else if !rule.quorums.is_empty() {
        let each: Vec<String> = rule.quorums.iter().map(|q| format!("{} from {}", q.count, q.from.display())).collect();
        println!("    needs {} (each approver counts once, in one of them; never the requester's own)", each.join(" and "));
    } else {
        println!(
            "    needs {} approval(s) from {} (never the requester's own)",
            rule.approvals_required,
            rule.approvers_display().join(", ")
        );
    }
    println!("    at most {}{}", rule.max_duration, if rule.reason_required { "; a reason is required" } else { "" });
    println!("    refs: {}", if rule.refs.is_all() { "every ref".to_string() } else { rule.refs.to_string() });
    let nets = rule.from.iter().map(ToString::to_string).collect::<Vec<_>>();
    println!("    used from: {}", if nets.is_empty() { "anywhere".to_string() } else { nets.join(", ") });
    let refused = refusals(rule, args.duration, args.from);
    if refused.is_empty() {
        return Ok(());
    }
    Err(CommandError::new(ExitKind::NotAllowed, format!("rule `{}` refuses it: {}", rule.name, refused.join("; "))))
}
