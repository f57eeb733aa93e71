# fish completion for msh(1), the Mezite user CLI. Installed in
# share/fish/vendor_completions.d. Session ids (play) and node names (ssh)
# are asked of mezrecd through msh itself, with the identity on the line,
# for at most 2 seconds.

# Runs msh with the line's --identity and the given arguments, time-limited.
function __msh_query
    set -l tokens (commandline -opc)
    set -l cmd $tokens[1]
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

# Of what the server sends, only what mezrecd accepts as a session id or
# node name (letters, digits and "._-", not first "." or "-") is offered,
# so no option or stray text reaches the line. (`string` is in each
# pipeline, not in a helper: in fish 3.6 a `string` that begins a
# function's body is not given the function's stdin.)

# msh ssh: the nodes of the user's recent sessions (only admins list all),
# after any "login@" typed.
# (Quoted: with no "login@" the empty list would make $login$n empty too.)
function __msh_nodes
    set -l login (commandline -ct | string match -r -- '^[^@]*@')
    for n in (__msh_query sessions ls --limit=200 --format=jsonl | string replace -rf '.*"node":"([^"]*)".*' '$1' | string match -r -- '^[A-Za-z0-9_][A-Za-z0-9._-]*$' | sort -u)
        echo "$login$n"
    end
end

# Prints the words typed so far that are neither options nor their values:
# the subcommand path, then positional arguments.
function __msh_path
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --identity --user --node --kind --status --last --since --until --limit --format --speed --skip-idle --port -p --local-forward -L
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

# True when the path is exactly the arguments.
function __msh_at
    set -l path (__msh_path | string join ' ')
    test "$path" = "$argv"
end

# True when the path starts with the arguments.
function __msh_in
    set -l path (__msh_path | string join ' ')
    string match -q -- "$argv*" "$path"
end

complete -c msh -f

complete -c msh -n '__msh_at' -l identity -r -F -d 'identity file to use'
complete -c msh -s h -l help -d 'print help and exit'
complete -c msh -n '__msh_at' -l version -d 'print the version and exit'
complete -c msh -n '__msh_at' -a login -d 'store an identity file as yours'
complete -c msh -n '__msh_at' -a status -d 'show the identity in use and when it expires'
complete -c msh -n '__msh_at' -a logout -d 'remove the identity stored by msh login'
complete -c msh -n '__msh_at' -a web -d 'print a single-use sign-in link for the web UI'
complete -c msh -n '__msh_at' -a sessions -d 'recorded sessions'
complete -c msh -n '__msh_at' -a play -d 'play a recorded session or a local recording file'
complete -c msh -n '__msh_at' -a ssh -d 'connect to a node with a short-lived certificate'

complete -c msh -n '__msh_at login' -l identity -r -F -d 'identity file to store'

complete -c msh -n '__msh_at sessions' -a ls -d 'list sessions, newest first'
complete -c msh -n '__msh_in sessions ls' -l user -x -d "only this user's sessions"
complete -c msh -n '__msh_in sessions ls' -l node -x -d 'only sessions on this node'
complete -c msh -n '__msh_in sessions ls' -l kind -x -a 'shell exec tcpip' -d 'only sessions of this kind'
complete -c msh -n '__msh_in sessions ls' -l status -x -a 'recording complete incomplete' -d 'only sessions in this state'
complete -c msh -n '__msh_in sessions ls' -l last -x -d 'only sessions started within, e.g. 24h'
complete -c msh -n '__msh_in sessions ls' -l since -x -d 'started at or after: ISO-8601 UTC time or duration ago'
complete -c msh -n '__msh_in sessions ls' -l until -x -d 'started before: ISO-8601 UTC time or duration ago'
complete -c msh -n '__msh_in sessions ls' -l limit -x -d 'at most this many (default 50; 0: all)'
complete -c msh -n '__msh_in sessions ls' -l format -x -a 'text json jsonl' -d 'output format'
complete -c msh -n '__msh_in sessions ls' -s q -l quiet -d 'print session ids only'
complete -c msh -n '__msh_in sessions ls' -l header -d 'print the header line also when piped'
complete -c msh -n '__msh_at sessions' -a show -d 'a session and its commands, files and connections'
complete -c msh -n '__msh_in sessions show' -l format -x -a 'text json' -d 'output format'
complete -c msh -n '__msh_at sessions show' -f -a '(__msh_query sessions ls -q --limit=200 | string match -r -- "^[A-Za-z0-9_][A-Za-z0-9._-]*\$")' -d 'session id'

complete -c msh -n '__msh_in play' -s s -l speed -x -d 'playback speed factor, e.g. 2, 0.5 or 2x (default 1)'
complete -c msh -n '__msh_in play' -s i -l skip-idle -x -d 'cap every pause at this long, e.g. 2 or 500ms'
complete -c msh -n '__msh_in play' -l idle-time-limit -x -d 'same as --skip-idle'
complete -c msh -n '__msh_in play' -l start-at -x -d 'start at this time or percentage, e.g. 1m30s or 50%'
complete -c msh -n '__msh_in play' -l format -x -a 'pty\t"interactive, real time" text\t"output data only" plain\t"text without escape codes" json\t"one event per line" cast\t"asciicast v2 file"' -d 'output format'
complete -c msh -n '__msh_in play' -l strip -d 'with --format=text, drop escape codes'
complete -c msh -n '__msh_at play' -F -d 'session id or recording file'
complete -c msh -n '__msh_at play' -a '(__msh_query sessions ls -q --limit=200 | string match -r -- "^[A-Za-z0-9_][A-Za-z0-9._-]*\$")' -d 'session id'

complete -c msh -n '__msh_in ssh' -s p -l port -x -d 'SSH port (default: the node'"'"'s registered port)'
complete -c msh -n '__msh_in ssh' -s t -d 'force a pseudo-terminal'
complete -c msh -n '__msh_in ssh' -s T -d 'disable the pseudo-terminal'
complete -c msh -n '__msh_in ssh' -s L -l local-forward -x -d 'forward [BIND:]PORT:HOST:HOSTPORT through the node'
complete -c msh -n '__msh_in ssh' -s N -l no-command -d 'run no command, only forward ports'
complete -c msh -n '__msh_at ssh' -a '(__msh_nodes)' -d 'node'
