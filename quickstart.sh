#!/usr/bin/env bash
# Sets up this host and runs thin-lxc's main job: a base container if there is none, and a thin container on it, started.
set -euo pipefail
cd "$(dirname "$0")"

BASE=${BASE:-thin-base}
NAME=${NAME:-demo}

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root: sudo ./quickstart.sh" >&2
  exit 1
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "quickstart: thin-lxc needs Node.js 20 or later on root's PATH" >&2
  exit 1
fi

bash scripts/setup-host.sh
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
# Root runs thin containers' hooks from the installation: a root-owned copy outside this clone.
bash scripts/install.sh
thin-lxc setup

if ! lxc-info -n "$BASE" >/dev/null 2>&1; then
  echo "quickstart: making base container $BASE (busybox)"
  lxc-create -t busybox -n "$BASE" >/dev/null
fi
if ! thin-lxc show "$NAME" >/dev/null 2>&1; then
  thin-lxc create "$NAME" --base "$BASE" -p 8080:80
fi
if [ "$(lxc-info -n "$NAME" -s -H)" != RUNNING ]; then
  lxc-start -n "$NAME" -d
  lxc-wait -n "$NAME" -s RUNNING -t 20
fi
# A web server inside, to show the forward: host port 8080 -> demo's port 80.
lxc-attach -n "$NAME" -- /bin/sh -c 'pidof httpd >/dev/null || { mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && httpd -p 80 -h /www; }'
echo "quickstart: http://127.0.0.1:8080/ says: $(busybox wget -qO- http://127.0.0.1:8080/ 2>&1)"
lxc-ls -f
echo
thin-lxc list
echo
echo "quickstart: $NAME is running; host port 8080 forwards to its port 80. Try: lxc-attach -n $NAME, lxc-stop -n $NAME, thin-lxc destroy $NAME"
