#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU: what it has and what the GPU path does on it, in
# one JSON report (docs/gpu.md, "The first GPU"). The checks take at most about 5 minutes.
#
#   scripts/gpu-check.sh [--no-install] [--python PYTHON] [--out DIR] [SHOW]
#
# Where PyPI answers (and without --no-install), what the GPU rungs need goes into a virtual
# environment ($GPU_VENV, default ~/.cache/installation/gpu-venv): this checkout, pytest,
# ONNX Runtime's CUDA build for the driver's CUDA with CUDA and cuDNN (all from PyPI), and
# TensorRT where NVIDIA's index answers. Elsewhere it installs nothing and runs this checkout
# with PYTHON (default python3) and whatever is on its path. Then `installation gpu-check`
# writes DIR/gpu-check.json (default out/gpu-check): every phase ok, failed with its reason,
# or skipped with why; this script's own output is kept in DIR/gpu-check.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

usage() { echo "usage: $0 [--no-install] [--python PYTHON] [--out DIR] [SHOW]"; }
install=1
python=python3
out=out/gpu-check
show=()
while (($#)); do
    case $1 in
        --no-install) install=0 ;;
        --python) python=${2:?--python needs a command}; shift ;;
        --out) out=${2:?--out needs a folder}; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *) show=("$1") ;;
    esac
    shift
done
mkdir -p "$out" || exit 2
report=$out/gpu-check.json
rm -f "$report"
exec > >(tee "$out/gpu-check.log") 2>&1

say() { echo "gpu-check: $*"; }

# Never trusted to return: nvidia-smi hangs on a sick GPU.
smi=$(timeout 20 nvidia-smi 2>&1)
say "nvidia-smi (exit $?):"
echo "$smi"
driver=$(awk '/Kernel Module/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+[.][0-9]/) { print $i; exit } }' \
    /proc/driver/nvidia/version 2>/dev/null)
say "NVIDIA driver: ${driver:-none loaded}"
say "newest CUDA the driver runs: $(echo "$smi" | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p')"

# What the GPU rungs need, into a venv, from PyPI (and NVIDIA's index for TensorRT).
install_gpu_venv() {
    local venv=${GPU_VENV:-$HOME/.cache/installation/gpu-venv} cuda=12 project=. index=()
    [ -n "$driver" ] && [ "${driver%%.*}" -ge 580 ] && cuda=13
    say "PyPI answers: installing into $venv (ONNX Runtime for CUDA $cuda)"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || return 1
    local pip=(timeout 900 "$venv/bin/python" -m pip --quiet --retries 2 --timeout 30)
    if timeout 30 "$venv/bin/python" -m pip index versions --retries 0 --timeout 20 \
        --index-url https://pypi.nvidia.com "tensorrt-cu$cuda-libs" >/dev/null 2>&1; then
        project=".[gpu-cuda$cuda]"
        index=(--extra-index-url https://pypi.nvidia.com)
    else
        say "NVIDIA's index (https://pypi.nvidia.com) does not answer: no TensorRT"
    fi
    "${pip[@]}" install "${index[@]}" -e "$project" pytest onnx || return 1
    # One module in two packages: both go, then exactly one comes back, and must import.
    "${pip[@]}" uninstall --yes onnxruntime onnxruntime-gpu
    if ! "${pip[@]}" install -r "deploy/onnxruntime-gpu-cuda$cuda.txt" ||
        ! "$venv/bin/python" -c 'import onnxruntime; onnxruntime.InferenceSession'; then
        say "ONNX RUNTIME'S CUDA BUILD DID NOT INSTALL OR IMPORT: THE CPU BUILD INSTEAD"
        "${pip[@]}" uninstall --yes onnxruntime onnxruntime-gpu
        "${pip[@]}" install onnxruntime || return 1
    fi
    python=$venv/bin/python
}

if ((install)) && timeout 30 "$python" -m pip index versions --retries 0 --timeout 10 pip \
    >/dev/null 2>&1; then
    install_gpu_venv || say "installing failed (see above): measuring with $python as it is"
else
    say "installing nothing: this checkout with $python and what is on its path"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1

# Each phase has its own limit inside; this one is for the whole, should the parent hang.
timeout -k 10 330 "$python" -m installation gpu-check "${show[@]}" --out "$report" \
    2>"$out/gpu-check.stderr"
status=$?
cat "$out/gpu-check.stderr" >&2
if [ ! -s "$report" ]; then
    # It died before its first report (Python or numpy missing, say): one all the same.
    reason=$(grep . "$out/gpu-check.stderr" | tail -n 1 | tr -d '\000-\037' | sed 's/[\\"]/\\&/g')
    printf '{"schema": 1, "phases": {"gpu-check": {"status": "failed", "reason": "exit %s: %s"}},
 "rungs": []}\n' "$status" "$reason" >"$report"
fi
say "report: $report (exit $status)"
exit "$status"
