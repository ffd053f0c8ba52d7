#!/usr/bin/env bash
# The full GPU suite (a lent GPU machine, or any GPU node with torch and triton), in two parts, each
# sized to fit one 10-minute call on one H100 (estimated from the budgets, not yet timed on one: no
# GPU was at hand when it was written), shortest first so that a time limit cuts only the longest.
# Part 1 (about 5 min): the method checks on a cold GPU (scripts/gpu_checks.py: torch version and
# fp8 max_rel_err at large k, layout NN vs TN at 2048x2048x13312 and 8192^3, cold vs warmed 4096^3,
# the memory copy against the datasheet), issue 7's layer runs (10 s warm-up each: gpu_checks has
# just warmed the GPU) and Llama 3 70B priced from them, the timer against
# triton.testing.do_bench on 8192^3 bf16 (fails outside 2%), the GPU-marked tests.
# Part 2 (about 7 min): the full `costbench run` (every dtype incl. fp8, full search, 30 s warm-up,
# membw, the all-reduce sweep, burst and sustained MAMF, NVML fingerprint), then mamf-finder.py
# itself when a copy is in .anchors/ (git-ignored; never committed):
#   mkdir -p .anchors && curl -sSLo .anchors/mamf-finder.py \
#     https://raw.githubusercontent.com/stas00/ml-engineering/master/compute/accelerator/benchmarks/mamf-finder.py
# MAMF_FINDER_ARGS sets its arguments (default: bf16 with its own default search), bounded by
# MAMF_FINDER_TIMEOUT_S (default 150).
# Runs from the repo root with the machine's own python3 and torch (nothing is installed).
# Usage: scripts/gpu_suite.sh OUT_DIR [TAG [1|2|all]]   (default all: both parts, one after the other)
#   e.g. on a lent machine, one call each: scripts/gpu_suite.sh "$OUT" workplace/h100 1, then ... 2
set -uo pipefail
out=${1:?usage: scripts/gpu_suite.sh OUT_DIR [TAG [1|2|all]]}
tag=${2:-reference}
part=${3:-all}
case $part in 1|2|all) ;; *) echo "gpu_suite.sh: part '$part': expected 1, 2 or all" >&2; exit 2 ;; esac
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$out/nvidia-smi.csv"
status=0
step() {  # step NAME COMMAND...: run it, log it, time it; a failure fails the suite
    local name=$1; shift
    local t0=$SECONDS
    "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc, $((SECONDS - t0)) s" | tee -a "$out/suite.log"
    [ "$rc" -eq 0 ] || status=1
}
if [ "$part" != 2 ]; then
    step gpu_checks python3 scripts/gpu_checks.py --warmup-s 30
    # Issue 7 on a real GPU: the model's own layer (GEMMs at their TP shapes, FlashAttention, the
    # element-wise work) and memory bandwidth for llama3-8b at TP 1 and llama3-70b at TP 8 (one rank's
    # shapes), then Llama 3 70B priced from the TP 8 file next to the catalog-only estimate: the cost
    # JSON's assumptions.rates name each measured rate and the catalog default it replaces. Mixtral
    # 8x7B at TP 2 runs the mixture-of-experts path (router, every expert, the permutation) on CUDA.
    for spec in "llama3-8b 1" "llama3-70b 8" "mixtral-8x7b 2"; do
        set -- $spec
        step "layer_$1_tp$2" python3 -m bench run --device cuda --ops layer,membw --model "$1" --tp "$2" --warmup-s 10 \
            --tag "$tag/layer-$1-tp$2" --out "$out/layer-$1-tp$2"
    done
    layer70=$(ls -t "$out"/layer-llama3-70b-tp8/*.json 2>/dev/null | head -1)
    if [ -n "$layer70" ]; then
        step cost_llama3_70b_measured sh -c "python3 -m bench cost --model llama3-70b --results '$layer70' --format json \
            > '$out/cost-llama3-70b-measured.json' && python3 -m bench cost --model llama3-70b --results '$layer70'"
        step cost_llama3_70b_catalog sh -c "python3 -m bench cost --model llama3-70b --format json > '$out/cost-llama3-70b-catalog.json'"
    fi
    step timing_vs_triton python3 scripts/bench_timing_vs_triton.py
    if python3 -c "import pytest, hypothesis" 2>/dev/null; then   # the lent image has both; a bare node may not
        step pytest_gpu python3 -m pytest -q -m gpu tests
    else
        echo "== pytest_gpu: skipped (no pytest or hypothesis on this machine's python3)" | tee -a "$out/suite.log"
    fi
fi
if [ "$part" != 1 ]; then
    # the full run last of the measurements, being the longest (minutes per dtype): should the call's
    # time limit stop it, its file holds what finished (flushed per record, complete: false)
    step run python3 -m bench run --device cuda --tag "$tag" --out "$out"
    if [ -f .anchors/mamf-finder.py ]; then
        # an anchor for comparison, not a check: its timeout (124) or failure leaves the status alone
        before=$status
        # shellcheck disable=SC2086  # MAMF_FINDER_ARGS is a list of arguments
        step mamf_finder timeout "${MAMF_FINDER_TIMEOUT_S:-150}" python3 .anchors/mamf-finder.py \
            ${MAMF_FINDER_ARGS:---dtype bfloat16} --output_file "$out/mamf-finder.txt"
        status=$before
    else
        echo "== mamf_finder: skipped (no .anchors/mamf-finder.py; see the top of this script)" | tee -a "$out/suite.log"
    fi
fi
exit $status
