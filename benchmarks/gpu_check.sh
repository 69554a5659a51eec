#!/usr/bin/env bash
# The prepared GPU check: one short script (under 8 minutes), tolerant of a missing GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: benchmarks/results/gpu
#
# Without a GPU (no nvidia-smi listing one, and no torch that sees CUDA) it prints one line
# saying so and exits 0: nothing is measured, nothing is estimated. With one, each step under
# its own `timeout` (the caps add up to 450 s):
#
#   1. the kernel tests compiled on the device: DIAGRAMMAR_KERNEL_DEVICE=cuda pytest
#      tests/kernels (Triton kernel and Pallas kernel against the references);
#   2. benchmarks/kernel_gpu_bench.py: correctness against the reference on the device, time
#      against PyTorch's SDPA with an explicit mask at trees 1-64 x prefixes 512-8192 (float16),
#      achieved K/V bandwidth and its share of the device's peak;
#   3. benchmarks/jax_bench.py --device cuda: end-to-end tokens/s of both backends (Torch on
#      CUDA, JAX on its default device) against Hugging Face greedy, on a small budget;
#   4. benchmarks/gpu_check.py --device cuda: the Torch backend's exactness (float64) and
#      per-box timing.
#
# Nothing is installed from the network. Python: $PYTHON if set, else the first of
# .venv/bin/python, python3, python whose torch sees CUDA. Packages diagrammar needs that the
# machine lacks can travel as wheels in .whl/ (ignored by git; see the device README):
# they are installed offline (pip --no-index) into a temporary folder put on PYTHONPATH.
# From a session with the device tool:  run(command="bash benchmarks/gpu_check.sh $OUT/gpu",
# carry=[".whl"], timeout_s=540); then put the numbers, with the device named, in
# benchmarks/README.md.
#
# Output in OUT_DIR: gpu_check.log (everything printed, nvidia-smi included),
# kernel_gpu_bench.{json,md}, jax_bench_cuda.{json,md,png}, gpu_check_cuda.json. Exit status:
# 0 with no GPU or when every step passed, 1 when a step failed or timed out.

set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
OUT="${1:-benchmarks/results/gpu}"
BEGAN=$(date +%s)
BUDGET=470                      # seconds for the whole script; each step's cap is below

say() { echo "gpu_check: $*"; }

# -- is there a GPU? ------------------------------------------------------------------------
gpus=""
if command -v nvidia-smi >/dev/null 2>&1; then
    gpus="$(nvidia-smi -L 2>/dev/null | grep -i 'GPU' || true)"
fi
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
[ -x .venv/bin/python ] && candidates+=(".venv/bin/python")
command -v python3 >/dev/null 2>&1 && candidates+=("python3")
command -v python >/dev/null 2>&1 && candidates+=("python")
PY=""
for candidate in "${candidates[@]}"; do
    if timeout 60 "$candidate" -c \
            "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1
    then
        PY="$candidate"
        break
    fi
done
if [ -z "$gpus" ] && [ -z "$PY" ]; then
    say "no GPU here (nvidia-smi lists none, torch sees no CUDA device): nothing measured, exiting"
    exit 0
fi
if [ -z "$PY" ]; then
    say "nvidia-smi lists a GPU, but no Python here has a torch that sees CUDA (tried:" \
        "${candidates[*]:-none}); set PYTHON=... to one that does"
    exit 1
fi

mkdir -p "$OUT" || exit 1
LOG="$OUT/gpu_check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false XLA_PYTHON_CLIENT_PREALLOCATE=false
say "$(date -u +%FT%TZ) in $ROOT, python $PY, output in $OUT"
nvidia-smi 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.memory,driver_version \
    --format=csv 2>/dev/null || true

# -- diagrammar importable, nothing fetched -------------------------------------------------
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NEEDED="import discopy, pydivsufsort, platformdirs, tokenizers, transformers, tqdm, matplotlib"
if ! "$PY" -c "$NEEDED" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        say "installing the carried wheels in .whl/ offline into /tmp/diagrammar-site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/diagrammar-site .whl/*.whl || say "offline wheel install failed"
        export PYTHONPATH="$ROOT:/tmp/diagrammar-site${PYTHONPATH#"$ROOT"}"
    fi
fi
if ! "$PY" -c "$NEEDED; import diagrammar.functors.execute, diagrammar.kernels" ; then
    say "diagrammar does not import with $PY (above: the missing module). Carry its wheel:" \
        "python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12" \
        "--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64" \
        "-d .whl NAME==VERSION, then run again with carry=['.whl']"
    exit 1
fi
"$PY" - <<'EOF' || true
import jax, torch
print(f"gpu_check: torch {torch.__version__} on {torch.cuda.get_device_name()}; "
      f"jax {jax.__version__} on {jax.devices()[0]}")
EOF

# -- the steps --------------------------------------------------------------------------------
declare -a STATUS=()
step() {            # step NAME CAP command...
    local name="$1" cap="$2"
    shift 2
    local left=$((BUDGET - ($(date +%s) - BEGAN)))
    if [ "$left" -lt 20 ]; then
        STATUS+=("$name: skipped (the 8-minute budget is spent)")
        return
    fi
    [ "$cap" -gt "$left" ] && cap="$left"
    say "=== $name (at most ${cap} s) ==="
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$cap" "$@"
    rc=$?
    local took=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        STATUS+=("$name: ok (${took} s)")
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        STATUS+=("$name: TIMED OUT after ${cap} s")
    else
        STATUS+=("$name: FAILED (exit $rc, ${took} s)")
    fi
}

step "kernel tests on cuda" 80 env DIAGRAMMAR_KERNEL_DEVICE=cuda "$PY" -m pytest -q -x \
    -p no:cacheprovider tests/kernels
step "kernel timing vs SDPA" 110 "$PY" benchmarks/kernel_gpu_bench.py --device cuda \
    --out "$OUT" --no-progress
step "end to end: jax_bench" 170 "$PY" benchmarks/jax_bench.py --device cuda --threads 0 \
    --prompts 1 --max-prompts 4 --max-new-tokens 64 --out "$OUT" --no-progress
step "torch backend: gpu_check.py" 80 "$PY" benchmarks/gpu_check.py --device cuda \
    --repeats 3 --out "$OUT"

say "=== summary ($(($(date +%s) - BEGAN)) s) ==="
failed=0
for line in "${STATUS[@]}"; do
    say "  $line"
    case "$line" in *": ok ("*) ;; *) failed=1 ;; esac
done
say "reports in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$failed"
