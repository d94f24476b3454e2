#!/usr/bin/env bash
# DeepEmoCluster (Lin, Sridhar and Busso, ICASSP 2021) on RAVDESS with three quarters of the
# training labels hidden, against the same model trained on the labelled quarter only; small
# versions for CPUs (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_deepemocluster bash bench/recipes/ravdess_deepemocluster/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifest, 2 speaker split and hidden labels, 3 shards, 4 job configs (jobs/*.yaml +
# conf/), 5 runs (train, then `ssl-ser evaluate` of the best checkpoint by valid UA on the test
# actors), 6 the README table.
# Environment: DATA (holds ravdess/), EXP, and optionally SEEDS (default "0 1 2"), CONFIGS
# (default "dec sup dec_labelled dec_matched"), KEEP (labelled share, default 0.25), LOCK,
# WORKERS, PYTHON (common/stages.sh).
#   dec:          DeepEmoCluster, 25% labelled + 75% unlabelled training audio
#   sup:          the same model, supervised on the labelled 25% only
#   dec_labelled: DeepEmoCluster on the labelled 25% only (clustering without the unlabelled audio)
#   dec_matched:  dec with samples_per_epoch 1920, so its emotion loss sees as many labelled
#                 samples per epoch as sup does (960)
. "$(dirname "$0")/../common/stages.sh"
SEEDS=${SEEDS:-0 1 2}
CONFIGS=${CONFIGS:-dec sup dec_labelled dec_matched}
M=manifests

in_stage 1 && ssl-ser prepare ravdess "$DATA/ravdess" --out $M/ravdess.jsonl

if in_stage 2; then
  # speaker independent: actors 01-16 train, 17-20 valid, 21-24 test; of the training actors'
  # utterances a quarter of each (actor, emotion) group keeps its label, the rest become unlabelled audio
  "$PYTHON" "$COMMON/split.py" $M/ravdess.jsonl $M/ravdess --part train=01-16 --part valid=17-20 --part test=21-24
  "$PYTHON" "$RECIPE/local/hide_labels.py" $M/ravdess.train.jsonl $M/ravdess.train --keep "${KEEP:-0.25}"
fi

if in_stage 3; then
  shards $M/ravdess.train.labelled.jsonl train_labelled
  shards $M/ravdess.train.unlabelled.jsonl train_unlabelled
  shards $M/ravdess.valid.jsonl valid
  shards $M/ravdess.test.jsonl test
fi

if in_stage 4; then
  job dec deepemocluster_demo common deepemocluster unlabelled
  job sup deepemocluster_demo common supervised labelled_only
  job dec_labelled deepemocluster_demo common deepemocluster labelled_only
  job dec_matched deepemocluster_demo common deepemocluster unlabelled matched
fi

if in_stage 5; then  # each config once per seed, as run <config>_s<seed>
  for config in $CONFIGS; do
    for seed in $SEEDS; do seeded $config $seed shards/test test; done
  done
fi

if in_stage 6; then
  "$PYTHON" "$COMMON/table.py" seeds runs --per-run --valid \
    --config dec "DeepEmoCluster, labelled + unlabelled (dec)" \
    --config dec_matched "dec, 1920 samples per epoch (dec_matched)" \
    --config dec_labelled "DeepEmoCluster, labelled only (dec_labelled)" \
    --config sup "supervised, labelled only (sup)"
fi
