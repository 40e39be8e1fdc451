
use builtin;
use str;

set edit:completion:arg-completer[jit] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'jit'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'jit'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand login 'Store your broker token in the OS keychain'
            cand logout 'Remove your stored token from the keychain'
            cand whoami 'Show who the broker thinks you are'
            cand request 'Ask for access to a repo, and wait for the decision'
            cand wait 'Wait for the decision on a request'
            cand cancel 'Cancel your pending request'
            cand requests 'List requests you made or can review'
            cand approve 'Approve a request (with no ID: pick from the pending ones)'
            cand deny 'Deny a request'
            cand review 'Review a break-glass grant afterwards (with no grant: list those waiting for you)'
            cand status 'Your live grants and the time they have left'
            cand extend 'Ask to keep a live grant longer, and wait for the decision'
            cand revoke 'End a grant now (by grant id, or every live grant of yours on a repo)'
            cand repos 'List the repos the broker knows'
            cand doctor 'Check this machine: keychain, git, git''s config, broker, token, clock'
            cand setup 'Make git use jit for the hosts jit guards (global git config)'
            cand credential 'The git credential helper (configured by `jit setup`)'
            cand server 'Run the broker'
            cand admin 'Manage users and tokens (admins)'
            cand audit 'Read and verify the audit log (admins)'
            cand policy 'Test a broker''s config before shipping it (no broker needed)'
        }
        &'jit;login'= {
            cand --server 'The broker''s URL (default: $JIT_SERVER)'
            cand --ca-file 'A CA certificate (PEM) to trust for this broker beyond the system''s roots; remembered with the login (default: $JIT_CA_FILE)'
            cand --flow 'How to sign in at the identity provider: `device` (a code to enter, in any browser on any device) or `browser` (a page this machine''s browser opens, which returns to the broker)'
            cand --token 'Sign in with a token an admin issued (service accounts, automation), read from the terminal or stdin, even where the broker signs people in through an identity provider'
            cand --no-browser 'Do not open a browser at the identity provider''s page; print its address only'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;logout'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;whoami'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;request'= {
            cand --level 'Access level'
            cand --for 'How long the access lasts once approved: 90s, 45m, 2h, 1h30m'
            cand --reason 'Why you need it (some policies require one)'
            cand --ref 'Only these refs (repeatable; `hotfix/*` is refs/heads/hotfix/*), within what the rule allows'
            cand --timeout 'Stop waiting after this long (the request stays pending)'
            cand --break-glass 'An emergency: granted at once under a break-glass rule (needs --reason), announced loudly and reviewed afterwards'
            cand --no-wait 'Print the request and return without waiting'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;wait'= {
            cand --timeout 'Stop waiting after this long (the request stays pending)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;cancel'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;requests'= {
            cand --pending 'Only pending requests'
            cand --mine 'Only your own requests'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;approve'= {
            cand --comment 'A comment for the requester and the audit log'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;deny'= {
            cand --reason 'Why (the requester sees it)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;review'= {
            cand --comment 'What you found, for the audit log'
            cand --approve 'The emergency and the access were right'
            cand --flag 'Something was wrong (needs --comment saying what)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;status'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;extend'= {
            cand --for 'How much longer: 30m, 1h, 2h30m (added to the grant''s end)'
            cand --reason 'Why you need it longer (some policies require one)'
            cand --timeout 'Stop waiting after this long (the request stays pending)'
            cand --no-wait 'Print the request and return without waiting'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;revoke'= {
            cand --reason 'Why, for the audit log'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;repos'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;doctor'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;setup'= {
            cand --uninstall 'Remove exactly what `jit setup` added'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;credential'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;server'= {
            cand --config 'Config file (TOML): server settings, repos and policy rules'
            cand --listen 'Address to listen on [default: 127.0.0.1:8420]'
            cand --data-dir 'Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]'
            cand --public-url 'The URL clients use to reach this broker [default: http://ADDR]'
            cand --init-admin 'Create the first admin NAME on a broker that has none, print its token once, and exit'
            cand --migrate-from-sqlite 'Move the one-machine broker''s state in DIR (its jit.db, audit log included and verified) into the empty PostgreSQL database the config names, and exit'
            cand --dev 'Try jit on one machine: demo users, repo and policy; writes DIR/dev.json'
            cand --host-setup 'Print what the config''s repos need created at their hosts (GitHub team mode''s teams, one per level the rules grant, as `gh api` commands), and exit'
            cand --allow-remote 'With --dev: listen on an address other hosts can reach, although the demo tokens are public and travel over plain HTTP'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand user 'Manage users'
            cand token 'Manage tokens'
            cand grants 'List every user''s live grants, or those failing to end at their host'
            cand notifications 'Where each notification destination''s delivery stands'
            cand replicas 'The brokers on this broker''s database, and which are live'
        }
        &'jit;admin;user'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand add 'Add a user and print their token (shown once)'
            cand list 'List users'
            cand remove 'Remove a user; their token stops working at once'
        }
        &'jit;admin;user;add'= {
            cand --group 'A group the user belongs to (repeatable)'
            cand --email 'Where the user is mailed (e-mail notifications to a rule''s approvers)'
            cand --admin 'Make the user an admin'
            cand --service 'A local user who signs in with this token (a service account, a break-glass admin): required where people sign in through an identity provider, so nobody is made a local user by mistake'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;user;list'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;user;remove'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;token'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand rotate 'Issue a new token for a user, invalidating the old one (shown once)'
        }
        &'jit;admin;token;rotate'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;grants'= {
            cand --failing 'Only grants that ended but whose host has not yet revoked them'
            cand --unreviewed 'Only break-glass grants not yet reviewed by an approver of their rule'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;notifications'= {
            cand --failing 'Only destinations whose delivery is failing or has given events up'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;admin;replicas'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;audit'= {
            cand --since 'Only events at or after T: an RFC 3339 time or a duration ago (`2h`)'
            cand --json 'Print events as JSON lines (one object per line)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand verify 'Check the audit log''s hash chain, from the broker or an exported file'
            cand grant 'Everything that happened during one grant, checked against the signed log'
            cand key 'Print the public key that verifies the broker''s signed checkpoints'
        }
        &'jit;audit;verify'= {
            cand --file 'Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker''s log'
            cand --key 'The public key checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the log itself carries is used'
            cand --pin 'An earlier export: the log must still hold the event its checkpoint signed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;audit;grant'= {
            cand --key 'The public key the checkpoints must verify with (`jit audit key`, kept elsewhere); without it the key the broker sends along is used'
            cand --json 'Print the report and its proof as JSON'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;audit;key'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;policy'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand check 'Validate a config exactly as the broker does at start-up'
            cand explain 'Which rule governs a request, and why the earlier ones do not'
            cand test 'Check a table of expected decisions against the policy'
        }
        &'jit;policy;check'= {
            cand --config 'The broker''s config file (TOML)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;policy;explain'= {
            cand --config 'The broker''s config file (TOML)'
            cand --user 'Who asks'
            cand --group 'A group they belong to (repeat for several)'
            cand --repo 'The repo, by its short name'
            cand --level 'Access level'
            cand --for 'How long: checked against the rule''s longest'
            cand --from 'An address git would come from: checked against the rule''s networks'
            cand --break-glass 'As a `jit request --break-glass`: only break-glass rules govern it'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'jit;policy;test'= {
            cand --config 'The broker''s config file (TOML)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
    ]
    $completions[$command]
}
