#!/bin/sh
# Set up (or remove) the installation on a fresh Debian 12 / Ubuntu 22.04+ exhibition PC.
#
#   sudo deploy/setup.sh SHOW [--gpu]    install or update, then reboot
#   sudo deploy/setup.sh --uninstall     remove everything this script installed
#
# SHOW is a show folder (show.toml and the bundle folder it names, relative to it), or a show
# file (e.g. shows/default.toml), installed as show.toml with its bundle copied next to it.
# --gpu installs ONNX Runtime's CUDA 12 build (NVIDIA driver 525 or newer) and, where NVIDIA's
# package index can be reached, TensorRT, then builds the show's TensorRT engines for this GPU.
# Python 3.11 or newer is needed; PYTHON=python3.11 names another interpreter than python3.
# What each step does and why: docs/kiosk.md. Safe to run again: every step is idempotent.
set -eu

PREFIX=/opt/installation
USER_NAME=installation
UNITS="installation.service installation-display.service"
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
# The last ONNX Runtime CUDA build on PyPI for CUDA 12 is 1.26; 1.27 and later need CUDA 13.
ORT_GPU="onnxruntime-gpu>=1.17,<1.27"
NVIDIA_INDEX=https://pypi.nvidia.com

die() { echo "setup: $*" >&2; exit 2; }
say() { echo "setup: $*"; }

# Before anything is installed: Ubuntu 22.04's python3 is 3.10, too old for the program.
check_python() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' && return
    die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'),\
 3.11 or newer is needed. On Ubuntu 22.04: apt-get install python3.11 python3.11-venv\
 python3.11-dev, then run again as PYTHON=python3.11 $0 ..."
}
if command -v "$PYTHON" >/dev/null; then
    check_python
fi

# systemctl enable and set-default work in a chroot or an image; reloading needs a running
# systemd, which such an image does not have.
reload_systemd() {
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
}

uninstall() {
    for unit in $UNITS; do
        systemctl disable --now "$unit" 2>/dev/null || true
        rm -f "/etc/systemd/system/$unit"
    done
    reload_systemd
    rm -rf "$PREFIX" /var/cache/installation /var/lib/installation
    if id "$USER_NAME" >/dev/null 2>&1; then
        userdel "$USER_NAME"
    fi
    rm -f /usr/local/bin/installation
    say "removed. The boot target stays multi-user.target; for a desktop again:"
    say "  systemctl set-default graphical.target"
    say "consoleblank=0 stays on the kernel command line (/etc/default/grub) if it was added."
}

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"; }

if [ "${1:-}" = "--uninstall" ]; then
    need_root
    uninstall
    exit 0
fi

SHOW=${1:-}
GPU=${2:-}
[ -n "$SHOW" ] || die "usage: $0 SHOW_FOLDER|SHOW_FILE [--gpu] | --uninstall"
if [ -d "$SHOW" ]; then
    [ -f "$SHOW/show.toml" ] || die "$SHOW/show.toml not found: a show folder holds show.toml\
 and its bundle; or name a show file (e.g. shows/default.toml)"
elif [ ! -f "$SHOW" ]; then
    die "$SHOW not found: name a show folder (with show.toml) or a show file"
fi
[ -z "$GPU" ] || [ "$GPU" = "--gpu" ] || die "unknown option $GPU"
need_root

say "packages: Python, cage (the kiosk compositor) with Xwayland, the Wayland, EGL and Mesa"
say "  libraries SDL draws with, systemd-python's build needs, kill (procps) for reloads"
apt-get update
apt-get install -y --no-install-recommends \
    python3 python3-venv python3-dev gcc pkg-config libsystemd-dev \
    cage xwayland libwayland-client0 libwayland-egl1 libwayland-cursor0 libxkbcommon0 \
    libegl1 libegl-mesa0 libgles2 libgl1 libgl1-mesa-dri \
    procps rsync
check_python

say "user $USER_NAME: no login, no home, in the groups that reach the GPU and input"
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$USER_NAME"
fi
# udev makes render and input; a system without it gets them here, as the units name them.
for group in video render input; do
    getent group "$group" >/dev/null || groupadd --system "$group"
    usermod -a -G "$group" "$USER_NAME"
done

say "program and virtual environment in $PREFIX"
mkdir -p "$PREFIX"
# The program only: not a developer's virtual environment (GBs with torch) or build output.
rsync -a --delete --exclude /.git --exclude /.venv --exclude /venv --exclude /build \
    --exclude /dist --exclude /out --exclude '*.egg-info' --exclude __pycache__ \
    --exclude .pytest_cache --exclude .ruff_cache --exclude .hypothesis \
    "$PROJECT/" "$PREFIX/app/"
[ -d "$PREFIX/venv" ] || "$PYTHON" -m venv "$PREFIX/venv"
PIP="$PREFIX/venv/bin/pip"
"$PIP" install --quiet --upgrade pip
"$PIP" install --quiet "$PREFIX/app[kiosk]"
# onnxruntime and onnxruntime-gpu are one module in two packages: installing one over the other
# and uninstalling either deletes files the other needs. So both go, then exactly one comes
# back, whole.
ORT=onnxruntime
if [ "$GPU" = "--gpu" ]; then
    ORT=$ORT_GPU
    # TensorRT's libraries come only from NVIDIA's index: asked once, quickly, before pip
    # would spend minutes retrying it. Without it, cuda-python alone (as the gpu extra pins it).
    if "$PIP" index versions --retries 0 --timeout 20 --index-url "$NVIDIA_INDEX" \
        tensorrt-cu12-libs >/dev/null 2>&1; then
        "$PIP" install --quiet --extra-index-url "$NVIDIA_INDEX" "$PREFIX/app[kiosk,gpu]"
    else
        "$PIP" install --quiet "cuda-python>=12.9.1,<13"
        say "TensorRT NOT installed: NVIDIA's package index ($NVIDIA_INDEX) did not answer."
        say "  The show runs on ONNX Runtime's CUDA provider; run setup.sh --gpu again with"
        say "  internet access to add TensorRT (docs/gpu.md)."
    fi
fi
"$PIP" uninstall --quiet --yes onnxruntime onnxruntime-gpu 2>/dev/null || true
"$PIP" install --quiet "$ORT"
"$PREFIX/venv/bin/python" -c 'import onnxruntime; print("setup: ONNX Runtime",
    onnxruntime.__version__, ", ".join(onnxruntime.get_available_providers()))'
# So that staff can type `installation status` in any shell.
ln -sf "$PREFIX/venv/bin/installation" /usr/local/bin/installation

say "show from $SHOW in $PREFIX/show"
if [ -d "$SHOW" ]; then
    rsync -a --delete "$SHOW/" "$PREFIX/show/"
else
    # A show file: it goes in as show.toml, the bundle it names next to it, as bundle/.
    BUNDLE=$("$PREFIX/venv/bin/python" - "$SHOW" <<'EOF'
import sys
from pathlib import Path

from installation.errors import UserError
from installation.score.show import load_show

try:
    print(load_show(Path(sys.argv[1])).bundle.resolve())
except UserError as error:
    sys.exit(f"setup: {error}")
EOF
    ) || exit 2
    mkdir -p "$PREFIX/show"
    sed 's|^bundle[[:space:]]*=.*|bundle = "bundle"|' "$SHOW" >"$PREFIX/show/show.toml"
    # Whatever an earlier show folder left there goes.
    find "$PREFIX/show" -mindepth 1 -maxdepth 1 ! -name show.toml ! -name bundle \
        -exec rm -rf {} +
    rsync -a --delete "$BUNDLE/" "$PREFIX/show/bundle/"
fi
chown -R root:root "$PREFIX"
chmod -R u=rwX,go=rX "$PREFIX"

# The unit's CacheDirectory=; made here too, so the engines can be built before the first start.
CACHE=/var/cache/installation
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$CACHE"
if [ "$GPU" = "--gpu" ] && ! [ -e /dev/nvidiactl ]; then
    say "no NVIDIA GPU here (/dev/nvidiactl): TensorRT engines NOT built; run setup.sh --gpu"
    say "  again on the exhibition PC, with its driver loaded"
elif [ "$GPU" = "--gpu" ] && ! "$PREFIX/venv/bin/python" -c 'import tensorrt' 2>/dev/null; then
    say "TensorRT engines NOT built: TensorRT is not installed (see above)"
elif [ "$GPU" = "--gpu" ]; then
    say "TensorRT engines for this GPU (minutes; as $USER_NAME, where the service reads them)"
    runuser -u "$USER_NAME" -- env XDG_CACHE_HOME="$CACHE" CUDA_CACHE_PATH="$CACHE/nvidia" \
        "$PREFIX/venv/bin/installation" build-engines "$PREFIX/show/show.toml"
fi
runuser -u "$USER_NAME" -- env XDG_CACHE_HOME="$CACHE" \
    "$PREFIX/venv/bin/installation" check "$PREFIX/show/show.toml"

say "systemd units"
for unit in $UNITS; do
    install -m 0644 "$HERE/$unit" "/etc/systemd/system/$unit"
done
reload_systemd
systemd-analyze verify /etc/systemd/system/installation.service
systemctl enable $UNITS

say "boot to the console, not a desktop: the compositor takes the screen"
systemctl set-default multi-user.target

say "no console blanking (the screen must never go dark by itself)"
if [ -f /etc/default/grub ] && ! grep -q 'consoleblank=0' /etc/default/grub; then
    sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT="\(.*\)"/GRUB_CMDLINE_LINUX_DEFAULT="\1 consoleblank=0"/' \
        /etc/default/grub
    if command -v update-grub >/dev/null; then
        update-grub
    fi
fi

say "done. Reboot; then check with: installation status, journalctl -u installation"
