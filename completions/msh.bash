# bash completion for msh(1), the Mezite user CLI.        -*- shell-script -*-
# Installed as share/bash-completion/completions/msh; needs nothing else
# from bash-completion. Session ids (msh play) and node names (msh ssh) are
# asked of mezrecd through msh itself, with the identity on the line, for
# at most 2 seconds; on any failure nothing is offered.

# Runs msh with `identity` (may be empty) and the rest as arguments, with
# a time limit, stderr dropped.
_msh_query() {
  local identity=$1
  shift
  local -a cmd=("${COMP_WORDS[0]:-msh}")
  [[ -n $identity ]] && cmd+=(--identity "$identity")
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 "${cmd[@]}" "$@" 2>/dev/null </dev/null
  else
    "${cmd[@]}" "$@" 2>/dev/null </dev/null
  fi
}

# Prints the lines of stdin that are plain ids or names (letters, digits,
# ".", "_" and "-", not starting with "." or "-"), as mezrecd accepts them.
# Anything else, from a hostile server or whatever answers as msh on PATH,
# is dropped before compgen -W, which would run "$(...)" and "`...`" in it.
_msh_plain() {
  LC_ALL=C grep -E '^[A-Za-z0-9_][A-Za-z0-9._-]*$'
}

# The value of a word as it stands on the line ('/a b', "/a b", /a\ b, ~/x)
# without running anything: quotes and backslashes removed, a leading "~"
# made $HOME. Anything else ($VAR, ~user) stays as typed.
_msh_dequote() {
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

_msh() {
  local i w cur prev opt val path="" opts="" subs="" files=0 identity=""
  local ids=0 nodes=0
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
      --identity=*) identity=$(_msh_dequote "${words[i]#*=}") ;;
      --identity)
        i=$((i + 1)) # Not inside $(...): a subshell would keep it.
        identity=$(_msh_dequote "${words[i]}")
        ;;
      --user | --node | --last | --since | --until | --kind | --status | \
        --limit | --format | --speed | --skip-idle | --port | -p | \
        --local-forward | -L) ((i++)) ;;
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
    --identity)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$val"))
      return 0
      ;;
    --format)
      case $path in
        play*) COMPREPLY=($(compgen -W "pty text plain json cast" -- "$val")) ;;
        "sessions show"*) COMPREPLY=($(compgen -W "text json" -- "$val")) ;;
        *) COMPREPLY=($(compgen -W "text json jsonl" -- "$val")) ;;
      esac
      return 0
      ;;
    --kind)
      COMPREPLY=($(compgen -W "shell exec tcpip" -- "$val"))
      return 0
      ;;
    --status)
      COMPREPLY=($(compgen -W "recording complete incomplete" -- "$val"))
      return 0
      ;;
    --user | --node | --last | --since | --until | --limit | --speed | -s | \
      --skip-idle | -i | --idle-time-limit | --start-at | --port | -p | \
      --local-forward | -L)
      COMPREPLY=() # Free values.
      return 0
      ;;
  esac
  [[ $cur == --*=* ]] && return 0

  case $path in
    "")
      subs="login status logout sessions play ssh web"
      opts="--identity --version --help -h"
      ;;
    login) opts="--identity --help -h" ;;
    status | logout | web) opts="--help -h" ;;
    sessions)
      subs="ls show"
      opts="--help -h"
      ;;
    "sessions show")
      opts="--format --help -h"
      ids=1
      ;;
    "sessions show "*) opts="--format --help -h" ;;
    "sessions ls")
      opts="--user --node --kind --status --last --since --until --limit"
      opts+=" --format --quiet -q --header --help -h"
      ;;
    play)
      opts="--speed -s --skip-idle -i --idle-time-limit --start-at --format --strip --help -h"
      files=1
      ids=1
      ;;
    "play "*) opts="--speed -s --skip-idle -i --idle-time-limit --start-at --format --strip --help -h" ;;
    ssh | "ssh "*)
      opts="--port -p -t -T --local-forward -L --no-command -N --help -h"
      [[ $path == ssh ]] && nodes=1
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif ((nodes)); then
    # msh ssh [login@]NODE: the nodes of the user's recent sessions (only
    # admins may list every node).
    local login="" names
    [[ $cur == *@* ]] && login=${cur%%@*}@
    names=$(_msh_query "$identity" sessions ls --limit=200 --format=jsonl |
      sed -n 's/.*"node":"\([^"]*\)".*/\1/p' | _msh_plain | sort -u)
    COMPREPLY=($(compgen -P "$login" -W "$names" -- "${cur#*@}"))
  else
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    if ((ids)); then
      COMPREPLY+=($(compgen -W "$(_msh_query "$identity" sessions ls -q \
        --limit=200 | _msh_plain)" -- "$cur"))
    fi
    if ((files)); then
      compopt -o filenames 2>/dev/null
      COMPREPLY+=($(compgen -f -- "$cur"))
    fi
  fi
  return 0
}

complete -F _msh msh
