#!/usr/bin/env bash
# The prepared GPU check (issue 15, item 4): bench/perf/gpu_check.py measures faiss-gpu k-means,
# bf16 training throughput of the five paper-size models, GPU busy time and data-loader wait in
# a DeepEmoCluster epoch, and a 2-process NCCL DDP step (2+ GPUs), in < 8 minutes, and prints
# one table (also written to $OUT, or --out DIR). Options are gpu_check.py's (--help).
#
#   bash bench/gpu_check.sh                    # from anywhere; PYTHON=... picks the interpreter
#
# Exit status: 0 measured, 1 a part failed or timed out (the table is printed anyway),
# 77 no CUDA GPU here (one line says why; nothing measured).
#
# Python packages the machine lacks (the lent GPU machine has torch, numpy, scipy, yaml,
# matplotlib, tqdm, tensorboard but not pydantic, webdataset, soundfile, faiss) can travel as
# wheels in .whl/ (bench/README.md, "GPU check"): when the interpreter cannot import them,
# they are installed into a temporary folder first and put on PYTHONPATH.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
wheels=${GPU_CHECK_WHEELS:-$root/.whl}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if compgen -G "$wheels/*.whl" >/dev/null && ! "$PYTHON" -c "import pydantic, webdataset, soundfile, faiss" 2>/dev/null; then
    site=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_site.XXXXXX")
    echo "gpu_check: installing $(ls "$wheels"/*.whl | wc -l) wheel(s) from $wheels into $site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$wheels"/*.whl \
        || { echo "gpu_check: installing the wheels in $wheels failed" >&2; exit 1; }
    export PYTHONPATH="$PYTHONPATH:$site"
fi
exec "$PYTHON" "$root/bench/perf/gpu_check.py" "$@"
