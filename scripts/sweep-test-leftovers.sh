#!/usr/bin/env bash
# Removes what end-to-end tests made when their process was killed before its cleanup ran (a CI job cut off,
# a session stopped), so that the next run's checks see only their own. A container is a killed test's only
# when all of these hold, and nothing else is touched:
# - its name is test/helpers/host.ts uniqueName's: "tlt", the test process's pid in base 36, 4 random characters,
#   "-", a label;
# - that process is gone (a live process with that pid, even an unrelated one, keeps the container);
# - it is what tests make: a thin container registered from a test root (/tmp/thin-lxc-test-*), or a plain
#   container made from LXC's busybox template.
# Thin containers go through lxc-destroy, whose hooks remove their layers, reservations and rules.
set -uo pipefail

lxcpath=$(lxc-config lxc.lxcpath 2>/dev/null || echo /var/lib/lxc)

killed_tests_containers() {
  local dir name config
  for dir in "$lxcpath"/tlt*; do
    config="$dir/config"
    [ -f "$config" ] || continue
    name=${dir##*/}
    [[ $name =~ ^tlt([0-9a-z]+)[0-9a-z]{4}-[0-9a-z-]+$ ]] || continue
    kill -0 "$((36#${BASH_REMATCH[1]}))" 2>/dev/null && continue
    if grep -q '^lxc.include = /tmp/thin-lxc-test-[^/]*/' "$config" || grep -q '^# Template used to create this container: .*/lxc-busybox$' "$config"; then
      printf '%s\n' "$name"
    fi
  done
}

# Thin containers stacked on others first (a base with clones is refused): as many passes as the stack is deep.
for pass in 1 2 3 4; do
  removed=0
  while IFS= read -r name; do
    lxc-stop -k -n "$name" >/dev/null 2>&1
    if lxc-destroy -n "$name" >/dev/null 2>&1; then
      echo "removed a killed test's container $name"
      removed=1
    fi
  done < <(killed_tests_containers)
  [ "$removed" = 1 ] || break
done
exit 0
