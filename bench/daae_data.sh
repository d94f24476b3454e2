#!/usr/bin/env bash
# Data for bench/results_daae.md: manifests and shard sets built with the project's own
# commands (ssl-ser prepare, ssl-ser shards build); the RAVDESS actor split by
# bench/xvector_split.py.
#
#   DAAE=/path/to/workdir DATA=/work/shared/data bash bench/daae_data.sh
#
# Pretraining corpora: URDU (all 400 utterances, 4 emotions, 29 speaker tags) and FSDD (3000
# spoken digits of 6 speakers, no emotion). Target corpus: RAVDESS, speaker independent:
# actors 01-16 fine-tune, 17-20 validate, 21-24 test.
set -euo pipefail
DAAE=${DAAE:-/work/daae_bench}
DATA=${DATA:-/work/shared/data}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
PY="${PY:-/work/venv/bin/python}"
HERE="$(cd "$(dirname "$0")" && pwd)"
M="$DAAE/manifests"
mkdir -p "$M" "$DAAE/shards"

$SSL prepare ravdess "$DATA/ravdess" --out "$M/ravdess.jsonl"
$SSL prepare urdu "$DATA/urdu" --out "$M/urdu.jsonl"
$SSL prepare fsdd "$DATA/fsdd" --out "$M/fsdd.jsonl"
$PY "$HERE/xvector_split.py" "$M/ravdess.jsonl" "$M/ravdess" \
    --part train=01-16 --part valid=17-20 --part test=21-24

build() { $SSL shards build "$1" "$DAAE/shards/$2" --workers "${WORKERS:-1}" --quiet --overwrite; }
build "$M/ravdess.train.jsonl" ravdess_train
build "$M/ravdess.valid.jsonl" ravdess_valid
build "$M/ravdess.test.jsonl" ravdess_test
build "$M/urdu.jsonl" urdu
build "$M/fsdd.jsonl" fsdd
