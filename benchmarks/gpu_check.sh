#!/usr/bin/env bash
# The GPU check (issue 7), for a bare machine with an NVIDIA GPU, CuPy, PyTorch with CUDA, pytest and
# hypothesis preinstalled and no network. In about 8 minutes at most it
#
#   1. installs the project from this checkout (pip --no-deps, no build isolation: nothing is downloaded),
#   2. runs a one-screen CuPy sanity check (an LSTM step on cuda against cpu),
#   3. runs benchmarks/gpu_bench.py (LSTM training step B64·T128·I256·H512 on CuPy, NumPy and torch CUDA),
#   4. trains examples/char_lm.py on cuda for a small budget,
#   5. runs the whole test suite with the cuda device enabled (tests/conftest.py's `device` fixture runs
#      every device test on cuda when CuPy sees a GPU), in the time that is left,
#
# and writes a log per stage plus summary.md under $OUT/gpu_check (or benchmarks/results/gpu_check).
# A stage that fails or runs out of time is recorded and the next one still runs; the exit status is the
# number of failed stages.
#
# Usage: bash benchmarks/gpu_check.sh            (BUDGET_S=480 by default: the whole run's deadline)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RESULTS="${OUT:-$ROOT/benchmarks/results}/gpu_check"
mkdir -p "$RESULTS"
SUMMARY="$RESULTS/summary.md"
BUDGET_S="${BUDGET_S:-480}"
START=$(date +%s)
FAILED=0
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # works even if the editable install cannot be made
export HYPOTHESIS_PROFILE=ci                          # derandomized, 25 examples per property
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python}"

echo "# GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$SUMMARY"
echo "" >> "$SUMMARY"
echo "| stage | status | seconds | log |" >> "$SUMMARY"
echo "|---|---|---|---|" >> "$SUMMARY"

left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

# stage NAME MAX_SECONDS COMMAND...: run with a time limit (never past the deadline), log, record
stage() {
  local name="$1" limit="$2"; shift 2
  local remaining; remaining=$(left)
  if (( remaining < 20 )); then
    echo "| $name | skipped (no time left) | 0 | |" >> "$SUMMARY"; FAILED=$((FAILED + 1)); return
  fi
  (( limit > remaining - 5 )) && limit=$(( remaining - 5 ))
  local log="$RESULTS/$name.log" t0 rc status
  t0=$(date +%s)
  echo "== $name (limit ${limit}s): $*"
  timeout --signal=INT --kill-after=15 "$limit" "$@" > "$log" 2>&1
  rc=$?
  case $rc in
    0) status="ok" ;;
    124|137) status="TIMED OUT after ${limit}s"; FAILED=$((FAILED + 1)) ;;
    *) status="FAILED (exit $rc)"; FAILED=$((FAILED + 1)) ;;
  esac
  echo "| $name | $status | $(( $(date +%s) - t0 )) | $name.log |" >> "$SUMMARY"
  tail -n 25 "$log"
  echo "== $name: $status"
}

stage environment 60 bash -c "
  nvidia-smi || true
  $PY - <<'EOF'
import platform, numpy
print('python', platform.python_version(), 'numpy', numpy.__version__)
try:
    import cupy
    print('cupy', cupy.__version__, 'cuda runtime', cupy.cuda.runtime.runtimeGetVersion(),
          'devices', cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print('cupy unavailable:', type(exc).__name__, exc)
try:
    import torch
    print('torch', torch.__version__, 'cuda available', torch.cuda.is_available())
except Exception as exc:
    print('torch unavailable:', type(exc).__name__, exc)
import pytest, hypothesis
print('pytest', pytest.__version__, 'hypothesis', hypothesis.__version__)
EOF"

stage install 120 $PY -m pip install --no-deps --no-build-isolation --no-index -e .

stage cuda_smoke 120 $PY - <<'EOF'
import numpy as np
import tinygrad_rnn as tg
from tinygrad_rnn.backend import cuda_unavailable_reason
reason = cuda_unavailable_reason()
assert reason is None, reason
grads = {}
for device in ("cpu", "cuda"):
    tg.manual_seed(0)
    lstm = tg.nn.LSTM(8, 16, device=device)
    if device == "cuda":
        lstm.load_state_dict(cpu_state)
    else:
        cpu_state = lstm.state_dict()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((5, 3, 8)).astype(np.float32), device=device)
    out, (h, c) = lstm(x)
    (out * out).sum().backward()
    grads[device] = {n: p.grad.numpy() for n, p in lstm.named_parameters()}
    assert out.device.startswith(device), out.device
for name in grads["cpu"]:
    np.testing.assert_allclose(grads["cuda"][name], grads["cpu"][name], rtol=1e-4, atol=1e-5, err_msg=name)
print("cuda smoke: LSTM gradients on cuda match cpu")
EOF

stage gpu_bench 180 $PY benchmarks/gpu_bench.py --out "$RESULTS" --repeats 10 --cpu-repeats 2

stage char_lm 100 $PY examples/char_lm.py --device cuda --steps 150 --max-chars 300000 --no-progress \
  --out "$RESULTS/char_lm"

# the test suite gets whatever time is left
stage tests "$(( $(left) - 10 ))" $PY -m pytest -q -p no:cacheprovider -rfE --durations=15 \
  --junitxml="$RESULTS/tests.xml"

{
  echo ""
  echo "Total: $(( $(date +%s) - START )) s; failed stages: $FAILED"
  if [[ -f "$RESULTS/gpu_bench.md" ]]; then echo ""; cat "$RESULTS/gpu_bench.md"; fi
  echo ""
  echo "Test summary: $(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$RESULTS/tests.log" 2>/dev/null | tail -n 1)"
} >> "$SUMMARY"
echo
cat "$SUMMARY"
exit "$FAILED"
