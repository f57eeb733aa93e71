#compdef msh
# zsh completion for msh(1), the Mezite user CLI. Installed as _msh in a
# directory of $fpath (share/zsh/vendor-completions). Session ids are not
# completed: listing them would mean a round trip to the server per TAB.

_msh_sessions() {
  local curcontext=$curcontext state line ret=1
  _arguments -C \
    '(- *)'{-h,--help}'[print help and exit]' \
    '1:sessions command:((ls\:"list sessions, newest first"))' \
    '*::arg:->args' && ret=0
  [[ $state == args ]] || return ret
  curcontext=${curcontext%:*}-$words[1]:
  case $words[1] in
    ls)
      _arguments \
        '(- *)'{-h,--help}'[print help and exit]' \
        '--user=[only this user'\''s sessions]:user' \
        '--node=[only sessions on this node]:node' \
        '--last=[only sessions started within this long]:duration (e.g. 24h)' \
        '--limit=[at most this many (0: all)]:count' \
        '--format=[output format]:format:(text json jsonl)' \
        '(-q --quiet)'{-q,--quiet}'[print session ids only]' && ret=0
      ;;
  esac
  return ret
}

_msh() {
  local curcontext=$curcontext state line ret=1
  local -a commands
  commands=(
    'login:store an identity file as yours'
    'status:show the identity in use and when it expires'
    'logout:remove the identity stored by msh login'
    'sessions:recorded sessions'
    'play:play a recorded session or a local recording file'
    'ssh:connect to a node with a short-lived certificate'
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
        status | logout)
          _arguments '(- *)'{-h,--help}'[print help and exit]' && ret=0
          ;;
        sessions)
          _msh_sessions && ret=0
          ;;
        play)
          _arguments \
            '(- *)'{-h,--help}'[print help and exit]' \
            '--speed=[playback speed factor]:speed (e.g. 2 or 0.5)' \
            '--skip-idle=[cap every pause at this long]:duration (e.g. 2s)' \
            '--format=[output format]:format:((pty\:"interactive, real time" text\:"output data only" json\:"one event per line" cast\:"asciicast v2 file"))' \
            '1:session id or recording file:_files' && ret=0
          ;;
        ssh)
          _arguments \
            '(- *)'{-h,--help}'[print help and exit]' \
            '(-p --port)'{-p+,--port=}'[SSH port]:port' \
            '(-T)-t[force a pseudo-terminal]' \
            '(-t)-T[disable the pseudo-terminal]' \
            '*'{-L+,--local-forward=}'[forward a local port through the node]:[bind\:]port\:host\:hostport' \
            '(-N --no-command -t *)'{-N,--no-command}'[run no command, only forward ports]' \
            '1:[login@]node' \
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
