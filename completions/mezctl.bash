# bash completion for mezctl(1), the Mezite operator CLI.  -*- shell-script -*-
# Installed as share/bash-completion/completions/mezctl; needs nothing else
# from bash-completion. Node names (nodes rm, audit ls --node) and session
# ids (audit ls --session) are asked of mezrecd through mezctl and msh, with
# the identity on the line, for at most 2 seconds; on failure nothing is
# offered. User names are not completed.

# Runs `bin` with `identity` (may be empty) and the rest as arguments, with
# a time limit, stderr dropped.
_mezctl_query() {
  local bin=$1 identity=$2
  shift 2
  local -a cmd=("$bin")
  [[ -n $identity ]] && cmd+=(--identity "$identity")
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 "${cmd[@]}" "$@" 2>/dev/null </dev/null
  else
    "${cmd[@]}" "$@" 2>/dev/null </dev/null
  fi
}

# Prints the lines of stdin that are plain ids or names (letters, digits,
# ".", "_" and "-", not starting with "." or "-"), as mezrecd accepts them.
# Anything else, from a hostile server or whatever answers as mezctl on PATH,
# is dropped before compgen -W, which would run "$(...)" and "`...`" in it.
_mezctl_plain() {
  LC_ALL=C grep -E '^[A-Za-z0-9_][A-Za-z0-9._-]*$'
}

# The value of a word as it stands on the line ('/a b', "/a b", /a\ b, ~/x)
# without running anything: quotes and backslashes removed, a leading "~"
# made $HOME. Anything else ($VAR, ~user) stays as typed.
_mezctl_dequote() {
  local w=$1 out="" c q="" i
  if [[ $w == "~" || $w == "~/"* ]]; then
    out=$HOME
    w=${w:1}
  fi
  for ((i = 0; i < ${#w}; i++)); do
    c=${w:i:1}
    if [[ $q == "'" ]]; then
      if [[ $c == "'" ]]; then q=""; else out+=$c; fi
    elif [[ $q == '"' ]]; then
      if [[ $c == '"' ]]; then
        q=""
      elif [[ $c == '\' && ${w:i+1:1} == [\"\\\$\`] ]]; then
        i=$((i + 1))
        out+=${w:i:1}
      else
        out+=$c
      fi
    elif [[ $c == "'" || $c == '"' ]]; then
      q=$c
    elif [[ $c == '\' ]]; then
      i=$((i + 1))
      out+=${w:i:1}
    else
      out+=$c
    fi
  done
  printf '%s' "$out"
}

# The registered node names (plain ones only), one per line.
_mezctl_nodes() {
  _mezctl_query "${COMP_WORDS[0]:-mezctl}" "$1" nodes ls --format=jsonl |
    sed -n 's/^{"name":"\([^"]*\)".*/\1/p' | _mezctl_plain
}

_mezctl() {
  local i w cur prev opt val path="" opts="" subs="" identity="" names
  local -a words=()
  # COMP_WORDBREAKS splits "--opt=value" into "--opt" "=" "value"; rejoin.
  for ((i = 0; i <= COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((${#words[@]} > 1)) && [[ $w == "=" || ${words[-1]} == --*= ]]; then
      words[-1]+=$w
    else
      words+=("$w")
    fi
  done
  cur=${words[-1]}
  prev=""
  ((${#words[@]} > 1)) && prev=${words[-2]}

  # The words before the cursor that are neither options nor their values:
  # the subcommand path, then positional arguments.
  for ((i = 1; i < ${#words[@]} - 1; i++)); do
    case ${words[i]} in
      --identity=*) identity=$(_mezctl_dequote "${words[i]#*=}") ;;
      --identity)
        i=$((i + 1)) # Not inside $(...): a subshell would keep it.
        identity=$(_mezctl_dequote "${words[i]}")
        ;;
      --type | --user | --session | --node | --last | --since | --until | \
        --limit | --format | --addr | --login-hint | --host-key | --logins | \
        --role | --ttl | --identity-out | --auth | --data-dir) ((i++)) ;;
      -*) ;;
      *) path+="${path:+ }${words[i]}" ;;
    esac
  done

  # The value of an option: "--opt=val" or "--opt val".
  opt=""
  val=$cur
  if [[ $cur == --*=* ]]; then
    opt=${cur%%=*}
    val=${cur#*=}
  elif [[ $prev == --* ]]; then
    opt=$prev
  fi
  case $opt in
    --identity | --identity-out)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$val"))
      return 0
      ;;
    --format)
      COMPREPLY=($(compgen -W "text json jsonl" -- "$val"))
      return 0
      ;;
    --role)
      COMPREPLY=($(compgen -W "user admin proxy" -- "$val"))
      return 0
      ;;
    --type)
      # ca export: the CA; audit ls: any event type (free).
      [[ $path == "ca export"* ]] &&
        COMPREPLY=($(compgen -W "user host tls" -- "$val"))
      return 0
      ;;
    --node)
      COMPREPLY=($(compgen -W "$(_mezctl_nodes "$identity")" -- "$val"))
      return 0
      ;;
    --session)
      # mezctl has no session listing; msh (installed beside it) has.
      names=$(_mezctl_query msh "$identity" sessions ls -q --limit=200 |
        _mezctl_plain)
      COMPREPLY=($(compgen -W "$names" -- "$val"))
      return 0
      ;;
    --user | --last | --since | --until | --limit | --addr | \
      --login-hint | --host-key | --logins | --ttl | --auth | --data-dir)
      COMPREPLY=() # Free values.
      return 0
      ;;
  esac
  [[ $cur == --*=* ]] && return 0

  case $path in
    "")
      subs="config audit nodes users ca web"
      opts="--identity --version --help -h"
      ;;
    config) subs="get set" ;;
    "config get" | "config set") subs="session_recording" ;;
    "config set session_recording") subs="node-sync node off" ;;
    audit) subs="ls" ;;
    "audit ls")
      opts="--type --user --session --node --last --since --until --limit"
      opts+=" --format --header"
      ;;
    nodes) subs="add ls rm" ;;
    "nodes add"*) opts="--addr --openssh --login-hint --host-key --auth --data-dir" ;;
    "nodes ls") opts="--format" ;;
    "nodes rm") subs=$(_mezctl_nodes "$identity") ;;
    users) subs="add reissue ls rm" ;;
    "users add"*) opts="--logins --role --ttl --identity-out" ;;
    "users reissue"*) opts="--ttl --identity-out" ;;
    "users ls") opts="--format" ;;
    ca) subs="export" ;;
    "ca export") opts="--type" ;;
  esac
  [[ $path != "" ]] && opts+="${opts:+ }--help -h"

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  fi
  return 0
}

complete -F _mezctl mezctl
