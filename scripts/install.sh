#!/usr/bin/env bash
# Installs the built thin-lxc (dist, package.json, templates, the bash completion and the man page) as a root-owned
# copy in /usr/local/lib/thin-lxc and links /usr/local/bin/thin-lxc and /usr/local/share/man/man1/thin-lxc.1 to it. Thin containers' hooks run as root from the installation that made them,
# so it must not be the user's own clone, which its owner could change.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
INSTALL="$PREFIX/lib/thin-lxc"

if [ "$(id -u)" -ne 0 ]; then
  echo "install: run as root: sudo scripts/install.sh" >&2
  exit 1
fi
if [ ! -f dist/bin/cli.js ] || [ ! -d dist/hooks ]; then
  echo "install: nothing built here: npm ci && npm run build" >&2
  exit 1
fi

# The build makes no symlinks: one would be copied as a root-owned link to a file its owner can still change.
LINK=$(find dist package.json templates completion docs/thin-lxc.1 -type l -print -quit)
if [ -n "$LINK" ]; then
  echo "install: $LINK is a symlink, which thin-lxc's build never makes: remove it and rebuild with npm ci && npm run build" >&2
  exit 1
fi

# Made beside it and moved into place, so a failed copy leaves the installed one as it was.
rm -rf "$INSTALL.new"
mkdir -p "$INSTALL.new"
# -L: a link put in after the check above is copied as the file it names, not kept as a link.
cp -RL dist package.json templates completion "$INSTALL.new/"
mkdir "$INSTALL.new/docs"
cp -L docs/thin-lxc.1 "$INSTALL.new/docs/"
chown -R root:root "$INSTALL.new"
chmod -R u+rwX,go+rX,go-w "$INSTALL.new"
rm -rf "$INSTALL.old"
if [ -e "$INSTALL" ]; then mv "$INSTALL" "$INSTALL.old"; fi
mv "$INSTALL.new" "$INSTALL"
rm -rf "$INSTALL.old"
mkdir -p "$PREFIX/bin"
ln -sfn "$INSTALL/dist/bin/cli.js" "$PREFIX/bin/thin-lxc"
# Where man looks beside $PREFIX/bin, as npm install -g links it.
mkdir -p "$PREFIX/share/man/man1"
ln -sfn "$INSTALL/docs/thin-lxc.1" "$PREFIX/share/man/man1/thin-lxc.1"
echo "install: thin-lxc $("$PREFIX/bin/thin-lxc" --version) is $PREFIX/bin/thin-lxc, installed in $INSTALL"
