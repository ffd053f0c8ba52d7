#!/usr/bin/env bash
# The full GPU suite in one call (a lent GPU machine, or any GPU node with torch and triton):
# every matmul dtype incl. fp8 with the full shape search, the all-reduce sweep, the timer
# cross-check against triton.testing.do_bench, and the GPU-marked tests.
# Runs from the repo root with the machine's own python3 and torch (nothing is installed).
# Usage: scripts/gpu_suite.sh OUT_DIR [TAG]     e.g. scripts/gpu_suite.sh "$OUT" workplace/h200
set -uo pipefail
out=${1:?usage: scripts/gpu_suite.sh OUT_DIR [TAG]}
tag=${2:-reference}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv | tee "$out/nvidia-smi.csv"
status=0
python3 -m bench run --device cuda --tag "$tag" --out "$out" 2>&1 | tee "$out/run.log" || status=1
python3 scripts/bench_timing_vs_triton.py 2>&1 | tee "$out/timing_vs_triton.log" || status=1
python3 -m pytest -q -m gpu tests 2>&1 | tee "$out/pytest_gpu.log" || status=1
exit $status
