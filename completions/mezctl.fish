# fish completion for mezctl(1), the Mezite operator CLI. Installed in
# share/fish/vendor_completions.d. Node names and session ids are asked of
# mezrecd through mezctl and msh, with the identity on the line, for at
# most 2 seconds. User names are not completed.

# Runs the binary argv[1] with the line's --identity and the other
# arguments, time-limited.
function __mezctl_query
    set -l cmd $argv[1]
    set -e argv[1]
    set -l tokens (commandline -opc)
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case '--identity=*'
                set -a cmd --identity (string replace -- '--identity=' '' $tokens[$i] | string replace -r '^~/' "$HOME/")
            case --identity
                set i (math $i + 1)
                set -a cmd --identity (string replace -r -- '^~/' "$HOME/" $tokens[$i])
        end
        set i (math $i + 1)
    end
    if command -q timeout
        timeout 2 $cmd $argv 2>/dev/null </dev/null
    else
        $cmd $argv 2>/dev/null </dev/null
    end
end

# Of what the server sends, only what mezrecd accepts as a node name or
# session id (letters, digits and "._-", not first "." or "-") is offered,
# so no option or stray text reaches the line. (`string` is in each
# pipeline, not in a helper: in fish 3.6 a `string` that begins a
# function's body is not given the function's stdin.)
function __mezctl_nodes
    __mezctl_query mezctl nodes ls --format=jsonl | string replace -rf '^\{"name":"([^"]*)".*' '$1' | string match -r -- '^[A-Za-z0-9_][A-Za-z0-9._-]*$'
end

# Prints the words typed so far that are neither options nor their values:
# the subcommand path, then positional arguments.
function __mezctl_path
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --identity --type --user --session --node --last --since --until \
                --limit --format --addr --login-hint --host-key --logins \
                --role --ttl --identity-out --auth --data-dir
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

# True when the path is exactly the arguments.
function __mezctl_at
    set -l path (__mezctl_path | string join ' ')
    test "$path" = "$argv"
end

# True when the path starts with the arguments.
function __mezctl_in
    set -l path (__mezctl_path | string join ' ')
    string match -q -- "$argv*" "$path"
end

complete -c mezctl -f

complete -c mezctl -n '__mezctl_at' -l identity -r -F -d 'identity file to use'
complete -c mezctl -s h -l help -d 'print help and exit'
complete -c mezctl -n '__mezctl_at' -l version -d 'print the version and exit'
complete -c mezctl -n '__mezctl_at' -a config -d 'cluster settings'
complete -c mezctl -n '__mezctl_at' -a audit -d 'the audit log'
complete -c mezctl -n '__mezctl_at' -a nodes -d 'nodes of the cluster'
complete -c mezctl -n '__mezctl_at' -a users -d 'users of the cluster'
complete -c mezctl -n '__mezctl_at' -a ca -d 'certificate authorities'
complete -c mezctl -n '__mezctl_at' -a web -d 'print a single-use sign-in link for the web UI'

# config get|set KEY [VALUE]
complete -c mezctl -n '__mezctl_at config' -a get -d 'print a setting'
complete -c mezctl -n '__mezctl_at config' -a set -d 'change a setting (applies to new sessions)'
complete -c mezctl -n '__mezctl_at config get; or __mezctl_at config set' -a session_recording -d 'how sessions are recorded'
complete -c mezctl -n '__mezctl_at config set session_recording' -a node-sync -d 'stream live; a broken stream ends the session'
complete -c mezctl -n '__mezctl_at config set session_recording' -a node -d 'spool on the node, upload after the session'
complete -c mezctl -n '__mezctl_at config set session_recording' -a off -d 'record nothing'

# audit ls
complete -c mezctl -n '__mezctl_at audit' -a ls -d 'list audit events, newest first'
complete -c mezctl -n '__mezctl_in audit ls' -l type -x -d 'only this type, e.g. session.end'
complete -c mezctl -n '__mezctl_in audit ls' -l user -x -d 'only events of this user'
complete -c mezctl -n '__mezctl_in audit ls' -l session -x -a '(__mezctl_query msh sessions ls -q --limit=200 | string match -r -- "^[A-Za-z0-9_][A-Za-z0-9._-]*\$")' -d 'only events of this session'
complete -c mezctl -n '__mezctl_in audit ls' -l node -x -a '(__mezctl_nodes)' -d 'only events on this node'
complete -c mezctl -n '__mezctl_in audit ls' -l last -x -d 'only events within, e.g. 24h'
complete -c mezctl -n '__mezctl_in audit ls' -l since -x -d 'from this UTC time (ISO-8601) or a duration ago'
complete -c mezctl -n '__mezctl_in audit ls' -l until -x -d 'before this UTC time (ISO-8601) or a duration ago'
complete -c mezctl -n '__mezctl_in audit ls' -l limit -x -d 'at most this many (default 50; 0: all)'
complete -c mezctl -n '__mezctl_in audit ls' -l format -x -a 'text json jsonl' -d 'output format'
complete -c mezctl -n '__mezctl_in audit ls' -l header -d 'print the header line also when piped'

# nodes add|ls|rm
complete -c mezctl -n '__mezctl_at nodes' -a add -d 'register a node'
complete -c mezctl -n '__mezctl_at nodes' -a ls -d 'list nodes'
complete -c mezctl -n '__mezctl_at nodes' -a rm -d 'remove a node'
complete -c mezctl -n '__mezctl_at nodes rm' -a '(__mezctl_nodes)' -d 'node'
complete -c mezctl -n '__mezctl_in nodes add' -l addr -x -d 'HOST:PORT where it serves SSH'
complete -c mezctl -n '__mezctl_in nodes add' -l openssh -d 'agentless OpenSSH node, recorded by the proxy'
complete -c mezctl -n '__mezctl_in nodes add' -l login-hint -x -d 'usual login, for display'
complete -c mezctl -n '__mezctl_in nodes add' -l host-key -x -d 'pinned host public key line'
complete -c mezctl -n '__mezctl_in nodes add' -l auth -x -d 'mezrecd HOST:PORT as the node reaches it'
complete -c mezctl -n '__mezctl_in nodes add' -l data-dir -r -d 'data dir of the node, for mezd'
complete -c mezctl -n '__mezctl_in nodes ls' -l format -x -a 'text json jsonl' -d 'output format'

# users add|reissue|ls|rm
complete -c mezctl -n '__mezctl_at users' -a add -d 'create a user and their identity file'
complete -c mezctl -n '__mezctl_at users' -a reissue -d 'a new identity for an existing user'
complete -c mezctl -n '__mezctl_at users' -a ls -d 'list users, admins and proxies'
complete -c mezctl -n '__mezctl_at users' -a rm -d 'remove a user or proxy, revoking its tokens'
complete -c mezctl -n '__mezctl_in users add' -l logins -x -d 'OS logins they may use, a,b'
complete -c mezctl -n '__mezctl_in users add' -l role -x -a 'user\t"their own sessions" admin\t"all sessions and settings" proxy\t"a proxy-only mezrecd"' -d 'role'
complete -c mezctl -n '__mezctl_in users add' -l ttl -x -d 'how long the identity is valid, e.g. 12h'
complete -c mezctl -n '__mezctl_in users add' -l identity-out -r -F -d 'write the identity here'
complete -c mezctl -n '__mezctl_in users reissue' -l ttl -x -d 'how long the identity is valid, e.g. 12h'
complete -c mezctl -n '__mezctl_in users reissue' -l identity-out -r -F -d 'write the identity here'
complete -c mezctl -n '__mezctl_in users ls' -l format -x -a 'text json jsonl' -d 'output format'

# ca export
complete -c mezctl -n '__mezctl_at ca' -a export -d 'print a CA public key'
complete -c mezctl -n '__mezctl_in ca export' -l type -x -a 'user\t"for sshd TrustedUserCAKeys" host\t"for known_hosts @cert-authority" tls\t"the TLS CA (PEM)"' -d 'which CA'
