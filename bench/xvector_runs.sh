#!/usr/bin/env bash
# The runs of bench/results_xvector.md, after bench/xvector_data.sh. Every run is
# `ssl-ser train jobs/xvector_*.yaml --debug` (one process, deterministic, evaluation caps
# lifted) with the data paths and the small CPU settings below, all under one flock so heavy runs
# of different people on the shared machine do not overlap. Test scores: bench/xvector_evaluate.py.
#
#   XV=/path/to/workdir SEEDS="0 1 2" bash bench/xvector_runs.sh [pretrain|scratch|transfer|ncp|secp|nsecp|scratch_cp|all]
#
# Each emotion condition runs once per seed in SEEDS (train.seed: the new layer's and a scratch
# model's initialisation, data order, crops, CopyPaste draws) as run <condition>_s<seed>;
# bench/xvector_table.py summarises the test scores.
set -euo pipefail
LOCK="${LOCK:-/work/notes/cpu.lock}"
# one flock for the whole batch of runs: the machine's other heavy jobs wait for it, and it for them
[ -z "${XV_LOCKED:-}" ] && XV_LOCKED=1 exec flock "$LOCK" bash "$0" "$@"
XV=${XV:-/work/xv_bench}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
PY="${PY:-/work/venv/bin/python}"
ROOT="${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
S="$XV/shards"
cd "$XV"

# A thin, shallow variant of the x-vector ResNet (one block per stage, widths 8-64, 8 pooling
# heads, 128-dim x-vector; 0.28 M parameters): what 2 shared CPU cores train in minutes.
MODEL=(--set 'model.widths=[8,16,32,64]' --set 'model.blocks=[1,1,1,1]'
       --set model.num_heads=8 --set model.embedding_dim=128)
NOCAPS=(--set debug.max_train_batches=null --set debug.max_eval_batches=null)
SPK_TRIALS="$S/speaker_trials"
RAVDESS=(--set "data.train=[$S/ravdess_train]" --set "data.valid=[$S/ravdess_valid]"
         --set "data.test=[$S/ravdess_test]" --set data.batch_size=16 --set data.crop_seconds=3.0
         --set train.epochs=10)
# CopyPaste crops of 1.5 s: a pair is as long as the 3-s training crops (compute; the paper: 4 s)
CP=(--set augment.copypaste.crop_seconds=1.5)

train() { "$SSL" train "$@" "${MODEL[@]}" "${NOCAPS[@]}"; }
evaluate() {  # the clean test actors, and their noisy copy (5 dB SNR) when it exists (seconds each)
  "$PY" "$ROOT/bench/xvector_evaluate.py" "runs/$1" --json "runs/$1/test.json"
  if [ -d "$S/ravdess_test_noisy5" ]; then
    "$PY" "$ROOT/bench/xvector_evaluate.py" "runs/$1" --shards "$S/ravdess_test_noisy5" \
      --json "runs/$1/test_noisy5.json"
  fi
}

emotion() {  # emotion <run name> <job> [overrides...]: train for every seed, then score the test set
  local name=$1 job=$2; shift 2
  for seed in ${SEEDS:-0 1 2}; do
    [ -f "runs/${name}_s$seed/test.json" ] && continue  # done (rerun the script to finish the rest)
    train "$ROOT/jobs/$job.yaml" --debug "${RAVDESS[@]}" --set "name=${name}_s$seed" \
      --set "train.seed=$seed" "$@"
    evaluate "${name}_s$seed"
  done
}

run() {
  case "$1" in
    pretrain)
      [ -f runs/xvector_pretrain/metrics.jsonl ] && [ "$(wc -l < runs/xvector_pretrain/metrics.jsonl)" -ge 12 ] && return
      train "$ROOT/jobs/xvector_pretrain.yaml" --debug \
        --set "data.train=[$S/speakers_train]" --set "data.valid=[$S/speakers_heldout]" \
        --set "method.trials_from=[$SPK_TRIALS]" --set "augment.noise.shards=[$S/noise]" \
        --set data.crop_seconds=2.0 --set train.epochs=12 ;;
    scratch)    emotion scratch xvector_scratch_copypaste --set 'augment={}' ;;  # random init, no CP
    transfer)   emotion transfer xvector_transfer ;;                             # transfer, no CP
    ncp)        emotion transfer_ncp xvector_transfer_copypaste "${CP[@]}" --set augment.copypaste.scheme=neutral ;;
    secp)       emotion transfer_secp xvector_transfer_copypaste "${CP[@]}" --set augment.copypaste.scheme=same ;;
    nsecp)      emotion transfer_nsecp xvector_transfer_copypaste "${CP[@]}" --set augment.copypaste.scheme=both ;;
    scratch_cp) emotion scratch_nsecp xvector_scratch_copypaste "${CP[@]}" --set augment.copypaste.scheme=both ;;
    all) for r in pretrain scratch transfer ncp secp nsecp scratch_cp; do run "$r"; done ;;
    *) echo "unknown run $1" >&2; exit 2 ;;
  esac
}
for r in "${@:-all}"; do run "$r"; done
