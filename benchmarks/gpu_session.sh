#!/usr/bin/env bash
# One prepared run of everything that needs a GPU (issue 5, section 3):
# the `gpu`-marked tests and both benchmarks with --device cuda.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]
#
# Each part has its own time limit so that one slow part cannot eat the
# others' time; logs go to OUT_DIR (default: $OUT, else ./gpu_logs), one
# file per part, and a summary line per part to OUT_DIR/summary.txt.
# Uses the python on PATH, which must have torch with CUDA; the repository
# itself is used from the working tree (PYTHONPATH), nothing is installed
# except the small pure-Python packages the tests import, if missing.
set -u
out="${1:-${OUT:-gpu_logs}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

$py - <<'PY' > "$out/machine.txt" 2>&1
import platform, torch
print(platform.platform(), platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
PY
cat "$out/machine.txt"

$py -c "import attrs, cattrs, xarray, hypothesis, pytest, yaml" 2>/dev/null ||
    $py -m pip install -q attrs cattrs xarray netCDF4 hypothesis pytest pyyaml tqdm matplotlib scipy \
        > "$out/pip.txt" 2>&1

part() {  # name, seconds, command...
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    echo "$name rc=$rc ${limit}s-limit took=$((SECONDS - t0))s" | tee -a "$out/summary.txt"
}

part gpu_tests 150 $py -m pytest -q -p no:cacheprovider tests/unit/test_gpu.py tests/unit/test_areas_perf.py
part bench_train 180 $py benchmarks/bench_train.py --device cuda --steps 30 --warmup 5 --rounds 2
part bench_circuit 150 $py benchmarks/bench_circuit.py --device cuda --reps 5
tail -n 25 "$out"/*.txt
