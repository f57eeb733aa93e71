# bash completion for msh(1), the Mezite user CLI.        -*- shell-script -*-
# Installed as share/bash-completion/completions/msh; needs nothing else
# from bash-completion. Session ids are not completed: listing them would
# mean a round trip to the server on every TAB.

_msh() {
  local i w cur prev opt val path="" opts="" subs="" files=0
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
      --identity | --user | --node | --last | --limit | --format | --speed | \
        --skip-idle | --port | -p | --local-forward | -L) ((i++)) ;;
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
        play*) COMPREPLY=($(compgen -W "pty text json cast" -- "$val")) ;;
        *) COMPREPLY=($(compgen -W "text json jsonl" -- "$val")) ;;
      esac
      return 0
      ;;
    --user | --node | --last | --limit | --speed | --skip-idle | --port | -p | \
      --local-forward | -L)
      COMPREPLY=() # Free values.
      return 0
      ;;
  esac
  [[ $cur == --*=* ]] && return 0

  case $path in
    "")
      subs="login status logout sessions play ssh"
      opts="--identity --version --help -h"
      ;;
    login) opts="--identity --help -h" ;;
    status | logout) opts="--help -h" ;;
    sessions)
      subs="ls"
      opts="--help -h"
      ;;
    "sessions ls")
      opts="--user --node --last --limit --format --quiet -q --help -h"
      ;;
    play)
      opts="--speed --skip-idle --format --help -h"
      files=1
      ;;
    "play "*) opts="--speed --skip-idle --format --help -h" ;;
    ssh | "ssh "*)
      opts="--port -p -t -T --local-forward -L --no-command -N --help -h"
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    if ((files)); then
      compopt -o filenames 2>/dev/null
      COMPREPLY+=($(compgen -f -- "$cur"))
    fi
  fi
  return 0
}

complete -F _msh msh
