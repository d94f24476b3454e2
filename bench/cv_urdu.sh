#!/usr/bin/env bash
# Cross-validation results of the attention-pooling CNN and PyResNet recipes on URDU
# (bench/results_table.md), every step one of the project's own commands.
#
#   CV=/path/to/workdir DATA=/work/shared/data bash bench/cv_urdu.sh
#
# URDU: 400 utterances, 4 classes (angry/happy/neutral/sad, 100 each), 29 speaker tags.
# Protocol: 5 folds grouped by speaker (`--folds 5`; leave-one-speaker-out would be 29 runs
# per recipe, too much for the 2 shared CPU cores these were made on); in each fold 3 of the
# training speakers are held out for validation (best checkpoint), the rest train.
# Small versions of the recipes: `size: tiny` models and fewer epochs, the schedules' steps
# scaled to them (see the --set lines); everything else as in jobs/*.yaml.
set -euo pipefail
CV=${CV:-/work/cv_bench}
DATA=${DATA:-/work/shared/data}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
JOBS="$(cd "$(dirname "$0")/.." && pwd)/jobs"
LOCK=${LOCK:-/work/notes/cpu.lock}
mkdir -p "$CV/manifests" "$CV/logs"
cd "$CV"

$SSL prepare urdu "$DATA/urdu" --out manifests/urdu.jsonl
$SSL shards build manifests/urdu.jsonl shards/urdu --workers 1 --quiet --overwrite

common=(--folds 5 --valid-speakers 3 --debug
        --set "data.train=[$CV/shards/urdu]" --set storage_path="$CV/runs" --set data.num_workers=0
        --set debug.max_train_batches=null --set debug.max_eval_batches=null)

# Li et al. 2018: tiny attention CNN, 12 epochs, lr x0.1 at epochs 5, 7, 10 (paper: 21, 31, 41 of 50)
flock "$LOCK" nice -n 5 $SSL cv "$JOBS/attention_cnn.yaml" "${common[@]}" \
    --set model.size=tiny --set train.epochs=12 --set "schedule.milestones=[5,7,10]" \
    2>&1 | tee logs/attention_cnn.log | grep -v "it/s\]\|s/it\]"

# LSSED PyResNet: tiny, 30 epochs, lr x0.1 every 10 epochs (paper: every 20)
flock "$LOCK" nice -n 5 $SSL cv "$JOBS/pyresnet.yaml" "${common[@]}" \
    --set model.size=tiny --set train.epochs=30 --set schedule.step_size=10 \
    2>&1 | tee logs/pyresnet.log | grep -v "it/s\]\|s/it\]"
