#!/usr/bin/env bash
# The runs of bench/results_deepemocluster.md, after bench/deepemocluster_data.sh. Every run is
# `ssl-ser train jobs/deepemocluster_demo.yaml --debug` (one process, deterministic, evaluation
# caps lifted) with RAVDESS paths, four classes and a small VGG-16, under flock so heavy runs on
# the shared machine do not overlap; then `ssl-ser evaluate` of the best checkpoint (by
# valid UA) on the test actors.
#
#   DEC=/path/to/workdir bash bench/deepemocluster_runs.sh [dec|sup|dec_labelled|dec_matched|all] [SEED]
#
# dec:          DeepEmoCluster, 25% labelled + 75% unlabelled training audio
# sup:          the same model, supervised on the labelled 25% only
# dec_labelled: DeepEmoCluster on the labelled 25% only (clustering without the unlabelled audio)
# dec_matched:  dec with samples_per_epoch 1920, so its emotion loss sees as many labelled samples
#               per epoch as sup does (960)
set -euo pipefail
DEC=${DEC:-/work/dec_bench}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
LOCK="${LOCK:-/work/notes/cpu.lock}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SEED=${2:-0}
S="$DEC/shards"
cd "$DEC"

# RAVDESS has categories only: the categorical cross-entropy, no attributes; four classes
# (calm -> neutral; fearful, disgust, surprised unlabelled for the classifier, audio still used).
# Every run takes 60 steps of 16 per epoch (samples_per_epoch 960 = the training actors' count).
COMMON=(--set "data.valid=[$S/valid]" --set "data.test=[$S/test]" --set 'data.attributes=[]'
        --set 'data.labels={classes: [angry, happy, neutral, sad], mapping_file: four_class, unmapped: drop}'
        --set data.batch_size=16 --set data.crop_seconds=3.0 --set data.samples_per_epoch=960
        --set 'model={name: vgg16_cluster, size: tiny, widths: [8, 16, 32, 32, 32], fc_dim: 64, dropout: 0.3}'
        --set optim.lr=0.001 --set train.epochs=15 --set train.metric=ua --set train.seed="$SEED"
        --set train.num_to_keep=1 --set debug.max_train_batches=null --set debug.max_eval_batches=null)
DEC_METHOD='{name: deepemocluster, num_clusters: 16, kmeans: {niter: 20}, emotion_weight: 1.0, attribute_weight: 0.0, cluster_weight: 1.0}'

train() { flock "$LOCK" nice -n 5 "$SSL" train "$ROOT/jobs/deepemocluster_demo.yaml" --debug "${COMMON[@]}" "$@"; }
evaluate() { flock "$LOCK" nice -n 5 "$SSL" evaluate "runs/$1" "$S/test" --out "runs/$1/test"; }

run() {
  case "$1" in
    dec)
      train --set name="dec_s$SEED" --set "method=$DEC_METHOD" \
        --set "data.train=[$S/train_labelled]" --set "data.unlabelled=[$S/train_unlabelled]" \
        --set data.unlabelled_weight=0.5
      evaluate "dec_s$SEED" ;;
    sup)
      train --set name="sup_s$SEED" --set 'method={name: supervised}' \
        --set "data.train=[$S/train_labelled]" --set 'data.unlabelled=[]'
      evaluate "sup_s$SEED" ;;
    dec_labelled)
      train --set name="dec_labelled_s$SEED" --set "method=$DEC_METHOD" \
        --set "data.train=[$S/train_labelled]" --set 'data.unlabelled=[]'
      evaluate "dec_labelled_s$SEED" ;;
    dec_matched)  # as dec, with as many labelled samples per epoch as sup (twice the steps)
      train --set name="dec_matched_s$SEED" --set "method=$DEC_METHOD" \
        --set "data.train=[$S/train_labelled]" --set "data.unlabelled=[$S/train_unlabelled]" \
        --set data.unlabelled_weight=0.5 --set data.samples_per_epoch=1920
      evaluate "dec_matched_s$SEED" ;;
    all) for r in dec sup dec_labelled dec_matched; do run "$r"; done ;;
    *) echo "unknown run $1" >&2; exit 2 ;;
  esac
}
run "${1:-all}"
