#compdef msh
# zsh completion for msh(1), the Mezite user CLI. Installed as _msh in a
# directory of $fpath (share/zsh/vendor-completions). Session ids (play)
# and node names (ssh) are asked of mezrecd through msh itself, with the
# identity on the line, for at most 2 seconds.

# Sets `_msh_cmd` (declared local by _msh) to the command as typed and the
# --identity given before the cursor, unquoted (`~/` expanded), as the
# queries run them. Called before _arguments narrows $words to a
# subcommand's words, after which $words[1] is no longer msh.
_msh_take_line() {
  local i w id
  _msh_cmd=(${(Q)words[1]:-msh})
  for ((i = 2; i < CURRENT; i++)); do
    w=${(Q)words[i]}
    case $w in
      --identity=*) id=${w#*=} ;;
      --identity) id=${(Q)words[i+1]} ;;
      *) continue ;;
    esac
    _msh_cmd+=(--identity ${id/#\~\//$HOME/})
  done
}

# Runs msh (with the line's --identity) with the given arguments, for at
# most 2 seconds, stderr dropped: on any failure it prints nothing.
_msh_query() {
  local -a cmd
  cmd=(${_msh_cmd:-msh})
  if (( $+commands[timeout] )); then
    timeout 2 $cmd "$@" 2>/dev/null </dev/null
  else
    $cmd "$@" 2>/dev/null </dev/null
  fi
}

# Candidates from the server are kept only when they are what mezrecd
# accepts as a session id or node name (letters, digits and "._-", not
# first "." or "-"), so no option or stray text is offered for the line.
# compadd, not _describe: a word with a colon would be cut.
_msh_session_ids() {
  local -a ids expl
  ids=(${(f)"$(_msh_query sessions ls -q --limit=200)"})
  ids=(${ids:#(|[-.]*|*[^A-Za-z0-9._-]*)})
  _wanted session-ids expl 'session id' compadd -a ids
}

# msh ssh: the nodes of the user's recent sessions (only admins list all).
_msh_nodes() {
  local -a nodes expl
  nodes=(${(fu)"$(_msh_query sessions ls --limit=200 --format=jsonl |
    sed -n 's/.*"node":"\([^"]*\)".*/\1/p')"})
  nodes=(${nodes:#(|[-.]*|*[^A-Za-z0-9._-]*)})
  compset -P '*@'  # After "login@", complete the node alone.
  _wanted nodes expl node compadd -a nodes
}

_msh_sessions() {
  local curcontext=$curcontext state line ret=1
  _arguments -C \
    '(- *)'{-h,--help}'[print help and exit]' \
    '1:sessions command:((ls\:"list sessions, newest first" show\:"a session and its commands, files and connections"))' \
    '*::arg:->args' && ret=0
  [[ $state == args ]] || return ret
  curcontext=${curcontext%:*}-$words[1]:
  case $words[1] in
    ls)
      _arguments \
        '(- *)'{-h,--help}'[print help and exit]' \
        '--user=[only this user'\''s sessions]:user' \
        '--node=[only sessions on this node]:node' \
        '--kind=[only sessions of this kind]:kind:(shell exec tcpip)' \
        '--status=[only sessions in this state]:status:(recording complete incomplete)' \
        '--last=[only sessions started within this long]:duration (e.g. 24h)' \
        '--since=[started at or after]:ISO-8601 UTC time or duration ago' \
        '--until=[started before]:ISO-8601 UTC time or duration ago' \
        '--limit=[at most this many (default 50; 0: all)]:count' \
        '--format=[output format]:format:(text json jsonl)' \
        '(-q --quiet)'{-q,--quiet}'[print session ids only]' \
        '--header[print the header line also when piped]' && ret=0
      ;;
    show)
      _arguments \
        '(- *)'{-h,--help}'[print help and exit]' \
        '--format=[output format]:format:(text json)' \
        '1:session id:_msh_session_ids' && ret=0
      ;;
  esac
  return ret
}

_msh() {
  local curcontext=$curcontext state line ret=1
  local -a commands _msh_cmd
  _msh_take_line
  commands=(
    'login:store an identity file as yours'
    'status:show the identity in use and when it expires'
    'logout:remove the identity stored by msh login'
    'sessions:recorded sessions'
    'play:play a recorded session or a local recording file'
    'ssh:connect to a node with a short-lived certificate'
    'web:print a single-use sign-in link for the web UI'
  )
  _arguments -C \
    '(- *)'{-h,--help}'[print help and exit]' \
    '--identity=[identity file to use]:identity file:_files' \
    '(- *)--version[print the version and exit]' \
    '1:command:->command' \
    '*::arg:->args' && ret=0
  case $state in
    command)
      _describe -t commands 'msh command' commands && ret=0
      ;;
    args)
      curcontext=${curcontext%:*:*}:msh-$words[1]:
      case $words[1] in
        login)
          _arguments \
            '(- *)'{-h,--help}'[print help and exit]' \
            '--identity=[identity file to store]:identity file:_files' && ret=0
          ;;
        status | logout | web)
          _arguments '(- *)'{-h,--help}'[print help and exit]' && ret=0
          ;;
        sessions)
          _msh_sessions && ret=0
          ;;
        play)
          _arguments \
            '(- *)'{-h,--help}'[print help and exit]' \
            '(-s --speed)'{-s+,--speed=}'[playback speed factor]:speed (e.g. 2, 0.5 or 2x)' \
            '(-i --skip-idle --idle-time-limit)'{-i+,--skip-idle=,--idle-time-limit=}'[cap every pause at this long]:seconds or duration (e.g. 2 or 500ms)' \
            '--start-at=[start at this time or percentage]:time or percentage (e.g. 1m30s or 50%)' \
            '--format=[output format]:format:((pty\:"interactive, real time" text\:"output data only" plain\:"text without escape codes" json\:"one event per line" cast\:"asciicast v2 file"))' \
            '--strip[with --format=text, drop escape codes]' \
            '1:session id, recording file or -:{_msh_session_ids; _files}' && ret=0
          ;;
        ssh)
          _arguments \
            '(- *)'{-h,--help}'[print help and exit]' \
            '(-p --port)'{-p+,--port=}'[SSH port]:port' \
            '(-T)-t[force a pseudo-terminal]' \
            '(-t)-T[disable the pseudo-terminal]' \
            '*'{-L+,--local-forward=}'[forward a local port through the node]:[bind\:]port\:host\:hostport' \
            '(-N --no-command -t *)'{-N,--no-command}'[run no command, only forward ports]' \
            '1:[login@]node:_msh_nodes' \
            '*:command' && ret=0
          ;;
      esac
      ;;
  esac
  return ret
}

# Autoloaded from $fpath the file body runs per completion; sourced, it
# registers itself.
if [[ $funcstack[1] == _msh ]]; then
  _msh "$@"
else
  compdef _msh msh
fi
