
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
            cand -h 'Print help'
            cand --help 'Print help'
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
            cand status 'Your live grants and the time they have left'
            cand revoke 'End a grant now (by grant id, or every live grant of yours on a repo)'
            cand repos 'List the repos the broker knows'
            cand setup 'Make git use jit for the hosts jit guards (global git config)'
            cand credential 'The git credential helper (configured by `jit setup`)'
            cand server 'Run the broker'
            cand admin 'Manage users and tokens (admins)'
            cand audit 'Read and verify the audit log (admins)'
            cand util 'Generate shell completions and man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;login'= {
            cand --server 'The broker''s URL (default: $JIT_SERVER)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;logout'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;whoami'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;request'= {
            cand --level 'Access level'
            cand --for 'How long the access lasts once approved: 90s, 45m, 2h, 1h30m'
            cand --reason 'Why you need it (some policies require one)'
            cand --timeout 'Stop waiting after this long (the request stays pending)'
            cand --no-wait 'Print the request and return without waiting'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;wait'= {
            cand --timeout 'Stop waiting after this long (the request stays pending)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;cancel'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;requests'= {
            cand --pending 'Only pending requests'
            cand --mine 'Only your own requests'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;approve'= {
            cand --comment 'A comment for the requester and the audit log'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;deny'= {
            cand --reason 'Why (the requester sees it)'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;status'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;revoke'= {
            cand --reason 'Why, for the audit log'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;repos'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;setup'= {
            cand --uninstall 'Remove exactly what `jit setup` added'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;credential'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;server'= {
            cand --config 'Config file (TOML): server settings, repos and policy rules'
            cand --listen 'Address to listen on [default: 127.0.0.1:8420]'
            cand --data-dir 'Where the database lives [default: the user data directory, e.g. ~/.local/share/jit]'
            cand --public-url 'The URL clients use to reach this broker [default: http://ADDR]'
            cand --init-admin 'Create the first admin NAME on a broker that has none, print its token once, and exit'
            cand --dev 'Try jit on one machine: demo users, repo and policy; writes DIR/dev.json'
            cand --allow-remote 'With --dev: listen on an address other hosts can reach, although the demo tokens are public and travel over plain HTTP'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;admin'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand user 'Manage users'
            cand token 'Manage tokens'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;user'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand add 'Add a user and print their token (shown once)'
            cand list 'List users'
            cand remove 'Remove a user; their token stops working at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;user;add'= {
            cand --group 'A group the user belongs to (repeatable)'
            cand --admin 'Make the user an admin'
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;admin;user;list'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;admin;user;remove'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;admin;user;help'= {
            cand add 'Add a user and print their token (shown once)'
            cand list 'List users'
            cand remove 'Remove a user; their token stops working at once'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;user;help;add'= {
        }
        &'jit;admin;user;help;list'= {
        }
        &'jit;admin;user;help;remove'= {
        }
        &'jit;admin;user;help;help'= {
        }
        &'jit;admin;token'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand rotate 'Issue a new token for a user, invalidating the old one (shown once)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;token;rotate'= {
            cand --json 'Print JSON for scripts instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;admin;token;help'= {
            cand rotate 'Issue a new token for a user, invalidating the old one (shown once)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;token;help;rotate'= {
        }
        &'jit;admin;token;help;help'= {
        }
        &'jit;admin;help'= {
            cand user 'Manage users'
            cand token 'Manage tokens'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;admin;help;user'= {
            cand add 'Add a user and print their token (shown once)'
            cand list 'List users'
            cand remove 'Remove a user; their token stops working at once'
        }
        &'jit;admin;help;user;add'= {
        }
        &'jit;admin;help;user;list'= {
        }
        &'jit;admin;help;user;remove'= {
        }
        &'jit;admin;help;token'= {
            cand rotate 'Issue a new token for a user, invalidating the old one (shown once)'
        }
        &'jit;admin;help;token;rotate'= {
        }
        &'jit;admin;help;help'= {
        }
        &'jit;audit'= {
            cand --since 'Only events at or after T: an RFC 3339 time or a duration ago (`2h`)'
            cand --json 'Print events as JSON lines (one object per line)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand verify 'Check the audit log''s hash chain, from the broker or an exported file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;audit;verify'= {
            cand --file 'Verify a JSON-lines export (`jit audit --json > FILE`) instead of the broker''s log'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;audit;help'= {
            cand verify 'Check the audit log''s hash chain, from the broker or an exported file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;audit;help;verify'= {
        }
        &'jit;audit;help;help'= {
        }
        &'jit;util'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand completions 'Write completions for every shell into DIR'
            cand man 'Write one man page per command into DIR'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;util;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;util;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'jit;util;help'= {
            cand completions 'Write completions for every shell into DIR'
            cand man 'Write one man page per command into DIR'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;util;help;completions'= {
        }
        &'jit;util;help;man'= {
        }
        &'jit;util;help;help'= {
        }
        &'jit;help'= {
            cand login 'Store your broker token in the OS keychain'
            cand logout 'Remove your stored token from the keychain'
            cand whoami 'Show who the broker thinks you are'
            cand request 'Ask for access to a repo, and wait for the decision'
            cand wait 'Wait for the decision on a request'
            cand cancel 'Cancel your pending request'
            cand requests 'List requests you made or can review'
            cand approve 'Approve a request (with no ID: pick from the pending ones)'
            cand deny 'Deny a request'
            cand status 'Your live grants and the time they have left'
            cand revoke 'End a grant now (by grant id, or every live grant of yours on a repo)'
            cand repos 'List the repos the broker knows'
            cand setup 'Make git use jit for the hosts jit guards (global git config)'
            cand credential 'The git credential helper (configured by `jit setup`)'
            cand server 'Run the broker'
            cand admin 'Manage users and tokens (admins)'
            cand audit 'Read and verify the audit log (admins)'
            cand util 'Generate shell completions and man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'jit;help;login'= {
        }
        &'jit;help;logout'= {
        }
        &'jit;help;whoami'= {
        }
        &'jit;help;request'= {
        }
        &'jit;help;wait'= {
        }
        &'jit;help;cancel'= {
        }
        &'jit;help;requests'= {
        }
        &'jit;help;approve'= {
        }
        &'jit;help;deny'= {
        }
        &'jit;help;status'= {
        }
        &'jit;help;revoke'= {
        }
        &'jit;help;repos'= {
        }
        &'jit;help;setup'= {
        }
        &'jit;help;credential'= {
        }
        &'jit;help;server'= {
        }
        &'jit;help;admin'= {
            cand user 'Manage users'
            cand token 'Manage tokens'
        }
        &'jit;help;admin;user'= {
            cand add 'Add a user and print their token (shown once)'
            cand list 'List users'
            cand remove 'Remove a user; their token stops working at once'
        }
        &'jit;help;admin;user;add'= {
        }
        &'jit;help;admin;user;list'= {
        }
        &'jit;help;admin;user;remove'= {
        }
        &'jit;help;admin;token'= {
            cand rotate 'Issue a new token for a user, invalidating the old one (shown once)'
        }
        &'jit;help;admin;token;rotate'= {
        }
        &'jit;help;audit'= {
            cand verify 'Check the audit log''s hash chain, from the broker or an exported file'
        }
        &'jit;help;audit;verify'= {
        }
        &'jit;help;util'= {
            cand completions 'Write completions for every shell into DIR'
            cand man 'Write one man page per command into DIR'
        }
        &'jit;help;util;completions'= {
        }
        &'jit;help;util;man'= {
        }
        &'jit;help;help'= {
        }
    ]
    $completions[$command]
}
