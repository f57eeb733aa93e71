# fish completion for msh(1), the Mezite user CLI. Installed in
# share/fish/vendor_completions.d. Session ids are not completed: listing
# them would mean a round trip to the server on every TAB.

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
            case --identity --user --node --last --limit --format --speed --skip-idle --port -p --local-forward -L
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
complete -c msh -n '__msh_at' -a sessions -d 'recorded sessions'
complete -c msh -n '__msh_at' -a play -d 'play a recorded session or a local recording file'
complete -c msh -n '__msh_at' -a ssh -d 'connect to a node with a short-lived certificate'

complete -c msh -n '__msh_at login' -l identity -r -F -d 'identity file to store'

complete -c msh -n '__msh_at sessions' -a ls -d 'list sessions, newest first'
complete -c msh -n '__msh_in sessions ls' -l user -x -d "only this user's sessions"
complete -c msh -n '__msh_in sessions ls' -l node -x -d 'only sessions on this node'
complete -c msh -n '__msh_in sessions ls' -l last -x -d 'only sessions started within, e.g. 24h'
complete -c msh -n '__msh_in sessions ls' -l limit -x -d 'at most this many (0: all)'
complete -c msh -n '__msh_in sessions ls' -l format -x -a 'text json jsonl' -d 'output format'
complete -c msh -n '__msh_in sessions ls' -s q -l quiet -d 'print session ids only'

complete -c msh -n '__msh_in play' -l speed -x -d 'playback speed factor (default 1)'
complete -c msh -n '__msh_in play' -l skip-idle -x -d 'cap every pause at this long, e.g. 2s'
complete -c msh -n '__msh_in play' -l format -x -a 'pty\t"interactive, real time" text\t"output data only" json\t"one event per line" cast\t"asciicast v2 file"' -d 'output format'
complete -c msh -n '__msh_at play' -F -d 'session id or recording file'

complete -c msh -n '__msh_in ssh' -s p -l port -x -d 'SSH port (default: the node'"'"'s registered port)'
complete -c msh -n '__msh_in ssh' -s t -d 'force a pseudo-terminal'
complete -c msh -n '__msh_in ssh' -s T -d 'disable the pseudo-terminal'
complete -c msh -n '__msh_in ssh' -s L -l local-forward -x -d 'forward [BIND:]PORT:HOST:HOSTPORT through the node'
complete -c msh -n '__msh_in ssh' -s N -l no-command -d 'run no command, only forward ports'
