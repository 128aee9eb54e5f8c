#!/usr/bin/env bash
# Installs everything the box needs on Debian bookworm; safe to run again (it skips what is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

APT_PACKAGES=(orthanc orthanc-python orthanc-dicomweb orthanc-postgresql postgresql nginx-light dcmtk dicom3tools openssl chromium xmlsec1)
# npm fetches the pinned OHIF package; any npm will do (Debian's conflicts with a Node.js installed otherwise).
command -v npm >/dev/null || APT_PACKAGES+=(npm)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package starts a system Orthanc on 8042/4242; the box runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet orthanc 2>/dev/null; then
  $SUDO systemctl disable --now orthanc >/dev/null 2>&1 || true
fi

# The venv must use the interpreter Orthanc embeds (Debian's CPython 3.11), not another python3 on PATH.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.base_prefix != "/usr")'; then
  rm -rf .venv
  /usr/bin/python3.11 -m venv .venv
fi
stamp=.venv/.drimbox-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

# OHIF viewer: pinned, integrity-checked prebuilt dist from the npm registry (never committed).
.venv/bin/drimbox viewer fetch --dest "$REPO/viewer/dist" >/dev/null
echo "setup: ready"
