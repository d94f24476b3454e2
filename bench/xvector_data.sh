#!/usr/bin/env bash
# Data for bench/results_xvector.md: manifests and shard sets built with the project's own
# commands (ssl-ser prepare, ssl-ser shards build); speaker splits by bench/xvector_split.py.
#
#   XV=/path/to/workdir DATA=/work/shared/data bash bench/xvector_data.sh
#
# RAVDESS (speaker independent): actors 01-16 train, 17-20 valid, 21-24 test.
# Speaker pretraining: FSDD (6 speakers) + URDU (23 of its 29 speaker tags) + RAVDESS actors
# 01-16, emotion labels ignored; every 10th utterance of each of these speakers is held out for
# speaker accuracy. EER trials: the 6 other URDU speakers + RAVDESS actors 17-20 (never a test actor).
set -euo pipefail
XV=${XV:-/work/xv_bench}
DATA=${DATA:-/work/shared/data}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
PY="${PY:-/work/venv/bin/python}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$XV/manifests" "$XV/shards"
M="$XV/manifests"

$SSL prepare ravdess "$DATA/ravdess" --out "$M/ravdess.jsonl"
$SSL prepare urdu "$DATA/urdu" --out "$M/urdu.jsonl"
$SSL prepare fsdd "$DATA/fsdd" --out "$M/fsdd.jsonl"
$SSL prepare folder "$DATA/noise" --option label_field=label --option corpus=noise --out "$M/noise.jsonl"

$PY "$HERE/xvector_split.py" "$M/ravdess.jsonl" "$M/ravdess" \
    --part train=01-16 --part valid=17-20 --part test=21-24
# URDU speaker tags sorted; the last 6 are unseen by the speaker model
URDU_HELD=$($PY -c "
from ssl_ser.data.manifest import read_manifest
s = sorted({r.speaker for r in read_manifest('$M/urdu.jsonl')})
print(','.join(s[-6:]))")
$PY "$HERE/xvector_split.py" "$M/urdu.jsonl" "$M/urdu" --part trials="$URDU_HELD" --part train=rest
cat "$M/fsdd.jsonl" "$M/urdu.train.jsonl" "$M/ravdess.train.jsonl" > "$M/speakers_all.jsonl"
$PY "$HERE/xvector_split.py" "$M/speakers_all.jsonl" "$M/speakers" --part train=rest --holdout train=0.1
cat "$M/urdu.trials.jsonl" "$M/ravdess.valid.jsonl" > "$M/speaker_trials.jsonl"

build() { $SSL shards build "$1" "$XV/shards/$2" --workers "${WORKERS:-1}" --quiet --overwrite; }
build "$M/ravdess.train.jsonl" ravdess_train
build "$M/ravdess.valid.jsonl" ravdess_valid
build "$M/ravdess.test.jsonl" ravdess_test
build "$M/speakers.train.jsonl" speakers_train
build "$M/speakers.train_heldout.jsonl" speakers_heldout
build "$M/speaker_trials.jsonl" speaker_trials
build "$M/noise.jsonl" noise

# A noisy copy of the test actors for robustness (5 dB SNR, seeded per utterance key). The copy
# in bench/results_xvector.md was made by the module's former `python -m` entry point with these same arguments, before
# the subcommand was wired; both ran ssl_ser.augment.noisy_copy.run.
$SSL shards noisy "$XV/shards/ravdess_test" "$XV/shards/noise" \
    "$XV/shards/ravdess_test_noisy5" --snr 5 --seed 0 --quiet --overwrite
