#!/bin/sh
# Set up (or remove) the installation on a fresh Debian 12 / Ubuntu 22.04+ exhibition PC.
#
#   sudo deploy/setup.sh SHOW [--gpu [--wheels DIR]] [SYNC]   install or update, then reboot
#   sudo deploy/setup.sh SYNC                                 set up this PC's clock only
#   sudo deploy/setup.sh --uninstall                          remove what this script installed
#
# SHOW is a show folder (show.toml and the bundle folder it names, relative to it), or a show
# file (e.g. shows/default.toml), installed as show.toml with its bundle copied next to it.
# --gpu installs ONNX Runtime's CUDA build with CUDA, cuDNN and onnx (FP16 variants), all from
# PyPI: the CUDA 13 build on NVIDIA driver 580 or newer, else the CUDA 12 build (driver 525 or
# newer). TensorRT comes only from NVIDIA's package index, where that can be reached, or from
# --wheels DIR, a folder of wheels brought along (pip download them elsewhere: docs/gpu.md);
# with it, the show's TensorRT engines are built for this GPU. nvidia_uvm is loaded at boot
# for the sandboxed unit.
# SYNC, for several PCs in frame lockstep (docs/sync.md): --sync-server [SUBNET] makes this PC
# the room's time server with chrony (SUBNET, e.g. 10.0.0.0/24, limits whom it answers),
# --sync-client ADDRESS makes this PC's clock follow the time server at ADDRESS.
# Python 3.11 or newer is needed; PYTHON=python3.11 names another interpreter than python3.
# What each step does and why: docs/kiosk.md. Safe to run again: every step is idempotent.
set -eu

PREFIX=/opt/installation
USER_NAME=installation
UNITS="installation.service installation-display.service"
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
NVIDIA_INDEX=https://pypi.nvidia.com
# Before the show starts: nvidia_uvm loaded at boot, its device files made (docs/gpu.md).
NVIDIA_UNIT=installation-nvidia.service
MODULES_CONF=/etc/modules-load.d/installation-nvidia.conf
# ONNX Runtime wheels are downloaded here before the installed one is removed.
WHEELHOUSE=$PREFIX/wheels.tmp
# --sync-server/--sync-client: chrony's settings for the room, beside Debian's own (conf.d).
CHRONY_CONF=/etc/chrony/conf.d/installation.conf

die() { echo "setup: $*" >&2; exit 2; }
say() { echo "setup: $*"; }

# Before anything is installed: Ubuntu 22.04's python3 is 3.10, too old for the program.
check_python() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' && return
    die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'),\
 3.11 or newer is needed. On Ubuntu 22.04: apt-get install python3.11 python3.11-venv\
 python3.11-dev, then run again as PYTHON=python3.11 $0 ..."
}
# The clock alone (--sync-server/--sync-client without a show) needs no Python.
case ${1:-} in
    --sync-*) ;;
    *) if command -v "$PYTHON" >/dev/null; then check_python; fi ;;
esac

# systemctl enable and set-default work in a chroot or an image; reloading needs a running
# systemd, which such an image does not have.
reload_systemd() {
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
    fi
}

uninstall() {
    for unit in $UNITS $NVIDIA_UNIT; do
        systemctl disable --now "$unit" 2>/dev/null || true
        rm -f "/etc/systemd/system/$unit"
    done
    reload_systemd
    rm -rf "$PREFIX" /var/cache/installation /var/lib/installation
    if id "$USER_NAME" >/dev/null 2>&1; then
        userdel "$USER_NAME"
    fi
    rm -f /usr/local/bin/installation "$MODULES_CONF"
    if [ -f "$CHRONY_CONF" ]; then
        rm -f "$CHRONY_CONF"
        if [ -d /run/systemd/system ]; then
            systemctl try-restart chrony || true
        fi
        say "chrony stays installed, with Debian's settings ($CHRONY_CONF removed)"
    fi
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

# chrony keeps the clocks of the room's PCs together: show time is read from them. The
# drop-in from deploy/chrony/ is checked the way chronyd reads it (-p: every file, parsed).
sync_clock() {
    say "clock: chrony as the room's time $SYNC${SYNC_WITH:+ ($SYNC_WITH)}, in $CHRONY_CONF"
    apt-get install -y --no-install-recommends chrony
    mkdir -p "$(dirname "$CHRONY_CONF")"
    sed -e "s|@SUBNET@|$SYNC_WITH|" -e "s|@ADDRESS@|$SYNC_WITH|" -e 's/[[:space:]]*$//' \
        "$HERE/chrony/installation-$SYNC.conf" >"$CHRONY_CONF"
    if ! CHECK=$(chronyd -p 2>&1); then
        rm -f "$CHRONY_CONF"
        die "chrony refuses the setting: $(echo "$CHECK" | sed -n 's/.*Fatal error : //p')"
    fi
    echo "$CHECK" | grep -qxF "$(tail -n 1 "$CHRONY_CONF")" ||
        die "chrony does not read $(dirname "$CHRONY_CONF") (see /etc/chrony/chrony.conf)"
    systemctl enable chrony
    if [ -d /run/systemd/system ]; then
        systemctl restart chrony
    fi
}

SHOW=
USAGE="usage: $0 [SHOW_FOLDER|SHOW_FILE [--gpu [--wheels DIR]]]\
 [--sync-server [SUBNET] | --sync-client ADDRESS] | --uninstall"
case ${1:-} in
    --sync-*) ;;
    "") die "$USAGE" ;;
    *)
        SHOW=$1
        shift
        ;;
esac
GPU=
WHEELS=
SYNC=
SYNC_WITH=
while [ $# -gt 0 ]; do
    case $1 in
        --gpu) GPU=--gpu ;;
        --sync-server | --sync-client)
            [ -z "$SYNC" ] || die "--sync-server and --sync-client: one or the other"
            SYNC=${1#--sync-}
            case ${2:-} in
                "" | --*)
                    [ "$SYNC" = server ] || die "--sync-client needs the time server's address"
                    ;;
                *)
                    SYNC_WITH=$2
                    shift
                    ;;
            esac
            ;;
        --wheels)
            [ $# -ge 2 ] && [ -d "$2" ] || die "--wheels needs a folder of wheels"
            WHEELS=$(cd "$2" && pwd)
            shift
            ;;
        *) die "unknown option $1" ;;
    esac
    shift
done
[ -z "$WHEELS" ] || [ -n "$GPU" ] || die "--wheels goes with --gpu"
[ -n "$SHOW" ] || [ -z "$GPU" ] || die "--gpu goes with a show"
case $SYNC:$SYNC_WITH in
    server:*[!0-9A-Fa-f.:/]*) die "--sync-server $SYNC_WITH: not an address or subnet\
 (e.g. 10.0.0.0/24)" ;;
    client:*[!0-9A-Za-z.:-]*) die "--sync-client $SYNC_WITH: not an address or host name\
 (e.g. 10.0.0.5)" ;;
esac
if [ -z "$SHOW" ]; then
    need_root
    apt-get update
    sync_clock
    say "done. Check with: chronyc tracking (and on the room's PCs: installation status)"
    exit 0
fi
if [ -d "$SHOW" ]; then
    [ -f "$SHOW/show.toml" ] || die "$SHOW/show.toml not found: a show folder holds show.toml\
 and its bundle; or name a show file (e.g. shows/default.toml)"
elif [ ! -f "$SHOW" ]; then
    die "$SHOW not found: name a show folder (with show.toml) or a show file"
fi
need_root

say "packages: Python, cage (the kiosk compositor) with Xwayland, the Wayland, EGL and Mesa"
say "  libraries SDL draws with, systemd-python's build needs, kill (procps) for reloads,"
say "  cec-client and wlr-randr to switch the screen with the opening hours ([hours] screen)"
apt-get update
apt-get install -y --no-install-recommends \
    python3 python3-venv python3-dev gcc pkg-config libsystemd-dev \
    cage xwayland libwayland-client0 libwayland-egl1 libwayland-cursor0 libxkbcommon0 \
    libegl1 libegl-mesa0 libgles2 libgl1 libgl1-mesa-dri \
    cec-utils wlr-randr \
    procps rsync
check_python
# The clock before the long steps: a setting chrony refuses stops here, with nothing half done.
if [ -n "$SYNC" ]; then
    sync_clock
fi

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
# pip stages every download and unpacked wheel in TMPDIR. /tmp is often a small tmpfs (Debian
# 13, containers) and the CUDA wheels of --gpu take gigabytes: stage them on the disk instead.
export TMPDIR=$PREFIX/pip.tmp
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
PIP="$PREFIX/venv/bin/pip"
"$PIP" install --quiet --upgrade pip
# The NVIDIA driver's release (e.g. 580.65.06) from its kernel module, empty without one
# (then awk fails on the missing file, which must not end the script under `set -e`).
# Not nvidia-smi: after a driver update without a reboot it fails, and on a sick GPU it hangs.
DRIVER=$(awk '/Kernel Module/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+[.][0-9]/) { print $i; exit } }' \
    /proc/driver/nvidia/version 2>/dev/null || true)
# Which ONNX Runtime, and the extra (TensorRT, cuda-python) for the same CUDA.
ORT="onnxruntime"
CUDA=
if [ "$GPU" = "--gpu" ]; then
    if [ -z "$DRIVER" ]; then
        CUDA=12
        say "no NVIDIA driver loaded: ONNX Runtime's CUDA 12 build, which runs on the most"
        say "  drivers (525 or newer); run setup.sh --gpu again once the driver is in"
    elif [ "${DRIVER%%.*}" -ge 580 ]; then
        CUDA=13
    elif [ "${DRIVER%%.*}" -ge 525 ]; then
        CUDA=12
    else
        say "NVIDIA driver $DRIVER is older than 525, which CUDA 12 needs: ONNX Runtime runs"
        say "  on the CPU. Install driver 580 or newer and run setup.sh --gpu again."
    fi
fi
# Every pip below also looks in the wheels brought along.
if [ -n "$WHEELS" ]; then
    export PIP_FIND_LINKS="$WHEELS"
fi
if [ -n "$CUDA" ]; then
    ORT="-r $PREFIX/app/deploy/onnxruntime-gpu-cuda$CUDA.txt"
    say "GPU: driver ${DRIVER:-none}, ONNX Runtime's CUDA $CUDA build with CUDA and cuDNN from PyPI"
    # TensorRT's libraries come only from NVIDIA's index (its PyPI packages are placeholders
    # that download from there), or from the wheels brought along. The index is asked once,
    # quickly, before pip would spend minutes retrying it.
    if [ -n "$WHEELS" ]; then
        "$PIP" install --quiet "$PREFIX/app[kiosk,gpu-cuda$CUDA]"
    elif "$PIP" index versions --retries 0 --timeout 20 --index-url "$NVIDIA_INDEX" \
        "tensorrt-cu$CUDA-libs" >/dev/null 2>&1; then
        "$PIP" install --quiet --extra-index-url "$NVIDIA_INDEX" "$PREFIX/app[kiosk,gpu-cuda$CUDA]"
    else
        "$PIP" install --quiet "$PREFIX/app[kiosk]"
        say "TensorRT NOT installed: NVIDIA's package index ($NVIDIA_INDEX) did not answer."
        say "  The show runs on ONNX Runtime's CUDA provider; for TensorRT run setup.sh --gpu"
        say "  again with access to it, or with --wheels DIR (docs/gpu.md)."
    fi
else
    "$PIP" install --quiet "$PREFIX/app[kiosk]"
fi

# onnxruntime and onnxruntime-gpu are one module in two packages: installing one over the other
# and uninstalling either deletes files the other needs. So the wheels come first (a failed
# download removes nothing), then both packages go, then exactly one comes back, whole, and
# must import; if the CUDA build does not, the CPU build comes back instead.
ort_works() {
    "$PREFIX/venv/bin/python" -c 'import onnxruntime; onnxruntime.InferenceSession; print(
        "setup: ONNX Runtime", onnxruntime.__version__,
        ", ".join(onnxruntime.get_available_providers()))'
}
rm -rf "$WHEELHOUSE"
# shellcheck disable=SC2086 # ORT is "onnxruntime" or "-r FILE": split on purpose
if ! { "$PIP" download --quiet --dest "$WHEELHOUSE" $ORT &&
    "$PIP" download --quiet --no-deps --dest "$WHEELHOUSE" onnxruntime; }; then
    die "ONNX Runtime could not be downloaded (see above: PyPI not answering, or the disk full)"
fi
"$PIP" uninstall --quiet --yes onnxruntime onnxruntime-gpu 2>/dev/null || true
# shellcheck disable=SC2086
if ! { "$PIP" install --quiet --no-index --find-links "$WHEELHOUSE" $ORT && ort_works; }; then
    [ "$ORT" = onnxruntime ] && die "ONNX Runtime does not install or import (see above)"
    say "ONNX RUNTIME'S CUDA BUILD DID NOT INSTALL OR IMPORT (see above): THE CPU BUILD INSTEAD"
    "$PIP" uninstall --quiet --yes onnxruntime onnxruntime-gpu 2>/dev/null || true
    if ! { "$PIP" install --quiet --no-index --find-links "$WHEELHOUSE" onnxruntime && ort_works; }
    then
        die "ONNX Runtime does not import even as the CPU build (see above)"
    fi
fi
rm -rf "$WHEELHOUSE" "$TMPDIR"
unset TMPDIR
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
    say "no NVIDIA GPU here (/dev/nvidiactl): TensorRT engines NOT built, nor FP16 variants;"
    say "  run setup.sh --gpu again on the exhibition PC, with its driver loaded"
elif [ -n "$CUDA" ]; then
    # Without TensorRT it still makes the FP16 variants the ONNX Runtime CUDA rung runs.
    say "FP16 variants and TensorRT engines for this GPU (minutes; as $USER_NAME, where the"
    say "  service reads them)"
    runuser -u "$USER_NAME" -- env XDG_CACHE_HOME="$CACHE" CUDA_CACHE_PATH="$CACHE/nvidia" \
        "$PREFIX/venv/bin/installation" build-engines "$PREFIX/show/show.toml"
fi
runuser -u "$USER_NAME" -- env XDG_CACHE_HOME="$CACHE" \
    "$PREFIX/venv/bin/installation" check "$PREFIX/show/show.toml"

say "systemd units"
for unit in $UNITS; do
    install -m 0644 "$HERE/$unit" "/etc/systemd/system/$unit"
done
ENABLE=$UNITS
# The show's sandbox admits /dev/nvidia-uvm only if nvidia_uvm is loaded when the show starts,
# and cannot load it itself (NoNewPrivileges= stops CUDA's setuid nvidia-modprobe): so the
# module is loaded at boot, and a unit makes the device files before the show starts.
if [ -n "$CUDA" ]; then
    say "nvidia_uvm loaded at boot ($MODULES_CONF), device files by $NVIDIA_UNIT"
    echo "# deploy/setup.sh --gpu: CUDA's unified memory module, for the sandboxed show" \
        >"$MODULES_CONF"
    echo nvidia_uvm >>"$MODULES_CONF"
    install -m 0644 "$HERE/$NVIDIA_UNIT" "/etc/systemd/system/$NVIDIA_UNIT"
    ENABLE="$ENABLE $NVIDIA_UNIT"
    # The unit runs only where the driver brought it (a condition in the unit): say so here,
    # not weeks later as a show on the CPU.
    if ! [ -x /usr/bin/nvidia-modprobe ]; then
        say "NO /usr/bin/nvidia-modprobe: $NVIDIA_UNIT will not run, and /dev/nvidia-uvm"
        say "  exists only if the driver's udev rules make it; apt-get install nvidia-modprobe"
    fi
else
    systemctl disable "$NVIDIA_UNIT" 2>/dev/null || true
    rm -f "$MODULES_CONF" "/etc/systemd/system/$NVIDIA_UNIT"
fi
reload_systemd
systemd-analyze verify /etc/systemd/system/installation.service
# shellcheck disable=SC2086 # a list of units
systemctl enable $ENABLE

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
