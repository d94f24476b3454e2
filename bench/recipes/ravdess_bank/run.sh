#!/usr/bin/env bash
# DeepEmoCluster re-clustering from a full embedding pass (full, the paper) against the
# embedding bank of training-pass embeddings (bank), on the EmoBox RAVDESS folds with 80 % of
# each training fold's labels hidden (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_bank bash bench/recipes/ravdess_bank/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifest, 2 per-fold manifests (test actors of the fold, 2 validation actors, the
# rest 20 % labelled / 80 % unlabelled with hidden emotions kept), 3 shards, 4 job configs,
# 5 runs (train, then `ssl-ser evaluate` of the best checkpoint on the fold's test actors),
# 6 the README table and the k-means yardstick (local/kmeans_spread.py).
# Environment: DATA (holds ravdess/), EXP, and optionally FOLDS (default "1 2 3 4 5 6"),
# MODES (default "full bank"), KEEP (labelled share, default 0.2), LOCK, WORKERS, PYTHON
# (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
FOLDS=${FOLDS:-1 2 3 4 5 6}
MODES=${MODES:-full bank}
M=manifests

in_stage 1 && { [ -f $M/ravdess.jsonl ] || ssl-ser prepare ravdess "$DATA/ravdess" --out $M/ravdess.jsonl; }

in_stage 2 && "$PYTHON" "$COMMON/hidden_folds.py" $M/ravdess.jsonl $M/fold --keep "${KEEP:-0.2}"

if in_stage 3; then
  for f in $FOLDS; do
    for part in labelled unlabelled valid test; do shards $M/fold$f.$part.jsonl fold$f/$part; done
  done
fi

if in_stage 4; then
  for f in $FOLDS; do
    for mode in $MODES; do
      job ${mode}_f$f deepemocluster_demo common $mode "data.train=[shards/fold$f/labelled]" \
        "data.unlabelled=[shards/fold$f/unlabelled]" "data.valid=[shards/fold$f/valid]" "data.test=[shards/fold$f/test]"
    done
  done
fi

if in_stage 5; then  # run <mode>_f<fold>, seed 0, scored on the fold's test actors
  for f in $FOLDS; do
    for mode in $MODES; do
      run=${mode}_f$f
      [ -f "runs/$run/test/metrics.json" ] ||
        logged "$run" ssl-ser train "jobs/$run.yaml" --debug --set "name=$run"
      evaluate "runs/$run" "shards/fold$f/test" "runs/$run/test"
    done
  done
fi

if in_stage 6; then
  "$PYTHON" "$RECIPE/local/table.py" runs --folds "$FOLDS"
  # the yardstick: how far k-means alone moves the full pass's clustering (seed, float16, order)
  for f in $FOLDS; do "$PYTHON" "$RECIPE/local/kmeans_spread.py" runs/full_f$f shards/fold$f/labelled shards/fold$f/unlabelled; done
fi
exit 0
