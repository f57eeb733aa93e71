# Asks bash for the completions of a command line, as TAB would offer them,
# for the tests of completions/*.bash (tests/cli_lists_test.cc).
#
# Usage: bash --norc --noprofile bash_complete.bash COMPLETIONS_DIR LINE
#   LINE is completed with the cursor at its end, by the function that
#   COMPLETIONS_DIR/msh.bash or mezctl.bash registers for its first word.
# Prints each candidate as it would stand on the line (the text readline
# keeps before the completed word, e.g. "--node=", then the candidate), one
# per line; prints to stderr what the completion wrote there.
#
# How: bash has no way to press TAB in a script, so this builds what bash
# hands a completion function: COMP_WORDS split the way bash splits them
# (at blanks and at the unquoted COMP_WORDBREAKS characters "=" and ":",
# each kept as a word of its own; quotes stay in the words, as typed),
# COMP_CWORD, COMP_LINE and COMP_POINT. The other break characters (quotes,
# redirections, "(") do not occur in the lines the tests type.

set -u
dir=$1
line=$2
source "$dir/msh.bash" || exit 2
source "$dir/mezctl.bash" || exit 2

COMP_WORDS=()
word="" started=0 quote="" last="" tail="" token=""
for ((i = 0; i < ${#line}; i++)); do
  c=${line:i:1}
  last=$c
  token+=$c
  # A backslash keeps the next character (outside single quotes).
  if [[ $c == '\' && $quote != "'" && $((i + 1)) -lt ${#line} ]]; then
    i=$((i + 1))
    c+=${line:i:1}
    token+=${line:i:1}
    word+=$c
    tail+=$c
    started=1
    continue
  fi
  if [[ -n $quote ]]; then
    word+=$c
    tail+=$c
    [[ $c == "$quote" ]] && quote=""
    continue
  fi
  case $c in
    " " | $'\t')
      ((started)) && COMP_WORDS+=("$word")
      word="" started=0 tail="" token=""
      ;;
    = | :)
      ((started)) && COMP_WORDS+=("$word")
      COMP_WORDS+=("$c")
      word="" started=0 tail=""
      ;;
    *)
      [[ $c == "'" || $c == '"' ]] && quote=$c
      word+=$c
      tail+=$c
      started=1
      ;;
  esac
done
# The word under the cursor: the one being typed, an empty one after a
# blank, or the break character itself right after one (as bash does).
if ((started)); then
  COMP_WORDS+=("$word")
elif [[ $last != "=" && $last != ":" ]]; then
  COMP_WORDS+=("")
fi
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}

# What readline replaces is the text after the last unquoted blank or break
# character; the rest of that blank-separated token stays on the line.
kept=${token:0:${#token}-${#tail}}

COMPREPLY=()
case ${COMP_WORDS[0]} in
  msh) _msh ;;
  mezctl) _mezctl ;;
  *) exit 2 ;;
esac
for candidate in "${COMPREPLY[@]}"; do
  printf '%s%s\n' "$kept" "$candidate"
done
