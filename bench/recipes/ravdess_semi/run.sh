#!/usr/bin/env bash
# Does unlabelled audio pay? RAVDESS speech, 8 classes, EmoBox's 6 speaker-independent folds,
# 20 % of each training fold's labels kept (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/ravdess_semi bash bench/recipes/ravdess_semi/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifests (RAVDESS; URDU + FSDD with labels removed: the out-of-domain pool),
# 2 shards, 3 job configs, 4 the 100 % ceiling (`ssl-ser cv` of the base model, 4 validation
# actors per fold), 5 per-fold manifests with the ceiling's validation actors and 80 % of the
# training labels hidden (seeded, stratified), 6 their shards and the out-of-domain pool's,
# 7 runs (each trained, then its best-validation checkpoint scored on the fold's test actors;
# the pretrainings `spk` (speaker) and `daae_pt` (DAAE stage one) are only trained, and
# `spk_ft`, `cp_*_ft` and `daae_ft` start from them), 8 tables, paired tests and pictures.
# Runs: sup20 / sup20_long (supervised on the 20 %, 30 / 150 epochs), spknorm (sup20 with speaker
# statistics from the hidden 80 % too), dec / dec_c / dec_nc /
# dec_c_ood (DeepEmoCluster: paper head, centroid head, never clustered, + URDU/FSDD), spk_ft,
# cp_{neutral,same,both}[_ft] (CopyPaste N / SE / N+SE, from scratch or from spk), daae_ft /
# daae_scratch (DAAE fine-tuned from daae_pt, or the same network from scratch).
# Environment: DATA (holds ravdess/, urdu/, fsdd/), EXP, and optionally FOLDS (default
# "1 2 3 4 5 6"), RUNS (default: all of the above, in that order), KEEP (labelled share,
# default 0.2), LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
FOLDS=${FOLDS:-1 2 3 4 5 6}
RUNS=${RUNS:-sup20 sup20_long spknorm dec dec_c dec_nc dec_c_ood spk spk_ft cp_neutral cp_same cp_both cp_neutral_ft cp_same_ft cp_both_ft daae_pt daae_ft daae_scratch}
M=manifests
CEILING=runs/pyresnet_final-cv-ravdess_emobox
# the pretrainings, with the epochs each trains: only trained (no emotion test), then started from
declare -A PRETRAINING=([spk]=30 [daae_pt]=10)

if in_stage 1; then
  for corpus in ravdess urdu fsdd; do
    [ -f $M/$corpus.jsonl ] || ssl-ser prepare $corpus "$DATA/$corpus" --out $M/$corpus.jsonl
  done
  "$PYTHON" "$RECIPE/local/ood.py" $M/urdu.jsonl $M/fsdd.jsonl --per-speaker 100 --out $M/ood.jsonl
fi

in_stage 2 && shards $M/ravdess.jsonl ravdess

if in_stage 3; then
  job pyresnet_final pyresnet common pyresnet_final
  for f in $FOLDS; do
    split=("data.valid=[shards/fold$f/valid]")
    job sup20_f$f pyresnet common pyresnet_final "data.train=[shards/fold$f/labelled]" "${split[@]}"
    job sup20_long_f$f pyresnet common pyresnet_final long "data.train=[shards/fold$f/labelled]" "${split[@]}"
    # sup20 with the per-speaker feature statistics from the hidden 80 % too: the
    # supervised method trains on data.train alone, speaker normalisation reads every shard set.
    # The one way dec_nc uses the unlabelled audio without a loss on it, besides its batches.
    job spknorm_f$f pyresnet common pyresnet_final "data.train=[shards/fold$f/labelled]" \
      "data.unlabelled=[shards/fold$f/unlabelled]" "${split[@]}"
    job dec_f$f pyresnet common pyresnet_final dec \
      "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled]" "${split[@]}"
    job dec_c_f$f pyresnet common pyresnet_final dec centroids \
      "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled]" "${split[@]}"
    job dec_nc_f$f pyresnet common pyresnet_final dec no_cluster \
      "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled]" "${split[@]}"
    job dec_c_ood_f$f pyresnet common pyresnet_final dec centroids \
      "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled,shards/ood]" "${split[@]}"
    job spk_f$f pyresnet common pyresnet_final speaker "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled]" \
      "data.valid=[]" "method.trials_from=[shards/fold$f/valid]"
    job spk_ft_f$f pyresnet common pyresnet_final "data.train=[shards/fold$f/labelled]" "${split[@]}" \
      "train.init_from=runs/spk_f$f"
    for scheme in neutral same both; do  # CopyPaste, from scratch and from the speaker pretraining
      job cp_${scheme}_f$f pyresnet common pyresnet_final copypaste "augment.copypaste.scheme=$scheme" \
        "data.train=[shards/fold$f/labelled]" "${split[@]}"
      job cp_${scheme}_ft_f$f pyresnet common pyresnet_final copypaste "augment.copypaste.scheme=$scheme" \
        "data.train=[shards/fold$f/labelled]" "${split[@]}" "train.init_from=runs/spk_f$f"
    done
    job daae_pt_f$f daae_pretrain ../../ravdess_daae/conf/small daae daae_pretrain \
      "data.train=[shards/fold$f/labelled,shards/fold$f/unlabelled,shards/ood]" "${split[@]}"
    daae=(daae_finetune ../../ravdess_daae/conf/small daae daae_finetune "data.train=[shards/fold$f/labelled]" "${split[@]}"
      $PLAIN_CE)
    job daae_ft_f$f "${daae[@]}" "train.init_from=runs/daae_pt_f$f/checkpoint_epoch-000010"
    job daae_scratch_f$f "${daae[@]}" "train.init_from=null"
  done
fi

in_stage 4 && logged ceiling ssl-ser cv jobs/pyresnet_final.yaml --folds ravdess_emobox --valid-speakers 4 --debug

in_stage 5 && "$PYTHON" "$COMMON/hidden_folds.py" $M/ravdess.jsonl $M/fold --keep "${KEEP:-0.2}" \
  --valid-from $CEILING/folds.json

if in_stage 6; then
  shards $M/ood.jsonl ood
  for f in $FOLDS; do
    for part in labelled unlabelled valid test; do shards $M/fold$f.$part.jsonl fold$f/$part; done
  done
fi

if in_stage 7; then  # run <name>_f<fold>, seed 0, scored on the fold's test actors
  for f in $FOLDS; do
    for name in $RUNS; do
      run=${name}_f$f
      if [ -n "${PRETRAINING[$name]:-}" ]; then  # trained, not scored on emotions
        trained "$run" "${PRETRAINING[$name]}" || logged "$run" ssl-ser train "jobs/$run.yaml" --debug --set "name=$run"
        continue
      fi
      [ -f "runs/$run/test/metrics.json" ] || logged "$run" ssl-ser train "jobs/$run.yaml" --debug --set "name=$run"
      evaluate "runs/$run" "shards/fold$f/test" "runs/$run/test"
    done
  done
fi

if in_stage 8; then
  # pretrainings have no emotion test; each method is paired with its control too:
  # DeepEmoCluster with the never-clustered job, CopyPaste with the same run without it, DAAE
  # with its own network trained on the 20 % alone (its baseline, not the PyResNet's)
  scored="" pairs=()
  for name in $RUNS; do
    if [ -n "${PRETRAINING[$name]:-}" ]; then pairs+=(--pretraining "$name"); else scored+="$name "; fi
  done
  pairs+=(--pair spknorm:sup20 --pair dec_nc:spknorm --pair dec_c:dec_nc --pair dec:dec_nc --pair dec_c_ood:dec_c
         --against daae_ft:daae_scratch)
  for scheme in neutral same both; do pairs+=(--pair cp_$scheme:sup20 --pair cp_${scheme}_ft:spk_ft); done
  "$PYTHON" "$RECIPE/local/results.py" runs --ceiling $CEILING --folds "$FOLDS" --runs "$scored" "${pairs[@]}" \
    --out "$RECIPE/results.md" --plot "$RECIPE/clustering.png"
  for f in $FOLDS; do  # what the clusters follow besides emotion (every kept checkpoint's table)
    "$PYTHON" "$RECIPE/local/cluster_content.py" $M/fold$f.unlabelled.jsonl runs/dec_f$f runs/dec_c_f$f
  done | awk 'NR <= 2 || !/^\| run|^\|---/' | tee "$RECIPE/cluster_content.md"
  "$PYTHON" "$RECIPE/local/embedding_map.py" runs/dec_c_f2 $M/fold2.labelled.jsonl $M/fold2.unlabelled.jsonl \
    --shards shards/fold2/labelled shards/fold2/unlabelled --out "$RECIPE/embedding_map.png"
fi
exit 0
