
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'jit' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'jit'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'jit' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store your broker token in the OS keychain')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Remove your stored token from the keychain')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the broker thinks you are')
            [CompletionResult]::new('request', 'request', [CompletionResultType]::ParameterValue, 'Ask for access to a repo, and wait for the decision')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Wait for the decision on a request')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel your pending request')
            [CompletionResult]::new('requests', 'requests', [CompletionResultType]::ParameterValue, 'List requests you made or can review')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a request (with no ID: pick from the pending ones)')
            [CompletionResult]::new('deny', 'deny', [CompletionResultType]::ParameterValue, 'Deny a request')
            [CompletionResult]::new('review', 'review', [CompletionResultType]::ParameterValue, 'Review a break-glass grant afterwards (with no grant: list those waiting for you)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Your live grants and the time they have left')
            [CompletionResult]::new('extend', 'extend', [CompletionResultType]::ParameterValue, 'Ask to keep a live grant longer, and wait for the decision')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End a grant now (by grant id, or every live grant of yours on a repo)')
            [CompletionResult]::new('repos', 'repos', [CompletionResultType]::ParameterValue, 'List the repos the broker knows')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check this machine: keychain, git, git''s config, broker, token, clock')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Make git use jit for the hosts jit guards (global git config)')
            [CompletionResult]::new('credential', 'credential', [CompletionResultType]::ParameterValue, 'The git credential helper (configured by `jit setup`)')
            [CompletionResult]::new('server', 'server', [CompletionResultType]::ParameterValue, 'Run the broker')
            [CompletionResult]::new('admin', 'admin', [CompletionResultType]::ParameterValue, 'Manage users and tokens (admins)')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Read and verify the audit log (admins)')
            [CompletionResult]::new('policy', 'policy', [CompletionResultType]::ParameterValue, 'Test a broker''s config before shipping it (no broker needed)')
            break
        }
        'jit;login' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'The broker''s URL (default: $JIT_SERVER)')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'A CA certificate (PEM) to trust for this broker beyond the system''s roots; remembered with the login (default: $JIT_CA_FILE)')
            [CompletionResult]::new('--flow', '--flow', [CompletionResultType]::ParameterName, 'How to sign in at the identity provider: `device` (a code to enter, in any browser on any device) or `browser` (a page this machine''s browser opens, which returns to the broker)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Sign in with a token an admin issued (service accounts, automation), read from the terminal or stdin, even where the broker signs people in through an identity provider')
            [CompletionResult]::new('--no-browser', '--no-browser', [CompletionResultType]::ParameterName, 'Do not open a browser at the identity provider''s page; print its address only')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;logout' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;whoami' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;request' {
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Access level')
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'How long the access lasts once approved: 90s, 45m, 2h, 1h30m')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why you need it (some policies require one)')
            [CompletionResult]::new('--ref', '--ref', [CompletionResultType]::ParameterName, 'Only these refs (repeatable; `hotfix/*` is refs/heads/hotfix/*), within what the rule allows')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Stop waiting after this long (the request stays pending)')
            [CompletionResult]::new('--break-glass', '--break-glass', [CompletionResultType]::ParameterName, 'An emergency: granted at once under a break-glass rule (needs --reason), announced loudly and reviewed afterwards')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Print the request and return without waiting')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;wait' {
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Stop waiting after this long (the request stays pending)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;cancel' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;requests' {
            [CompletionResult]::new('--pending', '--pending', [CompletionResultType]::ParameterName, 'Only pending requests')
            [CompletionResult]::new('--mine', '--mine', [CompletionResultType]::ParameterName, 'Only your own requests')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;approve' {
            [CompletionResult]::new('--comment', '--comment', [CompletionResultType]::ParameterName, 'A comment for the requester and the audit log')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;deny' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why (the requester sees it)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;review' {
            [CompletionResult]::new('--comment', '--comment', [CompletionResultType]::ParameterName, 'What you found, for the audit log')
            [CompletionResult]::new('--approve', '--approve', [CompletionResultType]::ParameterName, 'The emergency and the access were right')
            [CompletionResult]::new('--flag', '--flag', [CompletionResultType]::ParameterName, 'Something was wrong (needs --comment saying what)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;status' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;extend' {
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'How much longer: 30m, 1h, 2h30m (added to the grant''s end)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why you need it longer (some policies require one)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Stop waiting after this long (the request stays pending)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Print the request and return without waiting')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;revoke' {
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why, for the audit log')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;repos' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;doctor' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;setup' {
            [CompletionResult]::new('--uninstall', '--uninstall', [CompletionResultType]::ParameterName, 'Remove exactly what `jit setup` added')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;credential' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;server' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML): server settings, repos and policy rules')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on [default: 127.0.0.1:8420]')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]')
            [CompletionResult]::new('--public-url', '--public-url', [CompletionResultType]::ParameterName, 'The URL clients use to reach this broker [default: http://ADDR]')
            [CompletionResult]::new('--init-admin', '--init-admin', [CompletionResultType]::ParameterName, 'Create the first admin NAME on a broker that has none, print its token once, and exit')
            [CompletionResult]::new('--migrate-from-sqlite', '--migrate-from-sqlite', [CompletionResultType]::ParameterName, 'Move the one-machine broker''s state in DIR (its jit.db, audit log included and verified) into the empty PostgreSQL database the config names, and exit')
            [CompletionResult]::new('--dev', '--dev', [CompletionResultType]::ParameterName, 'Try jit on one machine: demo users, repo and policy; writes DIR/dev.json')
            [CompletionResult]::new('--host-setup', '--host-setup', [CompletionResultType]::ParameterName, 'Print what the config''s repos need created at their hosts (GitHub team mode''s teams, one per level the rules grant, as `gh api` commands), and exit')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'With --dev: listen on an address other hosts can reach, although the demo tokens are public and travel over plain HTTP')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage users')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage tokens')
            [CompletionResult]::new('grants', 'grants', [CompletionResultType]::ParameterValue, 'List every user''s live grants, or those failing to end at their host')
            [CompletionResult]::new('notifications', 'notifications', [CompletionResultType]::ParameterValue, 'Where each notification destination''s delivery stands')
            [CompletionResult]::new('replicas', 'replicas', [CompletionResultType]::ParameterValue, 'The brokers on this broker''s database, and which are live')
            break
        }
        'jit;admin;user' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user and print their token (shown once)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a user; their token stops working at once')
            break
        }
        'jit;admin;user;add' {
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'A group the user belongs to (repeatable)')
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'Where the user is mailed (e-mail notifications to a rule''s approvers)')
            [CompletionResult]::new('--admin', '--admin', [CompletionResultType]::ParameterName, 'Make the user an admin')
            [CompletionResult]::new('--service', '--service', [CompletionResultType]::ParameterName, 'A local user who signs in with this token (a service account, a break-glass admin): required where people sign in through an identity provider, so nobody is made a local user by mistake')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;user;list' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;user;remove' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;token' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Issue a new token for a user, invalidating the old one (shown once)')
            break
        }
        'jit;admin;token;rotate' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;grants' {
            [CompletionResult]::new('--failing', '--failing', [CompletionResultType]::ParameterName, 'Only grants that ended but whose host has not yet revoked them')
            [CompletionResult]::new('--unreviewed', '--unreviewed', [CompletionResultType]::ParameterName, 'Only break-glass grants not yet reviewed by an approver of their rule')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;notifications' {
            [CompletionResult]::new('--failing', '--failing', [CompletionResultType]::ParameterName, 'Only destinations whose delivery is failing or has given events up')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;admin;replicas' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON for scripts instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;audit' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only events at or after T: an RFC 3339 time or a duration ago (`2h`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print events as JSON lines (one object per line)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check the audit log''s hash chain, from the broker or an exported file')
            [CompletionResult]::new('grant', 'grant', [CompletionResultType]::ParameterValue, 'Everything that happened during one grant, checked against the signed log')
            [CompletionResult]::new('key', 'key', [CompletionResultType]::ParameterValue, 'Print the public key that verifies the broker''s signed checkpoints')
            break
        }
        'jit;audit;verify' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker''s log')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The public key checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the log itself carries is used')
            [CompletionResult]::new('--pin', '--pin', [CompletionResultType]::ParameterName, 'An earlier export: the log must still hold the event its checkpoint signed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;audit;grant' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The public key the checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the broker sends along is used')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report and its proof as JSON')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;audit;key' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;policy' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Validate a config exactly as the broker does at start-up')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Which rule governs a request, and why the earlier ones do not')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Check a table of expected decisions against the policy')
            break
        }
        'jit;policy;check' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The broker''s config file (TOML)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;policy;explain' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The broker''s config file (TOML)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Who asks')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'A group they belong to (repeat for several)')
            [CompletionResult]::new('--repo', '--repo', [CompletionResultType]::ParameterName, 'The repo, by its short name')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Access level')
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'How long: checked against the rule''s longest')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'An address git would come from: checked against the rule''s networks')
            [CompletionResult]::new('--break-glass', '--break-glass', [CompletionResultType]::ParameterName, 'As a `jit request --break-glass`: only break-glass rules govern it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'jit;policy;test' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The broker''s config file (TOML)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
