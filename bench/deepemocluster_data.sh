#!/usr/bin/env bash
# Data for bench/results_deepemocluster.md: RAVDESS with most training labels hidden.
#
#   DEC=/path/to/workdir DATA=/work/shared/data bash bench/deepemocluster_data.sh
#
# Speaker independent: actors 01-16 train, 17-20 valid, 21-24 test (bench/xvector_split.py).
# Of the training actors' utterances, a quarter of each (actor, emotion) group keeps its label
# (bench/deepemocluster_hide_labels.py); the rest become unlabelled audio.
set -euo pipefail
DEC=${DEC:-/work/dec_bench}
DATA=${DATA:-/work/shared/data}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
PY="${PY:-/work/venv/bin/python}"
KEEP=${KEEP:-0.25}
HERE="$(cd "$(dirname "$0")" && pwd)"
M="$DEC/manifests"
mkdir -p "$M" "$DEC/shards"

$SSL prepare ravdess "$DATA/ravdess" --out "$M/ravdess.jsonl"
$PY "$HERE/xvector_split.py" "$M/ravdess.jsonl" "$M/ravdess" \
    --part train=01-16 --part valid=17-20 --part test=21-24
$PY "$HERE/deepemocluster_hide_labels.py" "$M/ravdess.train.jsonl" "$M/ravdess.train" --keep "$KEEP"

build() { $SSL shards build "$1" "$DEC/shards/$2" --workers "${WORKERS:-1}" --quiet --overwrite; }
build "$M/ravdess.train.labelled.jsonl" train_labelled
build "$M/ravdess.train.unlabelled.jsonl" train_unlabelled
build "$M/ravdess.valid.jsonl" valid
build "$M/ravdess.test.jsonl" test
