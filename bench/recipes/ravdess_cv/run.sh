#!/usr/bin/env bash
# RAVDESS, 4 classes: the attention-pooling CNN (Li et al. 2018) and PyResNet (LSSED) recipes
# under speaker-independent cross-validation, small versions for CPUs (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_cv bash bench/recipes/ravdess_cv/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifest of the 4-class subset, 2 shards, 3 job configs (jobs/*.yaml + conf/),
# 4 PyResNet 4 folds, 5 attention CNN 4 folds, 6 PyResNet leave one speaker out (58 min on
# 2 CPU cores), 7 the README table.
# Environment: DATA (holds ravdess/), EXP, and optionally LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"

if in_stage 1; then
  # RAVDESS speech: 24 actors who each speak every emotion; the 4-class subset (angry, happy,
  # sad: 192 each, neutral: 96) is kept in the manifest so that no compute goes to dropped
  # classes, and calm is left out too (the shared four_class map would merge it into neutral)
  ssl-ser prepare ravdess "$DATA/ravdess" --out manifests/ravdess.jsonl
  "$PYTHON" "$RECIPE/local/keep_emotions.py" manifests/ravdess.jsonl manifests/ravdess4.jsonl \
      angry happy neutral sad
fi

in_stage 2 && shards manifests/ravdess4.jsonl ravdess4

if in_stage 3; then
  job pyresnet_ravdess4 pyresnet common pyresnet
  job attention_cnn_ravdess4 attention_cnn common attention_cnn $PLAIN_CE
  job pyresnet_ravdess4_loso pyresnet common pyresnet
fi

# 4 folds grouped by speaker (6 test actors each); in each fold 2 training actors are held out
# for validation (best checkpoint), 16 train. Rerunning finds finished folds done.
in_stage 4 && logged pyresnet_ravdess4 ssl-ser cv jobs/pyresnet_ravdess4.yaml --folds 4 --valid-speakers 2 --debug
in_stage 5 && logged attention_cnn_ravdess4 ssl-ser cv jobs/attention_cnn_ravdess4.yaml --folds 4 --valid-speakers 2 --debug
# the protocol papers report: 24 folds, each trained on 21 actors with 2 more held out
in_stage 6 && logged pyresnet_ravdess4_loso ssl-ser cv jobs/pyresnet_ravdess4_loso.yaml --folds speaker --valid-speakers 2 --debug

if in_stage 7; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "attention-pooling CNN (Li et al. 2018), tiny, 10 epochs" runs/attention_cnn_ravdess4-cv-k4 \
    --row "PyResNet (LSSED), tiny, 30 epochs" runs/pyresnet_ravdess4-cv-k4 \
    --row "PyResNet (LSSED), tiny, 30 epochs" runs/pyresnet_ravdess4_loso-cv-speaker
fi
