# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jit_global_optspecs
    string join \n h/help V/version
end

function __fish_jit_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jit_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jit_using_subcommand
    set -l cmd (__fish_jit_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jit -n "__fish_jit_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_needs_command" -s V -l version -d 'Print version'
complete -c jit -n "__fish_jit_needs_command" -f -a "login" -d 'Store your broker token in the OS keychain'
complete -c jit -n "__fish_jit_needs_command" -f -a "logout" -d 'Remove your stored token from the keychain'
complete -c jit -n "__fish_jit_needs_command" -f -a "whoami" -d 'Show who the broker thinks you are'
complete -c jit -n "__fish_jit_needs_command" -f -a "request" -d 'Ask for access to a repo, and wait for the decision'
complete -c jit -n "__fish_jit_needs_command" -f -a "wait" -d 'Wait for the decision on a request'
complete -c jit -n "__fish_jit_needs_command" -f -a "cancel" -d 'Cancel your pending request'
complete -c jit -n "__fish_jit_needs_command" -f -a "requests" -d 'List requests you made or can review'
complete -c jit -n "__fish_jit_needs_command" -f -a "approve" -d 'Approve a request (with no ID: pick from the pending ones)'
complete -c jit -n "__fish_jit_needs_command" -f -a "deny" -d 'Deny a request'
complete -c jit -n "__fish_jit_needs_command" -f -a "review" -d 'Review a break-glass grant afterwards (with no grant: list those waiting for you)'
complete -c jit -n "__fish_jit_needs_command" -f -a "status" -d 'Your live grants and the time they have left'
complete -c jit -n "__fish_jit_needs_command" -f -a "extend" -d 'Ask to keep a live grant longer, and wait for the decision'
complete -c jit -n "__fish_jit_needs_command" -f -a "revoke" -d 'End a grant now (by grant id, or every live grant of yours on a repo)'
complete -c jit -n "__fish_jit_needs_command" -f -a "repos" -d 'List the repos the broker knows'
complete -c jit -n "__fish_jit_needs_command" -f -a "doctor" -d 'Check this machine: keychain, git, git\'s config, broker, token, clock'
complete -c jit -n "__fish_jit_needs_command" -f -a "setup" -d 'Make git use jit for the hosts jit guards (global git config)'
complete -c jit -n "__fish_jit_needs_command" -f -a "credential" -d 'The git credential helper (configured by `jit setup`)'
complete -c jit -n "__fish_jit_needs_command" -f -a "server" -d 'Run the broker'
complete -c jit -n "__fish_jit_needs_command" -f -a "admin" -d 'Manage users and tokens (admins)'
complete -c jit -n "__fish_jit_needs_command" -f -a "audit" -d 'Read and verify the audit log (admins)'
complete -c jit -n "__fish_jit_needs_command" -f -a "policy" -d 'Test a broker\'s config before shipping it (no broker needed)'
complete -c jit -n "__fish_jit_using_subcommand login" -l server -d 'The broker\'s URL (default: $JIT_SERVER)' -r
complete -c jit -n "__fish_jit_using_subcommand login" -l ca-file -d 'A CA certificate (PEM) to trust for this broker beyond the system\'s roots; remembered with the login (default: $JIT_CA_FILE)' -r -F
complete -c jit -n "__fish_jit_using_subcommand login" -l flow -d 'How to sign in at the identity provider: `device` (a code to enter, in any browser on any device) or `browser` (a page this machine\'s browser opens, which returns to the broker)' -r -f -a "device\t''
browser\t''"
complete -c jit -n "__fish_jit_using_subcommand login" -l token -d 'Sign in with a token an admin issued (service accounts, automation), read from the terminal or stdin, even where the broker signs people in through an identity provider'
complete -c jit -n "__fish_jit_using_subcommand login" -l no-browser -d 'Do not open a browser at the identity provider\'s page; print its address only'
complete -c jit -n "__fish_jit_using_subcommand login" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand logout" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand whoami" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand whoami" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand request" -l level -d 'Access level' -r -f -a "read\t''
write\t''
admin\t''"
complete -c jit -n "__fish_jit_using_subcommand request" -l for -d 'How long the access lasts once approved: 90s, 45m, 2h, 1h30m' -r
complete -c jit -n "__fish_jit_using_subcommand request" -l reason -d 'Why you need it (some policies require one)' -r
complete -c jit -n "__fish_jit_using_subcommand request" -l ref -d 'Only these refs (repeatable; `hotfix/*` is refs/heads/hotfix/*), within what the rule allows' -r
complete -c jit -n "__fish_jit_using_subcommand request" -l timeout -d 'Stop waiting after this long (the request stays pending)' -r
complete -c jit -n "__fish_jit_using_subcommand request" -l break-glass -d 'An emergency: granted at once under a break-glass rule (needs --reason), announced loudly and reviewed afterwards'
complete -c jit -n "__fish_jit_using_subcommand request" -l no-wait -d 'Print the request and return without waiting'
complete -c jit -n "__fish_jit_using_subcommand request" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand request" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand wait" -l timeout -d 'Stop waiting after this long (the request stays pending)' -r
complete -c jit -n "__fish_jit_using_subcommand wait" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand wait" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand cancel" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand requests" -l pending -d 'Only pending requests'
complete -c jit -n "__fish_jit_using_subcommand requests" -l mine -d 'Only your own requests'
complete -c jit -n "__fish_jit_using_subcommand requests" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand requests" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand approve" -l comment -d 'A comment for the requester and the audit log' -r
complete -c jit -n "__fish_jit_using_subcommand approve" -s y -l yes -d 'Do not ask for confirmation'
complete -c jit -n "__fish_jit_using_subcommand approve" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand approve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand deny" -l reason -d 'Why (the requester sees it)' -r
complete -c jit -n "__fish_jit_using_subcommand deny" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand deny" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand review" -l comment -d 'What you found, for the audit log' -r
complete -c jit -n "__fish_jit_using_subcommand review" -l approve -d 'The emergency and the access were right'
complete -c jit -n "__fish_jit_using_subcommand review" -l flag -d 'Something was wrong (needs --comment saying what)'
complete -c jit -n "__fish_jit_using_subcommand review" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand review" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand status" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand extend" -l for -d 'How much longer: 30m, 1h, 2h30m (added to the grant\'s end)' -r
complete -c jit -n "__fish_jit_using_subcommand extend" -l reason -d 'Why you need it longer (some policies require one)' -r
complete -c jit -n "__fish_jit_using_subcommand extend" -l timeout -d 'Stop waiting after this long (the request stays pending)' -r
complete -c jit -n "__fish_jit_using_subcommand extend" -l no-wait -d 'Print the request and return without waiting'
complete -c jit -n "__fish_jit_using_subcommand extend" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand extend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand revoke" -l reason -d 'Why, for the audit log' -r
complete -c jit -n "__fish_jit_using_subcommand revoke" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand repos" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand repos" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand doctor" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand setup" -l uninstall -d 'Remove exactly what `jit setup` added'
complete -c jit -n "__fish_jit_using_subcommand setup" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand setup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand credential" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand server" -l config -d 'Config file (TOML): server settings, repos and policy rules' -r -F
complete -c jit -n "__fish_jit_using_subcommand server" -l listen -d 'Address to listen on [default: 127.0.0.1:8420]' -r
complete -c jit -n "__fish_jit_using_subcommand server" -l data-dir -d 'Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]' -r -F
complete -c jit -n "__fish_jit_using_subcommand server" -l public-url -d 'The URL clients use to reach this broker [default: http://ADDR]' -r
complete -c jit -n "__fish_jit_using_subcommand server" -l init-admin -d 'Create the first admin NAME on a broker that has none, print its token once, and exit' -r
complete -c jit -n "__fish_jit_using_subcommand server" -l migrate-from-sqlite -d 'Move the one-machine broker\'s state in DIR (its jit.db, audit log included and verified) into the empty PostgreSQL database the config names, and exit' -r -F
complete -c jit -n "__fish_jit_using_subcommand server" -l dev -d 'Try jit on one machine: demo users, repo and policy; writes DIR/dev.json'
complete -c jit -n "__fish_jit_using_subcommand server" -l host-setup -d 'Print what the config\'s repos need created at their hosts (GitHub team mode\'s teams, one per level the rules grant, as `gh api` commands), and exit'
complete -c jit -n "__fish_jit_using_subcommand server" -l allow-remote -d 'With --dev: listen on an address other hosts can reach, although the demo tokens are public and travel over plain HTTP'
complete -c jit -n "__fish_jit_using_subcommand server" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -f -a "user" -d 'Manage users'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -f -a "token" -d 'Manage tokens'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -f -a "grants" -d 'List every user\'s live grants, or those failing to end at their host'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -f -a "notifications" -d 'Where each notification destination\'s delivery stands'
complete -c jit -n "__fish_jit_using_subcommand admin; and not __fish_seen_subcommand_from user token grants notifications replicas" -f -a "replicas" -d 'The brokers on this broker\'s database, and which are live'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from user" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user and print their token (shown once)'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "remove" -d 'Remove a user; their token stops working at once'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from token" -f -a "rotate" -d 'Issue a new token for a user, invalidating the old one (shown once)'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from grants" -l failing -d 'Only grants that ended but whose host has not yet revoked them'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from grants" -l unreviewed -d 'Only break-glass grants not yet reviewed by an approver of their rule'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from grants" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from grants" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from notifications" -l failing -d 'Only destinations whose delivery is failing or has given events up'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from notifications" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from notifications" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from replicas" -l json -d 'Print JSON for scripts instead of text'
complete -c jit -n "__fish_jit_using_subcommand admin; and __fish_seen_subcommand_from replicas" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -l since -d 'Only events at or after T: an RFC 3339 time or a duration ago (`2h`)' -r
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -l json -d 'Print events as JSON lines (one object per line)'
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -f -a "verify" -d 'Check the audit log\'s hash chain, from the broker or an exported file'
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -f -a "grant" -d 'Everything that happened during one grant, checked against the signed log'
complete -c jit -n "__fish_jit_using_subcommand audit; and not __fish_seen_subcommand_from verify grant key" -f -a "key" -d 'Print the public key that verifies the broker\'s signed checkpoints'
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from verify" -l file -d 'Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker\'s log' -r -F
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from verify" -l key -d 'The public key checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the log itself carries is used' -r
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from verify" -l pin -d 'An earlier export: the log must still hold the event its checkpoint signed' -r -F
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from grant" -l key -d 'The public key the checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the broker sends along is used' -r
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from grant" -l json -d 'Print the report and its proof as JSON'
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from grant" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand audit; and __fish_seen_subcommand_from key" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand policy; and not __fish_seen_subcommand_from check explain test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand policy; and not __fish_seen_subcommand_from check explain test" -f -a "check" -d 'Validate a config exactly as the broker does at start-up'
complete -c jit -n "__fish_jit_using_subcommand policy; and not __fish_seen_subcommand_from check explain test" -f -a "explain" -d 'Which rule governs a request, and why the earlier ones do not'
complete -c jit -n "__fish_jit_using_subcommand policy; and not __fish_seen_subcommand_from check explain test" -f -a "test" -d 'Check a table of expected decisions against the policy'
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from check" -l config -d 'The broker\'s config file (TOML)' -r -F
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l config -d 'The broker\'s config file (TOML)' -r -F
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l user -d 'Who asks' -r
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l group -d 'A group they belong to (repeat for several)' -r
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l repo -d 'The repo, by its short name' -r
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l level -d 'Access level' -r -f -a "read\t''
write\t''
admin\t''"
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l for -d 'How long: checked against the rule\'s longest' -r
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l from -d 'An address git would come from: checked against the rule\'s networks' -r
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -l break-glass -d 'As a `jit request --break-glass`: only break-glass rules govern it'
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from test" -l config -d 'The broker\'s config file (TOML)' -r -F
complete -c jit -n "__fish_jit_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
