#!/usr/bin/env bash
# Set up this project in ./.venv on a fresh Debian or Ubuntu machine with Python 3.11+.
#   scripts/bootstrap.sh          the runtime (what an exhibition PC needs)
#   scripts/bootstrap.sh --test   the runtime, the workshop side (torch) and the test tools
# Debian packages are installed only when missing (with sudo unless run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

extra=""
packages=(python3-venv)
case "${1:-}" in
  "") ;;
  --test)
    extra="[test]"
    packages+=(gcc python3-dev pkg-config libsystemd-dev systemd)
    packages+=(xvfb cage libwayland-egl1 libwayland-cursor0 libegl-mesa0 libgl1-mesa-dri)
    # The GL presenter's tests: GL through EGL without a screen, and through GLX under Xvfb.
    packages+=(libegl1 libgl1 libglx-mesa0)
    # The web page's tests: a real headless browser, and curl for the API's access rules;
    # promtool (Debian package prometheus) checks the alert rules in deploy/prometheus.
    packages+=(chromium curl prometheus)
    # Tests of other machines on the network run in a network namespace of their own.
    packages+=(iproute2)
    # The MIDI extra's python-rtmidi loads ALSA's library.
    packages+=(libasound2)
    # Several PCs in lockstep: a real chrony server and client on loopback (docs/sync.md);
    # ImageMagick's import and grim take screenshots of several outputs (Xvfb, cage).
    packages+=(chrony imagemagick grim)
    ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: $python is missing or older than 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}"
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable ".$extra"
echo "bootstrap: ready in .venv ($(.venv/bin/python --version))"
