#!/usr/bin/env bash
# The GPU figures of the paper-scale work, in one script (issue: paper scale on one GPU).
#
#   bash benchmarks/gpu.sh wheels          # here, with pip access: the wheels a bare GPU image lacks -> .whl/
#   bash benchmarks/gpu.sh run OUT [STEP..] # on the GPU machine: each step's log in OUT/NN-step.log
#
# Steps of `run` (default: all, in this order):
#   env        nvidia-smi, torch/CUDA versions, device name
#   tests      the device-parametrised tests (ISP parity, demosaicing, corruptions) on cpu and cuda
#   bench      rawdrift bench isp --device all (torch CPU and CUDA vs the numpy reference)
#   synthesis  benchmarks/synthesis.py --profile: one grid cell timed, the full grid extrapolated
#   forensics  rawdrift forensics at the preset, timed
#   adjustment rawdrift adjustment at the preset, timed
#   grid       (not in the default list) the full synthesis grid at the preset, timed. Its folder,
#              GRID_OUT (default runs/gpu-synthesis-PRESET), lies outside OUT so that a run cut
#              off by a time limit resumes when the step is run again; summary.md is copied to OUT.
#
# Environment: PRESET (default paper), DEVICE (default cuda), DATASET (default
# synthetic-microscopy), PY (default python3). The repository is used from source
# (PYTHONPATH), so nothing needs installing besides the wheels. Where the machine
# already has torch, numpy, scipy and scikit-image (the usual GPU images do), only
# colour-demosaicing, colour-science and rawpy are missing; `wheels` fetches them for
# CPython 3.12 on x86-64 Linux (set WHEEL_PY for another version).
#
# With DEVICE=cpu PRESET=ci the same steps run on a laptop in a few minutes, which is how
# the script itself is checked (tests/test_bench.py runs its env step).
set -euo pipefail
CALLER_DIR=$PWD  # a relative OUT is taken from where the script was called
cd "$(dirname "$0")/.."

PY=${PY:-python3}
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
DATASET=${DATASET:-synthetic-microscopy}
# The pins of the packages a GPU image lacks, from the lock file (one source of versions).
mapfile -t WHEELS < <(grep -E '^(colour-demosaicing|colour-science|rawpy)==' requirements/lock.txt)
ALL_STEPS=(env tests bench synthesis forensics adjustment)
OPTIONAL_STEPS=(grid)

usage() { sed -n '2,5p' "$0" >&2; exit 2; }

wheels() {
    local py=${WHEEL_PY:-3.12}
    [ ${#WHEELS[@]} -eq 3 ] || { echo "requirements/lock.txt: expected pins of colour-demosaicing, colour-science and rawpy, found: ${WHEELS[*]}" >&2; exit 1; }
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.whl/' >> .git/info/exclude; }
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    ls -1 .whl
    echo "carry .whl to the GPU machine; \`run\` installs what is there into /tmp/site"
}

step() {  # step NAME COMMAND...: run, log to OUT/NN-NAME.log with its wall time, keep going on failure
    local name=$1; shift
    local log
    log=$(printf '%s/%02d-%s.log' "$OUT" "$N" "$name")
    N=$((N + 1))
    echo "== $name: $*" | tee "$log"
    local t0=$SECONDS rc=0
    "$@" >> "$log" 2>&1 || rc=$?
    echo "== $name: exit $rc, $((SECONDS - t0)) s" | tee -a "$log"
    [ "$rc" -eq 0 ] || FAILED+=("$name")
}

env_report() {
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
    "$PY" - <<'EOF'
import os, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(), "cpus", os.cpu_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"{p.total_memory / 2**30:.1f} GiB", p.multi_processor_count, "SMs")
import rawdrift
print("rawdrift", rawdrift.__version__, "from", os.path.dirname(rawdrift.__file__))
EOF
}

run() {
    [ $# -ge 1 ] || usage
    OUT=$1; shift
    [[ $OUT == /* ]] || OUT=$CALLER_DIR/$OUT
    mkdir -p "$OUT"
    local steps=("$@")
    [ ${#steps[@]} -gt 0 ] || steps=("${ALL_STEPS[@]}")
    for s in "${steps[@]}"; do
        [[ " ${ALL_STEPS[*]} ${OPTIONAL_STEPS[*]} " == *" $s "* ]] ||
            { echo "unknown step: $s (one of: ${ALL_STEPS[*]} ${OPTIONAL_STEPS[*]})" >&2; exit 2; }
    done
    # The carried wheels, only where this Python lacks the packages they hold.
    if ! "$PY" -c "import colour_demosaicing, rawpy" 2> /dev/null && compgen -G ".whl/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
    fi
    export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
    export RAWDRIFT_CACHE=${RAWDRIFT_CACHE:-$PWD/.cache/rawdrift}
    N=0
    FAILED=()
    local rd=("$PY" -m rawdrift.cli)
    for s in "${steps[@]}"; do
        case $s in
            env) step env env_report ;;
            tests) step tests "$PY" -m pytest -q -p no:cacheprovider tests/isp/test_pipeline.py \
                       tests/isp/test_demosaic.py tests/drift/test_corruptions.py ;;
            bench) step bench "${rd[@]}" bench isp --device all ;;
            synthesis) step synthesis "$PY" benchmarks/synthesis.py --dataset "$DATASET" --preset "$PRESET" \
                           --device "$DEVICE" --profile ;;
            forensics) step forensics "${rd[@]}" forensics --dataset "$DATASET" --preset "$PRESET" \
                           --device "$DEVICE" --quiet --out "$OUT/forensics" ;;
            adjustment) step adjustment "${rd[@]}" adjustment --dataset "$DATASET" --preset "$PRESET" \
                            --device "$DEVICE" --quiet --out "$OUT/adjustment" ;;
            grid) local grid_out=${GRID_OUT:-runs/gpu-synthesis-$PRESET}
                  step grid "${rd[@]}" synthesis --dataset "$DATASET" --preset "$PRESET" --device "$DEVICE" \
                      --quiet --out "$grid_out"
                  [ ! -f "$grid_out/summary.md" ] || cp "$grid_out/summary.md" "$OUT/grid-summary.md" ;;
        esac
    done
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo "failed steps: ${FAILED[*]}"
        return 1
    fi
    echo "all steps passed; logs in $OUT"
}

case ${1:-} in
    wheels) wheels ;;
    run) shift; run "$@" ;;
    *) usage ;;
esac
