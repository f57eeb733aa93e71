# Asks real zsh for the completions of a command line, as TAB would offer
# them, for the tests of completions/*.zsh (tests/cli_lists_test.cc).
#
# Usage: zsh -f zsh_complete.zsh FPATH_DIR LINE
#   FPATH_DIR holds the completion files under their installed names (_msh,
#   _mezctl) and compinit's dump (.zcompdump, made by the first run: it
#   takes compinit from over a second to a few ms). LINE is typed as is,
#   the cursor at its end.
# Prints each candidate as it would stand on the line (with what compset
# moved to $IPREFIX, e.g. "root@" or "--node="), one per line, in the
# order offered; prints to stderr what the completion wrote there.
#
# How: an interactive `zsh -f` runs in a pseudo-terminal (zsh/zpty) with
# compinit, so the real completion system (compinit's autoloading from
# $fpath, _arguments, _wanted, compset, _files) runs on a real TAB. Only
# compadd is wrapped: a call that added matches is repeated with -A to
# record them (less the empty fillers _describe adds with -E to lay out its
# columns). The list zsh would draw is not parsed: it is laid out in
# columns for the terminal, with descriptions and escape sequences. The
# listing and the insertion are turned off so nothing waits for a key.
# The outer command is expected to run this under a timeout.

zmodload zsh/zpty || exit 2
local dir=$1 line=$2 buf
local out=$(mktemp) err=$(mktemp) || exit 2

zpty mez "zsh -f -i 2>${(q)err}" || exit 2
local setup="stty rows 50 columns 200
fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -d ${(q)dir}/.zcompdump
compadd() {
  local -i before=\$compstate[nmatches] ret
  builtin compadd \"\$@\"; ret=\$?
  if (( compstate[nmatches] > before )); then
    local -a added; builtin compadd -A added \"\$@\"
    added=(\${added:#})
    (( \$#added )) && print -rl -- \${IPREFIX}\${^added} >> ${(q)out}
  fi
  return ret
}
_mez_tab() { _main_complete; compstate[list]=''; compstate[insert]=''; }
zle -C mez-tab complete-word _mez_tab; bindkey '^I' mez-tab
RPS1=''; PS1='<''ready>'"
zpty -w mez "$setup"
# Typed before the prompt, the TAB would meet the terminal's cooked mode.
zpty -r mez buf '*<ready>*' || exit 2
zpty -w -n mez "$line"$'\t'
# ZLE reads these after the TAB's widget returns.
zpty -w mez $'\C-u'"exit"
while zpty -r mez buf; do :; done  # Until zsh has exited.
zpty -d mez
cat -- $out
cat -- $err >&2
rm -f -- $out $err
