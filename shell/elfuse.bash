# shellcheck shell=bash
# elfuse shell integration for bash, printed by 'elfuse init bash'. Load it from ~/.bashrc with
#   eval "$(elfuse init bash)"
# ('elfuse install-hooks' adds that line). Loading it twice changes nothing.
#
# - bash 4.4 and later: typing a path to an aarch64 Linux program (./tool args) runs it
#   through elfuse: Enter is bound to a readline step that puts "elfuse exec" before each such
#   command word in READLINE_LINE, then to the accept-line that was there before; history keeps
#   the line as typed.
# - bash 4 and later: a command that is not found is looked up among elfuse's shims and (4.4
#   and later, which can read the ELF header) the directories in ELFUSE_PATH, then handed to
#   the previous command_not_found_handle, if any.
# - Every version: inside a trusted directory with a shim folder (.elfuse/shims/bin), that
#   folder is on PATH. bash 3.2 (macOS /bin/bash) has only this: use shims there.

_ELFUSE_BIN=@ELFUSE@
_ELFUSE_DATA=@DATA@
_ELFUSE_DIR_BIN=${_ELFUSE_DIR_BIN-}
_ELFUSE_LAST_PWD=${_ELFUSE_LAST_PWD-}
_ELFUSE_TYPED=${_ELFUSE_TYPED-}
_ELFUSE_REWRITTEN=${_ELFUSE_REWRITTEN-}

# Status 0 when $1 names an executable aarch64 Linux ELF file (64-bit, little-endian,
# ET_EXEC or ET_DYN). Reads its first 20 bytes; runs nothing.
__elfuse_is_linux_elf() {
  [[ -f $1 && -x $1 && -r $1 ]] || \builtin return 1
  \builtin local LC_ALL=C magic='' header=''
  \builtin local -a chunks
  chunks=()
  \builtin read -r -N 4 magic < "$1" 2>/dev/null || \builtin return 1
  [[ $magic == $'\x7fELF' ]] || \builtin return 1
  # mapfile splits at NUL bytes; joining the pieces with a marker puts every byte back at its
  # offset, with the marker where a NUL was.
  \builtin mapfile -d '' -n 12 chunks < "$1" 2>/dev/null || \builtin return 1
  \builtin printf -v header '%s\x1f' "${chunks[@]}"
  [[ ${header:0:6} == $'\x7fELF\x02\x01' ]] || \builtin return 1
  [[ ${header:16:1} == [$'\x02\x03'] && ${header:17:1} == $'\x1f' ]] || \builtin return 1
  [[ ${header:18:1} == $'\xb7' && ${header:19:1} == $'\x1f' ]]
}

# Rewrites the command line in $1 into REPLY: every command word that is a plain path to a
# Linux program gets "elfuse exec" before it. Status 1 when nothing changes. A line without a
# slash returns at once, so most lines cost next to nothing.
__elfuse_rewrite() {
  \builtin local line="$1"
  REPLY=$line
  [[ $line == */* ]] || \builtin return 1
  \builtin local -i i=0 n=${#line} start=0 command=1 skip=0 plain=1 k
  \builtin local c='' word='' rest=''
  \builtin local -a starts
  starts=()
  while (( i < n )); do
    c=${line:i:1}
    case $c in
      [[:blank:]]) (( i += 1 )); continue ;;
      '#') while (( i < n )) && [[ ${line:i:1} != $'\n' ]]; do (( i += 1 )); done
           continue ;;
      ['<>'])
           while (( i < n )) && [[ ${line:i:1} == ['<>&|'] ]]; do (( i += 1 )); done
           skip=1; continue ;;
      ')') command=0; (( i += 1 )); continue ;;
      ['|&;('$'\n']) command=1; (( i += 1 )); continue ;;
    esac
    start=i word='' plain=1
    while (( i < n )); do
      c=${line:i:1}
      case $c in
        \\) word+=${line:i+1:1}; (( i += 2 )) ;;
        "'") rest=${line:i+1}
             k=${#rest}
             [[ $rest == *"'"* ]] && { rest=${rest%%"'"*}; k=${#rest}; }
             word+=${line:i+1:k}; (( i += k + 2 )) ;;
        '"') (( i += 1 ))
             while (( i < n )) && [[ ${line:i:1} != '"' ]]; do
               [[ ${line:i:1} == [\$\`\\] ]] && plain=0
               word+=${line:i:1}; (( i += 1 ))
             done
             (( i += 1 )) ;;
        [[:blank:]]|['|&;()<>'$'\n']) break ;;
        ['$`*?[{']) plain=0; word+=$c; (( i += 1 )) ;;
        *) word+=$c; (( i += 1 )) ;;
      esac
    done
    if (( skip )); then skip=0; continue; fi
    (( command )) || continue
    if (( plain )) && [[ $word =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
      continue
    fi
    case $word in
      # Words after which a command word follows: keywords, and commands that run one.
      if|then|else|elif|do|while|until|time|'!'|'{'|builtin|command|exec|env|nohup|nice|sudo)
        continue ;;
    esac
    command=0
    if (( ! plain )) || [[ $word != */* ]]; then
      continue
    fi
    [[ $word == \~/* ]] && word=$HOME/${word#\~/}
    __elfuse_is_linux_elf "$word" && starts+=("$start")
  done
  (( ${#starts[@]} )) || \builtin return 1
  \builtin local prefix
  \builtin printf -v prefix '%q exec ' "$_ELFUSE_BIN"
  for (( k = ${#starts[@]} - 1; k >= 0; k-- )); do
    start=${starts[k]}
    REPLY=${REPLY:0:start}$prefix${REPLY:start}
  done
  \builtin return 0
}

# Bound (with bind -x) to a key Enter sends before accepting the line.
__elfuse_readline() {
  \builtin local status=$? REPLY=''
  if __elfuse_rewrite "$READLINE_LINE"; then
    _ELFUSE_TYPED=$READLINE_LINE
    _ELFUSE_REWRITTEN=$REPLY
    READLINE_LINE=$REPLY
    READLINE_POINT=${#REPLY}
  fi
  \builtin return "$status"
}

# Before each prompt: history gets the typed line in place of the rewritten one, and the
# shim folder follows the working directory. Keeps $? for the prompt.
__elfuse_prompt() {
  \builtin local status=$? entry='' number=''
  if [[ -n $_ELFUSE_REWRITTEN ]]; then
    entry=$(HISTTIMEFORMAT='' \builtin history 1)
    entry=${entry#"${entry%%[![:blank:]]*}"}
    number=${entry%%[![:digit:]]*}
    entry=${entry#"$number"}
    entry=${entry#"${entry%%[![:blank:]]*}"}
    if [[ -n $number && $entry == "$_ELFUSE_REWRITTEN" ]]; then
      \builtin history -d "$number"
      \builtin history -s -- "$_ELFUSE_TYPED"
    fi
    _ELFUSE_TYPED=''
    _ELFUSE_REWRITTEN=''
  fi
  if [[ $PWD != "$_ELFUSE_LAST_PWD" ]]; then
    _ELFUSE_LAST_PWD=$PWD
    __elfuse_chpwd
  fi
  \builtin return "$status"
}

# Finds a Linux program for a command name: a global shim, then ELFUSE_PATH. Sets the array
# _ELFUSE_FOUND to the command to run.
__elfuse_find() {
  \builtin local name="$1" dir=''
  \builtin local -a dirs
  dirs=()
  [[ -n $name && $name != */* ]] || \builtin return 1
  if [[ -x $_ELFUSE_DATA/shims/bin/$name ]]; then
    _ELFUSE_FOUND=("$_ELFUSE_DATA/shims/bin/$name")
    \builtin return 0
  fi
  IFS=: \builtin read -r -a dirs <<< "${ELFUSE_PATH-}"
  for dir in "${dirs[@]}"; do
    if [[ -n $dir ]] && __elfuse_is_linux_elf "$dir/$name"; then
      _ELFUSE_FOUND=("$_ELFUSE_BIN" exec --argv0 "$name" "$dir/$name")
      \builtin return 0
    fi
  done
  \builtin return 1
}

# Puts the nearest trusted shim folder on PATH, taking the previous one off.
__elfuse_chpwd() {
  \builtin local dir="$PWD" found='' line='' bin=''
  while :; do
    if [[ -d $dir/.elfuse/shims/bin ]]; then
      found=$dir
      break
    fi
    [[ $dir == / || -z $dir ]] && break
    dir=${dir%/*}
    [[ -n $dir ]] || dir=/
  done
  if [[ -n $found && -r $_ELFUSE_DATA/shims/trusted ]]; then
    while IFS= \builtin read -r line; do
      [[ $line == "$found" ]] && bin=$found/.elfuse/shims/bin
    done < "$_ELFUSE_DATA/shims/trusted"
  fi
  [[ $_ELFUSE_DIR_BIN == "$bin" ]] && \builtin return 0
  if [[ -n $_ELFUSE_DIR_BIN ]]; then
    PATH=:$PATH:
    PATH=${PATH//":$_ELFUSE_DIR_BIN:"/:}
    PATH=${PATH#:}
    PATH=${PATH%:}
  fi
  if [[ -n $bin ]]; then
    PATH=$bin:$PATH
  fi
  _ELFUSE_DIR_BIN=$bin
  \builtin return 0
}

# Registration: each step first checks whether it is already done.
if (( BASH_VERSINFO[0] >= 4 )); then
  if \builtin declare -F command_not_found_handle > /dev/null \
     && ! \builtin declare -F __elfuse_previous_cnf > /dev/null; then
    _ELFUSE_DEF=$(\builtin declare -f command_not_found_handle)
    if [[ $_ELFUSE_DEF != *__elfuse_find* ]]; then
      \builtin eval "__elfuse_previous_cnf${_ELFUSE_DEF#command_not_found_handle}"
    fi
    \builtin unset _ELFUSE_DEF
  fi

  command_not_found_handle() {
    \builtin local -a _ELFUSE_FOUND
    _ELFUSE_FOUND=()
    if __elfuse_find "$1"; then
      \builtin shift
      "${_ELFUSE_FOUND[@]}" "$@"
      \builtin return
    fi
    if \builtin declare -F __elfuse_previous_cnf > /dev/null; then
      __elfuse_previous_cnf "$@"
      \builtin return
    fi
    \builtin printf 'bash: %s: command not found\n' "$1" >&2
    \builtin return 127
  }
fi

if [[ ${PROMPT_COMMAND-} != *__elfuse_prompt* ]]; then
  PROMPT_COMMAND="__elfuse_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi

# Enter sends two keys of its own: the rewrite, then the accept step that was bound to Enter.
if [[ $- == *i* ]] \
   && (( BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4) )); then
  for _ELFUSE_MAP in emacs vi-insert; do
    if [[ $(\builtin bind -m "$_ELFUSE_MAP" -s) != *'\e[0;99E'* ]]; then
      # A macro on Enter (bind -s), else a readline function (bind -p), else accept-line.
      _ELFUSE_PREV=$(\builtin bind -m "$_ELFUSE_MAP" -s | \command grep -F '"\C-m": ' || :)
      if [[ -z $_ELFUSE_PREV ]]; then
        _ELFUSE_PREV=$(\builtin bind -m "$_ELFUSE_MAP" -p | \command grep -F '"\C-m": ' || :)
      fi
      _ELFUSE_PREV=${_ELFUSE_PREV:-x: accept-line}
      \builtin bind -m "$_ELFUSE_MAP" "\"\\e[0;99A\": ${_ELFUSE_PREV#*: }"
      \builtin bind -m "$_ELFUSE_MAP" -x '"\e[0;99E": __elfuse_readline'
      \builtin bind -m "$_ELFUSE_MAP" '"\C-m": "\e[0;99E\e[0;99A"'
      \builtin bind -m "$_ELFUSE_MAP" '"\C-j": "\e[0;99E\e[0;99A"'
    fi
  done
  \builtin unset _ELFUSE_MAP _ELFUSE_PREV
fi
__elfuse_chpwd
_ELFUSE_LAST_PWD=$PWD
