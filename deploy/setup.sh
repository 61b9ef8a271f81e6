#!/bin/sh
# Set up (or remove) the installation on a fresh Debian 12 / Ubuntu 22.04+ exhibition PC.
#
#   sudo deploy/setup.sh SHOW_FOLDER [--gpu]    install or update, then reboot
#   sudo deploy/setup.sh --uninstall            remove everything this script installed
#
# SHOW_FOLDER holds show.toml and whatever it names (the bundle folder, relative to it).
# --gpu installs TensorRT and ONNX Runtime's CUDA build (NVIDIA driver needed, and internet
# for NVIDIA's package index), then builds the show's TensorRT engines for this GPU.
# What each step does and why: docs/kiosk.md. Safe to run again: every step is idempotent.
set -eu

PREFIX=/opt/installation
USER_NAME=installation
UNITS="installation.service installation-display.service"
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")

die() { echo "setup: $*" >&2; exit 2; }
say() { echo "setup: $*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"

uninstall() {
    for unit in $UNITS; do
        systemctl disable --now "$unit" 2>/dev/null || true
        rm -f "/etc/systemd/system/$unit"
    done
    systemctl daemon-reload
    rm -rf "$PREFIX" /var/cache/installation
    if id "$USER_NAME" >/dev/null 2>&1; then
        userdel "$USER_NAME"
    fi
    rm -f /usr/local/bin/installation
    say "removed. The boot target stays multi-user.target; for a desktop again:"
    say "  systemctl set-default graphical.target"
    say "consoleblank=0 stays on the kernel command line (/etc/default/grub) if it was added."
}

if [ "${1:-}" = "--uninstall" ]; then
    uninstall
    exit 0
fi

SHOW=${1:-}
GPU=${2:-}
[ -n "$SHOW" ] || die "usage: $0 SHOW_FOLDER [--gpu] | --uninstall"
[ -f "$SHOW/show.toml" ] || die "$SHOW/show.toml not found"
[ -z "$GPU" ] || [ "$GPU" = "--gpu" ] || die "unknown option $GPU"

say "packages: Python, cage (the kiosk compositor), systemd-python's build needs"
apt-get update
apt-get install -y --no-install-recommends \
    python3 python3-venv python3-dev gcc pkg-config libsystemd-dev \
    cage rsync

say "user $USER_NAME: no login, no home, in the groups that reach the GPU and input"
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$USER_NAME"
fi
for group in video render input; do
    if getent group "$group" >/dev/null; then
        usermod -a -G "$group" "$USER_NAME"
    fi
done

say "program and virtual environment in $PREFIX"
mkdir -p "$PREFIX"
rsync -a --delete --exclude .git --exclude '__pycache__' --exclude '*.egg-info' \
    "$PROJECT/" "$PREFIX/app/"
[ -d "$PREFIX/venv" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/venv/bin/pip" install --quiet "$PREFIX/app[kiosk]"
if [ "$GPU" = "--gpu" ]; then
    "$PREFIX/venv/bin/pip" install --quiet "$PREFIX/app[kiosk,gpu]"
    "$PREFIX/venv/bin/pip" uninstall --quiet --yes onnxruntime
    "$PREFIX/venv/bin/pip" install --quiet onnxruntime-gpu
fi
# So that staff can type `installation status` in any shell.
ln -sf "$PREFIX/venv/bin/installation" /usr/local/bin/installation

say "show from $SHOW in $PREFIX/show"
rsync -a --delete "$SHOW/" "$PREFIX/show/"
chown -R root:root "$PREFIX"
chmod -R u=rwX,go=rX "$PREFIX"

# The unit's CacheDirectory=; made here too, so the engines can be built before the first start.
CACHE=/var/cache/installation
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$CACHE"
if [ "$GPU" = "--gpu" ]; then
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
systemctl daemon-reload
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
