#compdef mezctl
# zsh completion for mezctl(1), the Mezite operator CLI. Installed as
# _mezctl in a directory of $fpath (share/zsh/vendor-completions). Node
# names and session ids are asked of mezrecd through mezctl and msh, with
# the identity on the line, for at most 2 seconds. User names are not
# completed.

# Sets `_mezctl_cmd` and `_mezctl_id` (declared local by _mezctl) to the
# command as typed and the --identity given before the cursor (unquoted,
# `~/` expanded) as options. Called before _arguments narrows $words to a
# subcommand's words.
_mezctl_take_line() {
  local i w id
  _mezctl_cmd=${(Q)words[1]:-mezctl}
  _mezctl_id=()
  for ((i = 2; i < CURRENT; i++)); do
    w=${(Q)words[i]}
    case $w in
      --identity=*) id=${w#*=} ;;
      --identity) id=${(Q)words[i+1]} ;;
      *) continue ;;
    esac
    _mezctl_id=(--identity ${id/#\~\//$HOME/})
  done
}

# Runs BIN with the line's --identity and the other arguments, for at most
# 2 seconds, stderr dropped: on any failure it prints nothing.
_mezctl_query() {
  local -a cmd
  cmd=($1 $_mezctl_id)
  shift
  if (( $+commands[timeout] )); then
    timeout 2 $cmd "$@" 2>/dev/null </dev/null
  else
    $cmd "$@" 2>/dev/null </dev/null
  fi
}

# Candidates from the server are kept only when they are what mezrecd
# accepts as a node name or session id (letters, digits and "._-", not
# first "." or "-"), so no option or stray text is offered for the line.
# compadd, not _describe: a word with a colon would be cut.
_mezctl_node_names() {
  local -a nodes expl
  nodes=(${(f)"$(_mezctl_query ${_mezctl_cmd:-mezctl} nodes ls --format=jsonl |
    sed -n 's/^{"name":"\([^"]*\)".*/\1/p')"})
  nodes=(${nodes:#(|[-.]*|*[^A-Za-z0-9._-]*)})
  _wanted nodes expl node compadd -a nodes
}

# mezctl has no session listing; msh (installed beside it) has.
_mezctl_session_ids() {
  local -a ids expl
  ids=(${(f)"$(_mezctl_query msh sessions ls -q --limit=200)"})
  ids=(${ids:#(|[-.]*|*[^A-Za-z0-9._-]*)})
  _wanted session-ids expl 'session id' compadd -a ids
}

# _mezctl_group GROUP 'action:description'... -- completes GROUP's action,
# then dispatches to _mezctl_GROUP_ACTION for its arguments.
_mezctl_group() {
  local group=$1 curcontext=$curcontext state line ret=1
  shift
  local -a actions
  actions=("$@")
  _arguments -C \
    '(- *)'{-h,--help}'[print help and exit]' \
    '1:action:->action' \
    '*::arg:->args' && ret=0
  case $state in
    action)
      _describe -t actions "mezctl $group action" actions && ret=0
      ;;
    args)
      curcontext=${curcontext%:*}-$words[1]:
      (( $+functions[_mezctl_${group}_$words[1]] )) &&
        _mezctl_${group}_$words[1] && ret=0
      ;;
  esac
  return ret
}

_mezctl_config_get() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '1:setting:(session_recording)'
}

_mezctl_config_set() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '1:setting:(session_recording)' \
    '2:value:->value' && return 0
  [[ $words[2] == session_recording ]] || return 1
  local -a modes
  modes=(
    'node-sync:stream live; a broken stream ends the session'
    'node:spool on the node, upload after the session'
    'off:record nothing'
  )
  _describe -t values 'session_recording value' modes
}

_mezctl_audit_ls() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--type=[only this event type]:type (e.g. session.end)' \
    '--user=[only events of this user]:user' \
    '--session=[only events of this session]:session id:_mezctl_session_ids' \
    '--node=[only events on this node]:node:_mezctl_node_names' \
    '(--since --until)--last=[only events within this long]:duration (e.g. 24h)' \
    '(--last)--since=[from this UTC time or a duration ago]:time (ISO-8601) or duration' \
    '(--last)--until=[before this UTC time or a duration ago]:time (ISO-8601) or duration' \
    '--limit=[at most this many (default 50; 0: all)]:count' \
    '--format=[output format]:format:(text json jsonl)' \
    '--header[print the header line also when piped]'
}

_mezctl_nodes_add() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--addr=[HOST:PORT where it serves SSH]:address (HOST\:PORT)' \
    '--openssh[agentless OpenSSH node, recorded by the proxy]' \
    '--login-hint=[usual login, for display]:login:_users' \
    '--host-key=[pinned host public key line]:host key' \
    '--auth=[mezrecd HOST\:PORT as the node reaches it]:address (HOST\:PORT)' \
    '--data-dir=[data dir of the node, for mezd]:directory:_directories' \
    '1:node name'
}

_mezctl_nodes_ls() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--format=[output format]:format:(text json jsonl)'
}

_mezctl_nodes_rm() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '1:node name:_mezctl_node_names'
}

_mezctl_users_add() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--logins=[OS logins they may use]:logins:_sequence _users' \
    '--role=[role]:role:((user\:"their own sessions" admin\:"all sessions and settings" proxy\:"a proxy-only mezrecd"))' \
    '--ttl=[how long the identity is valid]:duration (e.g. 12h)' \
    '--identity-out=[write the identity here]:identity file:_files' \
    '1:user name'
}

_mezctl_users_reissue() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--ttl=[how long the identity is valid]:duration (e.g. 12h)' \
    '--identity-out=[write the identity here]:identity file:_files' \
    '1:user name'
}

_mezctl_users_ls() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--format=[output format]:format:(text json jsonl)'
}

_mezctl_users_rm() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' '1:user name'
}

_mezctl_ca_export() {
  _arguments '(- *)'{-h,--help}'[print help and exit]' \
    '--type=[which CA]:type:((user\:"for sshd TrustedUserCAKeys" host\:"for known_hosts @cert-authority" tls\:"the TLS CA (PEM)"))'
}

_mezctl() {
  local curcontext=$curcontext state line ret=1 _mezctl_cmd
  local -a commands _mezctl_id
  _mezctl_take_line
  commands=(
    'config:cluster settings'
    'audit:the audit log'
    'nodes:nodes of the cluster'
    'users:users of the cluster'
    'ca:certificate authorities'
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
      _describe -t commands 'mezctl command' commands && ret=0
      ;;
    args)
      curcontext=${curcontext%:*:*}:mezctl-$words[1]:
      case $words[1] in
        config)
          _mezctl_group config 'get:print a setting' \
            'set:change a setting (applies to new sessions)' && ret=0
          ;;
        audit)
          _mezctl_group audit 'ls:list audit events, newest first' && ret=0
          ;;
        nodes)
          _mezctl_group nodes 'add:register a node' 'ls:list nodes' \
            'rm:remove a node' && ret=0
          ;;
        users)
          _mezctl_group users 'add:create a user and their identity file' \
            'reissue:a new identity for an existing user' 'ls:list users, admins and proxies' 'rm:remove a user or proxy, revoking its tokens' && ret=0
          ;;
        ca)
          _mezctl_group ca 'export:print a CA public key' && ret=0
          ;;
        web)
          _arguments '(- *)'{-h,--help}'[print help and exit]' && ret=0
          ;;
      esac
      ;;
  esac
  return ret
}

# Autoloaded from $fpath the file body runs per completion; sourced, it
# registers itself.
if [[ $funcstack[1] == _mezctl ]]; then
  _mezctl "$@"
else
  compdef _mezctl mezctl
fi
