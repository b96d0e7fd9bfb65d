# elfuse shell integration for zsh, printed by 'elfuse init zsh'. Load it from ~/.zshrc with
#   eval "$(elfuse init zsh)"
# ('elfuse install-hooks' adds that line). Loading it twice changes nothing.
#
# - Typing a path to an aarch64 Linux program (./tool args) runs it through elfuse: the
#   accept-line widget puts "elfuse exec" before each such command word; history keeps the
#   line as typed.
# - A command that is not found is looked up among elfuse's shims and the directories in
#   ELFUSE_PATH, then handed to the previous command_not_found_handler, if any.
# - Inside a trusted directory with a shim folder (.elfuse/shims/bin), that folder is on PATH.

\builtin typeset -g _ELFUSE_BIN=@ELFUSE@
\builtin typeset -g _ELFUSE_DATA=@DATA@

# Status 0 when $1 names an executable aarch64 Linux ELF file (64-bit, little-endian,
# ET_EXEC or ET_DYN). Reads its first 20 bytes; runs nothing.
__elfuse_is_linux_elf() {
  \builtin emulate -L zsh
  [[ -f $1 && -x $1 && -r $1 ]] || \builtin return 1
  \builtin local LC_ALL=C header=
  \builtin read -r -k 20 -u 0 header < "$1" 2>/dev/null || \builtin return 1
  [[ $header == $'\x7fELF\x02\x01'* ]] || \builtin return 1
  [[ ${header[17]} == [$'\x02\x03'] && ${header[18]} == $'\0' ]] || \builtin return 1
  [[ ${header[19]} == $'\xb7' && ${header[20]} == $'\0' ]]
}

# Rewrites the command line in $1 into REPLY: every command word that is a plain path to a
# Linux program gets "elfuse exec" before it. Status 1 when nothing changes. A line without a
# slash returns at once, so most lines cost next to nothing.
__elfuse_rewrite() {
  \builtin emulate -L zsh
  \builtin setopt no_glob
  \builtin local line=$1
  REPLY=$line
  [[ $line == */* ]] || \builtin return 1
  \builtin local -i i=1 n=${#line} start command=1 skip=0 plain close
  \builtin local c word
  \builtin local -a starts
  while (( i <= n )); do
    c=${line[i]}
    case $c in
      [[:blank:]]) (( i++ )); continue ;;
      '#') while (( i <= n )) && [[ ${line[i]} != $'\n' ]]; do (( i++ )); done
           continue ;;
      ['<>'])
           while (( i <= n )) && [[ ${line[i]} == ['<>&|'] ]]; do (( i++ )); done
           skip=1; continue ;;
      ')') command=0; (( i++ )); continue ;;
      ['|&;('$'\n']) command=1; (( i++ )); continue ;;
    esac
    start=i word= plain=1
    while (( i <= n )); do
      c=${line[i]}
      case $c in
        '\') word+=${line[i+1]}; (( i += 2 )) ;;
        "'") close=${line[i+1,n][(i)\']}
             word+=${line[i+1,i+close-1]}; (( i += close + 1 )) ;;
        '"') (( i++ ))
             while (( i <= n )) && [[ ${line[i]} != '"' ]]; do
               [[ ${line[i]} == ['$`\'] ]] && plain=0
               word+=${line[i]}; (( i++ ))
             done
             (( i++ )) ;;
        [[:blank:]]|['|&;()<>'$'\n']) break ;;
        ['$`*?[{']) plain=0; word+=$c; (( i++ )) ;;
        *) word+=$c; (( i++ )) ;;
      esac
    done
    if (( skip )); then skip=0; continue; fi
    (( command )) || continue
    if (( plain )) && [[ $word =~ '^[A-Za-z_][A-Za-z0-9_]*=' ]]; then
      continue
    fi
    case $word in
      # Words after which a command word follows: keywords, and commands that run one.
      if|then|else|elif|do|while|until|time|'!'|'{'|nocorrect|noglob|builtin|command|exec|\
      env|nohup|nice|sudo)
        continue ;;
    esac
    command=0
    (( plain )) && [[ $word == */* ]] || continue
    [[ $word == '~/'* ]] && word=$HOME/${word#'~/'}
    __elfuse_is_linux_elf "$word" && starts+=($start)
  done
  (( ${#starts} )) || \builtin return 1
  \builtin local prefix="${(q)_ELFUSE_BIN} exec "
  for start in ${(On)starts}; do
    REPLY=${REPLY[1,start-1]}$prefix${REPLY[start,-1]}
  done
  \builtin return 0
}

# The accept-line widget: rewrites the line, remembers what was typed for history, and
# hands over to the accept-line that was there before.
__elfuse_accept_line() {
  \builtin local REPLY
  if __elfuse_rewrite "$BUFFER"; then
    \builtin typeset -g _ELFUSE_TYPED=$BUFFER
    BUFFER=$REPLY
  fi
  \builtin zle __elfuse_previous_accept_line -- "$@"
}

# History gets the line as typed, not the rewritten one.
__elfuse_add_history() {
  [[ -n ${_ELFUSE_TYPED-} ]] || \builtin return 0
  # A line the user keeps out of history stays out (HIST_IGNORE_SPACE).
  if [[ ! ( -o hist_ignore_space && $_ELFUSE_TYPED == ' '* ) ]]; then
    \builtin print -sr -- "$_ELFUSE_TYPED"
  fi
  \builtin typeset -g _ELFUSE_TYPED=
  \builtin return 1
}

# Finds a Linux program for a command name: a global shim, then ELFUSE_PATH. Sets REPLY to
# the command to run (an array in reply).
__elfuse_find() {
  \builtin emulate -L zsh
  \builtin local name=$1 dir
  [[ -n $name && $name != */* ]] || \builtin return 1
  if [[ -x $_ELFUSE_DATA/shims/bin/$name ]]; then
    reply=("$_ELFUSE_DATA/shims/bin/$name")
    \builtin return 0
  fi
  for dir in ${(s.:.)ELFUSE_PATH-}; do
    if [[ -n $dir ]] && __elfuse_is_linux_elf "$dir/$name"; then
      reply=("$_ELFUSE_BIN" exec --argv0 "$name" "$dir/$name")
      \builtin return 0
    fi
  done
  \builtin return 1
}

# Keep a handler that was there before (once: the second load finds ours).
if (( ${+functions[command_not_found_handler]} )) \
   && [[ ${functions[command_not_found_handler]} != *__elfuse_find* ]]; then
  functions[__elfuse_previous_cnf]=${functions[command_not_found_handler]}
fi

command_not_found_handler() {
  \builtin local -a reply
  if __elfuse_find "$1"; then
    \builtin shift
    "${reply[@]}" "$@"
    \builtin return
  fi
  if (( ${+functions[__elfuse_previous_cnf]} )); then
    __elfuse_previous_cnf "$@"
    \builtin return
  fi
  \builtin print -ru2 -- "zsh: command not found: $1"
  \builtin return 127
}

# Puts the nearest trusted shim folder on PATH, taking the previous one off.
__elfuse_chpwd() {
  \builtin emulate -L zsh
  \builtin local dir=$PWD found= line bin
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
    bin=
    while IFS= \builtin read -r line; do
      [[ $line == "$found" ]] && bin=$found/.elfuse/shims/bin
    done < "$_ELFUSE_DATA/shims/trusted"
  fi
  [[ ${_ELFUSE_DIR_BIN-} == "$bin" ]] && \builtin return 0
  if [[ -n ${_ELFUSE_DIR_BIN-} ]]; then
    path=(${path:#$_ELFUSE_DIR_BIN})
  fi
  if [[ -n $bin ]]; then
    path=("$bin" $path)
  fi
  \builtin typeset -g _ELFUSE_DIR_BIN=$bin
  \builtin return 0
}

# Registration: each step first checks whether it is already done.
if [[ -z ${_ELFUSE_DIR_BIN+set} ]]; then
  \builtin typeset -g _ELFUSE_DIR_BIN=
fi
\builtin autoload -Uz add-zsh-hook
add-zsh-hook chpwd __elfuse_chpwd
add-zsh-hook zshaddhistory __elfuse_add_history
__elfuse_chpwd
if [[ -o interactive && ${widgets[accept-line]-} != user:__elfuse_accept_line ]]; then
  if [[ ${widgets[accept-line]-builtin} == \builtin ]]; then
    \builtin zle -A .accept-line __elfuse_previous_accept_line
  else
    \builtin zle -A accept-line __elfuse_previous_accept_line
  fi
  \builtin zle -N accept-line __elfuse_accept_line
fi
