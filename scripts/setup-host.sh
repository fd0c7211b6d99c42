#!/usr/bin/env bash
# Prepares a Debian/Ubuntu host for thin-lxc: LXC and the tools its containers and tests use, and the lxcbr0 bridge.
set -euo pipefail

# rsync: commit (and lxc-copy); procps: pkill in the tests; attr: xattrs in diff and the tests;
# e2fsprogs: --disk's images (mkfs.ext4 -d, resize2fs) and quota projects (chattr -p); quota: setquota/repquota.
# man-db: man thin-lxc (the release test reads the installed page).
PACKAGES=(lxc busybox-static iptables dnsmasq-base debootstrap iproute2 rsync socat attr procps e2fsprogs quota man-db)
# ansible-core: the tests run the documented Ansible play (docs/commands.md); without its recommends (the collections, 250 MB), unused.
LEAN_PACKAGES=(ansible-core)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run as root (sudo)" >&2
  exit 1
fi

missing=()
lean=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
for package in "${LEAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || lean+=("$package")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${#lean[@]}" -gt 0 ]; then
  echo "setup-host: installing ${missing[*]} ${lean[*]}"
  apt-get update -qq
  [ "${#missing[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ "${#lean[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi

# lxc-net brings up lxcbr0 with its dnsmasq; where systemd runs it, it is already up.
if [ ! -d /sys/class/net/lxcbr0 ]; then
  lxc_net=""
  for candidate in /usr/libexec/lxc/lxc-net /usr/lib/x86_64-linux-gnu/lxc/lxc-net /usr/lib/lxc/lxc-net; do
    [ -x "$candidate" ] && lxc_net="$candidate" && break
  done
  if [ -z "$lxc_net" ]; then
    echo "setup-host: lxc-net not found; is lxc installed?" >&2
    exit 1
  fi
  # A stale marker from a run whose bridge is gone makes lxc-net refuse to start.
  USE_LXC_BRIDGE=true "$lxc_net" stop >/dev/null 2>&1 || true
  USE_LXC_BRIDGE=true "$lxc_net" start
fi
echo "setup-host: LXC $(lxc-start --version), bridge lxcbr0 $(ip -4 -o addr show lxcbr0 | awk '{print $4}')"
