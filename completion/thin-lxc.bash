# Tab completion of thin-lxc in bash: commands, options, thin container names where a command takes one, and LXC
# containers after --base. thin-lxc setup installs it as /usr/share/bash-completion/completions/thin-lxc.
# The command itself works out the candidates (thin-lxc __complete), so they follow the installed version.
_thin_lxc() {
  local line=${COMP_LINE:0:COMP_POINT} cur tail reply candidate quoted
  local -a words answer
  read -ra words <<<"$line"
  # After a space, the word being completed is a new, empty one.
  [[ ${#words[@]} -lt 2 || $line == *[[:space:]] ]] && words+=('')
  cur=${words[${#words[@]}-1]}
  COMPREPLY=()
  reply=$(command "${words[0]}" __complete -- "${words[@]:1}" 2>/dev/null) || return 0
  mapfile -t answer <<<"$reply"
  if [[ ${answer[0]} == files ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "${answer[1]}")
    return 0
  fi
  # Readline replaces only what follows the last = or : of the word (they are in COMP_WORDBREAKS): so do we.
  tail=$cur
  while [[ $tail =~ ^[^=:]*([=:])(.*)$ && $COMP_WORDBREAKS == *"${BASH_REMATCH[1]}"* ]]; do tail=${BASH_REMATCH[2]}; done
  # Readline inserts a candidate as typed text: quoted, so that no candidate can ever be shell syntax.
  for candidate in "${answer[@]:1}"; do
    [[ -n $candidate ]] || continue
    printf -v quoted '%q' "${candidate:${#cur}-${#tail}}"
    COMPREPLY+=("$quoted")
  done
  return 0
}
complete -F _thin_lxc thin-lxc
