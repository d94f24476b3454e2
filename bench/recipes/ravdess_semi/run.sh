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
# `spk`, the speaker pretraining, is only trained, and `spk_ft` starts from it), 8 tables,
# paired tests and pictures.
# Environment: DATA (holds ravdess/, urdu/, fsdd/), EXP, and optionally FOLDS (default
# "1 2 3 4 5 6"), RUNS (default "sup20 sup20_long dec dec_c dec_nc dec_c_ood spk spk_ft"), KEEP
# (labelled share, default 0.2), LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
FOLDS=${FOLDS:-1 2 3 4 5 6}
RUNS=${RUNS:-sup20 sup20_long dec dec_c dec_nc dec_c_ood spk spk_ft}
M=manifests
CEILING=runs/pyresnet_final-cv-ravdess_emobox

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
      if [ "$name" = spk ]; then  # pretraining: trained, not scored on emotions
        trained "$run" 30 || logged "$run" ssl-ser train "jobs/$run.yaml" --debug --set "name=$run"
        continue
      fi
      [ -f "runs/$run/test/metrics.json" ] || logged "$run" ssl-ser train "jobs/$run.yaml" --debug --set "name=$run"
      evaluate "runs/$run" "shards/fold$f/test" "runs/$run/test"
    done
  done
fi

if in_stage 8; then
  # spk has no emotion test; dec_c_ood is tabled on the folds it has (as run here: 1-3)
  scored=$(for name in $RUNS; do case $name in spk | dec_c_ood) ;; *) printf '%s ' "$name" ;; esac; done)
  "$PYTHON" "$RECIPE/local/results.py" runs --ceiling $CEILING --folds "$FOLDS" --runs "$scored" \
    --pair dec_c:dec_nc --pair dec:dec_nc --partial dec_c_ood --partial-against dec_c --pretraining spk \
    --out "$RECIPE/results.md" --plot "$RECIPE/clustering.png"
  for f in $FOLDS; do  # what the clusters follow besides emotion (every kept checkpoint's table)
    "$PYTHON" "$RECIPE/local/cluster_content.py" $M/fold$f.unlabelled.jsonl runs/dec_f$f runs/dec_c_f$f
  done | awk 'NR <= 2 || !/^\| run|^\|---/' | tee "$RECIPE/cluster_content.md"
  "$PYTHON" "$RECIPE/local/embedding_map.py" runs/dec_c_f2 $M/fold2.labelled.jsonl $M/fold2.unlabelled.jsonl \
    --shards shards/fold2/labelled shards/fold2/unlabelled --out "$RECIPE/embedding_map.png"
fi
exit 0
