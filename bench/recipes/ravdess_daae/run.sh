#!/usr/bin/env bash
# DAAE (Gao et al., ICASSP 2021): pretrain on URDU + FSDD, fine-tune and test on RAVDESS; the
# same network without the adversarial heads, and fine-tuning without pretraining; small
# versions for one CPU thread (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_daae bash bench/recipes/ravdess_daae/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifests, 2 RAVDESS speaker split, 3 shards, 4 job configs (jobs/*.yaml + conf/),
# 5 pretraining (DAAE, no adversary), 6 fine-tuning on RAVDESS 01-16 from each pretrained
# network or from scratch (train, then `ssl-ser evaluate` of the best checkpoint by valid UA on
# actors 21-24), 7 the pretrained networks' latent emotion head on the test actors,
# 8 t-SNE of their latent codes (EXP/daae_latents.png), 9 the README tables.
# Environment: DATA (holds ravdess/, urdu/, fsdd/), EXP, and optionally SEEDS (fine-tuning,
# default "0 1"), LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
SEEDS=${SEEDS:-0 1}
M=manifests
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # the runs of README.md used one thread

if in_stage 1; then
  ssl-ser prepare ravdess "$DATA/ravdess" --out $M/ravdess.jsonl
  ssl-ser prepare urdu "$DATA/urdu" --out $M/urdu.jsonl
  ssl-ser prepare fsdd "$DATA/fsdd" --out $M/fsdd.jsonl
fi

# the target corpus, speaker independent: actors 01-16 fine-tune, 17-20 validate, 21-24 test
in_stage 2 && "$PYTHON" "$COMMON/split.py" $M/ravdess.jsonl $M/ravdess --part train=01-16 --part valid=17-20 --part test=21-24

if in_stage 3; then
  shards $M/ravdess.train.jsonl ravdess_train
  shards $M/ravdess.valid.jsonl ravdess_valid
  shards $M/ravdess.test.jsonl ravdess_test
  shards $M/urdu.jsonl urdu
  shards $M/fsdd.jsonl fsdd
fi

if in_stage 4; then
  job daae_pretrain daae_pretrain small pretrain
  job plain_pretrain daae_pretrain small pretrain no_adversary
  job ft_daae daae_finetune small finetune from_daae $PLAIN_CE
  job ft_plain daae_finetune small finetune from_plain $PLAIN_CE
  job ft_scratch daae_finetune small finetune from_scratch $PLAIN_CE
fi

if in_stage 5; then  # stage one on URDU + FSDD (seed 0)
  for run in daae_pretrain plain_pretrain; do
    trained $run 10 || logged $run ssl-ser train jobs/$run.yaml --debug
  done
fi

if in_stage 6; then  # stage two on RAVDESS, from each pretrained network's last epoch or from scratch
  for seed in $SEEDS; do
    for arm in ft_daae ft_plain ft_scratch; do seeded $arm $seed shards/ravdess_test test; done
  done
fi

if in_stage 7; then  # the latent emotion head (trained on URDU) of each pretrained network, last epoch
  heavy "$PYTHON" "$RECIPE/local/latent_eval.py" runs/daae_pretrain runs/plain_pretrain --which latest \
    --test shards/ravdess_test --json test_latent.json
fi

if in_stage 8; then
  heavy "$PYTHON" "$RECIPE/local/plot_latents.py" \
    --run runs/daae_pretrain/checkpoint_epoch-000010 "DAAE (adversarial)" \
    --run runs/plain_pretrain/checkpoint_epoch-000010 "same network, no adversary" \
    --sets shards/ravdess_test shards/urdu shards/fsdd --per-set 200 --out daae_latents.png --json latents.json
fi

if in_stage 9; then
  "$PYTHON" "$COMMON/table.py" seeds runs --per-run --population-sd --metrics ua,wa,macro_f1,weighted_f1 \
    --config ft_daae DAAE --config ft_plain "no adversary" --config ft_scratch "no pretraining"
  echo
  "$PYTHON" "$RECIPE/local/latent_eval.py" --history runs/daae_pretrain runs/plain_pretrain runs/ft_*_s* --epochs 1,10
fi
