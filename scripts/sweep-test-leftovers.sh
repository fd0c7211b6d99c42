#!/usr/bin/env bash
# Removes what end-to-end tests made when their process was killed before its cleanup ran (a CI job cut off,
# a session stopped): LXC containers named by test/helpers/host.ts uniqueName, "tlt" + the test process's pid in
# base 36 + 4 random characters, whose process is gone. Containers of a test that is still running are kept.
# Thin containers go through lxc-destroy, whose hooks remove their layers, reservations and rules.
set -uo pipefail

lxcpath=$(lxc-config lxc.lxcpath 2>/dev/null || echo /var/lib/lxc)

leftovers() {
  local dir name pid36
  for dir in "$lxcpath"/tlt*; do
    [ -f "$dir/config" ] || continue
    name=${dir##*/}
    [[ $name =~ ^tlt([0-9a-z]+)[0-9a-z]{4}- ]] || continue
    pid36=${BASH_REMATCH[1]}
    kill -0 "$((36#$pid36))" 2>/dev/null && continue
    echo "$name"
  done
}

# Thin containers first (a base with clones is refused); a stack of them needs as many passes as it is deep.
for pass in 1 2 3 4; do
  names=$(leftovers)
  [ -n "$names" ] || break
  for name in $names; do
    lxc-stop -k -n "$name" >/dev/null 2>&1
    if grep -q '^# Registered by thin-lxc' "$lxcpath/$name/config" 2>/dev/null || [ "$pass" -gt 2 ]; then
      lxc-destroy -n "$name" >/dev/null 2>&1 && echo "removed a killed test's container $name"
    fi
  done
done
exit 0
