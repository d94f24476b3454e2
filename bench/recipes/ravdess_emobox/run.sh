#!/usr/bin/env bash
# RAVDESS speech, 8 classes, EmoBox's 6 speaker-independent folds: why the small CPU models
# were weak, which levers help (chosen on validation speakers only) and the test scores of the
# result (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_emobox bash bench/recipes/ravdess_emobox/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifest, 2 shards, 3 job configs (jobs/*.yaml + conf/), 4 fold-1 validation jobs
# (EmoBox fold 1's 20 training actors, 4 of them held out for validation, its 4 test actors
# left out), 5 measurements (epoch time split, feature statistics), 6 the ablation on fold 1's
# validation actors, 7 the chosen settings under `ssl-ser cv` (fold 1: FOLDS=0; all six:
# FOLDS=0,1,2,3,4,5), 8 the README tables.
# Environment: DATA (holds ravdess/), EXP, FOLDS (default 0), and optionally LOCK, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
FOLDS=${FOLDS:-0}

if in_stage 1; then
  ssl-ser prepare ravdess "$DATA/ravdess" --out manifests/ravdess.jsonl
fi

in_stage 2 && shards manifests/ravdess.jsonl ravdess

if in_stage 3; then
  job pyresnet_r8 pyresnet common pyresnet_r8                         # the earlier baseline
  job pyresnet_r8c pyresnet common pyresnet_r8 cache                  # + feature cache
  job pyresnet_final pyresnet common pyresnet_r8 cache final          # + the chosen levers
  job attention_cnn_r8 attention_cnn common attention_cnn_r8 cache    # the second recipe
  job attention_cnn_final attention_cnn common attention_cnn_r8 cache final
fi

if in_stage 4; then
  for j in pyresnet_r8 pyresnet_r8c attention_cnn_r8; do
    "$PYTHON" "$RECIPE/local/fold_job.py" jobs/$j.yaml ravdess_emobox 0 4 jobs/${j}_fold0.yaml
  done
fi

in_stage 5 && logged measure "$PYTHON" "$RECIPE/local/measure.py" jobs/pyresnet_r8_fold0.yaml

# ablate NAME JOB [KEY=VALUE...]: one `ssl-ser train` on fold 1's validation split (a finished
# run is found finished, an interrupted one resumes)
ablate() {
  local name=$1 job=$2; shift 2
  local sets=(--set "name=$name")
  for kv in "$@"; do sets+=(--set "$kv"); done
  logged "$name" ssl-ser train "jobs/$job.yaml" --debug "${sets[@]}"
}

if in_stage 6; then
  ablate base pyresnet_r8_fold0                        # waveform stream, front-end every epoch
  ablate c_base pyresnet_r8c_fold0                     # feature cache
  ablate c_spk pyresnet_r8c_fold0 frontend.speaker_norm=true
  ablate c_sa pyresnet_r8c_fold0 frontend.specaugment.freq_mask=16 frontend.specaugment.time_mask=20
  ablate c_mix pyresnet_r8c_fold0 train.mixup=0.4
  ablate c_adamw pyresnet_r8c_fold0 optim.name=adamw optim.lr=0.002 optim.weight_decay=0.05 \
      schedule.name=cosine schedule.warmup_epochs=2
  ablate c_wide pyresnet_r8c_fold0 "model.widths=[16,16,32,32]" model.stem_channels=16
  ablate c_ema pyresnet_r8c_fold0 train.ema_decay=0.99
  ablate c_crop2 pyresnet_r8c_fold0 data.crop_seconds=2.0
fi

if in_stage 7; then
  logged pyresnet_final ssl-ser cv jobs/pyresnet_final.yaml --folds ravdess_emobox --valid-speakers 4 --only "$FOLDS" --debug
fi

if in_stage 8; then
  "$PYTHON" "$RECIPE/local/ablation_table.py" runs \
    --row "earlier baseline (PyResNet tiny, SGD, 4-s crops)" base \
    --row "+ feature cache" c_base \
    --row "+ speaker normalisation" c_spk \
    --row "+ SpecAugment (F 16, T 20)" c_sa \
    --row "+ mixup (alpha 0.4)" c_mix \
    --row "+ AdamW 2e-3, wd 0.05, warm-up 2, cosine" c_adamw \
    --row "+ widths x2 (16-32)" c_wide \
    --row "+ EMA of weights (0.99)" c_ema \
    --row "+ 2-s crops" c_crop2
  "$PYTHON" "$COMMON/table.py" cv --row "PyResNet, chosen levers" runs/pyresnet_final-cv-ravdess_emobox
fi
