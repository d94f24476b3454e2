#!/usr/bin/env bash
# x-vector transfer + CopyPaste on RAVDESS, 8 classes (Pappagari et al., ICASSP 2021), small
# versions for CPUs (README.md here): speaker pretraining on FSDD + URDU + RAVDESS actors 01-16,
# then emotion training on RAVDESS actors 01-16 (valid 17-20, test 21-24) from random init or
# from the speaker model, with and without CopyPaste.
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_xvector bash bench/recipes/ravdess_xvector/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifests, 2 speaker splits, 3 shards and a noisy copy of the test actors,
# 4 job configs (jobs/*.yaml + conf/), 5 speaker pretraining, 6 emotion runs (train, then
# `ssl-ser evaluate` on the clean and noisy test actors), 7 the speaker model per corpus,
# 8 the README table.
# Environment: DATA (holds ravdess/, urdu/, fsdd/, noise/), EXP, and optionally SEEDS (default
# "0 1 2"), CONDITIONS (default "scratch transfer transfer_ncp transfer_secp transfer_nsecp";
# scratch_nsecp, random init + N+SE-CP, was not run), LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
SEEDS=${SEEDS:-0 1 2}
CONDITIONS=${CONDITIONS:-scratch transfer transfer_ncp transfer_secp transfer_nsecp}
M=manifests

if in_stage 1; then
  ssl-ser prepare ravdess "$DATA/ravdess" --out $M/ravdess.jsonl
  ssl-ser prepare urdu "$DATA/urdu" --out $M/urdu.jsonl
  ssl-ser prepare fsdd "$DATA/fsdd" --out $M/fsdd.jsonl
  ssl-ser prepare folder "$DATA/noise" --option label_field=label --option corpus=noise --out $M/noise.jsonl
fi

if in_stage 2; then
  # RAVDESS (speaker independent): actors 01-16 train, 17-20 valid, 21-24 test
  "$PYTHON" "$COMMON/split.py" $M/ravdess.jsonl $M/ravdess --part train=01-16 --part valid=17-20 --part test=21-24
  # speaker pretraining: FSDD (6 speakers) + URDU (all but its last 6 speaker tags in string
  # order) + RAVDESS actors 01-16, emotion labels ignored; every 10th utterance of each of these
  # speakers is held out for speaker accuracy
  "$PYTHON" "$COMMON/split.py" $M/urdu.jsonl $M/urdu --part trials=last6 --part train=rest
  cat $M/fsdd.jsonl $M/urdu.train.jsonl $M/ravdess.train.jsonl > $M/speakers_all.jsonl
  "$PYTHON" "$COMMON/split.py" $M/speakers_all.jsonl $M/speakers --part train=rest --holdout train=0.1
  # EER trials: the 6 other URDU speakers + RAVDESS actors 17-20 (never a test actor)
  cat $M/urdu.trials.jsonl $M/ravdess.valid.jsonl > $M/speaker_trials.jsonl
fi

if in_stage 3; then
  shards $M/ravdess.train.jsonl ravdess_train
  shards $M/ravdess.valid.jsonl ravdess_valid
  shards $M/ravdess.test.jsonl ravdess_test
  shards $M/speakers.train.jsonl speakers_train
  shards $M/speakers.train_heldout.jsonl speakers_heldout
  shards $M/speaker_trials.jsonl speaker_trials
  shards $M/noise.jsonl noise
  # the test actors with noise-bank clips at 5 dB SNR, seeded per utterance key
  [ -f shards/ravdess_test_noisy5/index.json ] ||
    ssl-ser shards noisy shards/ravdess_test shards/noise shards/ravdess_test_noisy5 --snr 5 --seed 0 --quiet
fi

if in_stage 4; then
  # the method's trial sets and the noise bank are not resolved against the working directory
  # as data paths are (a Ray worker would not find them): absolute
  job xvector_pretrain xvector_pretrain small pretrain \
    "method.trials_from=[$EXP/shards/speaker_trials]" "augment.noise.shards=[$EXP/shards/noise]"
  job scratch xvector_scratch_copypaste small ravdess no_augment       # random init, no CP
  job transfer xvector_transfer small ravdess                          # transfer, no CP
  job transfer_ncp xvector_transfer_copypaste small ravdess cp_neutral
  job transfer_secp xvector_transfer_copypaste small ravdess cp_same
  job transfer_nsecp xvector_transfer_copypaste small ravdess cp_both
  job scratch_nsecp xvector_scratch_copypaste small ravdess cp_both    # random init + CP (not run)
fi

if in_stage 5; then  # 12 epochs; the transfer jobs start from its best checkpoint (by EER)
  trained xvector_pretrain 12 || logged xvector_pretrain ssl-ser train jobs/xvector_pretrain.yaml --debug
fi

if in_stage 6; then  # each condition once per seed, as run <condition>_s<seed>
  for condition in $CONDITIONS; do
    for seed in $SEEDS; do
      seeded $condition $seed shards/ravdess_test test shards/ravdess_test_noisy5 test_noisy5
    done
  done
fi

if in_stage 7; then  # speaker accuracy per corpus; EER on all, within-corpus and per-corpus trials
  evaluate runs/xvector_pretrain shards/speakers_heldout runs/xvector_pretrain/heldout
  if [ ! -f runs/xvector_pretrain/trials.jsonl ]; then
    mapfile -t audio < <("$PYTHON" "$RECIPE/local/speaker_breakdown.py" audio $M/speaker_trials.jsonl)
    heavy ssl-ser predict runs/xvector_pretrain "${audio[@]}" --embeddings --out runs/xvector_pretrain/trials.jsonl.tmp
    mv runs/xvector_pretrain/trials.jsonl.tmp runs/xvector_pretrain/trials.jsonl
  fi
  "$PYTHON" "$RECIPE/local/speaker_breakdown.py" report runs/xvector_pretrain/heldout/metrics.json \
    $M/speaker_trials.jsonl runs/xvector_pretrain/trials.jsonl
fi

if in_stage 8; then  # the README's table (%), then UA/WA/macro F1 as the project README tabulates them
  conditions=(--config scratch "random init, no CopyPaste" --config scratch_nsecp "random init, N+SE-CP"
    --config transfer "x-vector transfer, no CopyPaste" --config transfer_ncp "x-vector transfer, N-CP"
    --config transfer_secp "x-vector transfer, SE-CP" --config transfer_nsecp "x-vector transfer, N+SE-CP")
  "$PYTHON" "$COMMON/table.py" seeds runs --percent --metrics ua,wa,weighted_f1 --noisy test_noisy5 "${conditions[@]}"
  echo
  "$PYTHON" "$COMMON/table.py" seeds runs "${conditions[@]}"
fi
