#!/usr/bin/env bash
# URDU, 4 classes: the attention-pooling CNN (Li et al. 2018) and PyResNet (LSSED) recipes under
# speaker-independent cross-validation, small versions for CPUs (README.md here).
#
#   DATA=/path/to/corpora EXP=/path/to/urdu_cv bash bench/recipes/urdu_cv/run.sh [--stage N] [--stop-stage M]
#
# Stages: 1 manifest, 2 shards, 3 job configs (jobs/*.yaml + conf/), 4 attention CNN 5 folds,
# 5 PyResNet 5 folds, 6 the utterance statistics network 5 folds (with and without speaker
# normalisation), 7 the functionals front-end + MLP and the x-vector ResNet 5 folds (each with
# and without speaker normalisation), 8 DeepEmoCluster's VGG (with and without speaker
# normalisation) and DAAE (without) 5 folds, 9 the README tables (each says which run it lacks),
# 10 the functionals job without speaker normalisation on voiced frames only (ravdess_emobox
# round 9's lever, checked here on a second corpus), 11 its table, 12 the same + the VAD's timing
# functionals (temporal: ravdess_emobox round 10's lever), 13 its table, 14 DeepEmoCluster's VGG
# without dropout (ravdess_emobox round 12's lever) at the tiny and twice the tiny widths, with
# and without speaker normalisation (URDU_JOBS names some of them, e.g. one per process), 15 its
# table, 16 DAAE on cached features with and without the VAD (ravdess_emobox round 13's lever;
# URDU_JOBS as in 14), 17 its table, 18 the attention CNN as ravdess_emobox round 14 ran it
# (twice the tiny widths, Adam + cosine, segments of the voiced frames only), 19 its table,
# 20 class weights on three networks (ravdess_emobox round 15), 21 its table, 22 the x-vector
# ResNet as ravdess_emobox round 17's stage 66 ran it, 23 its table, 24 the same at three times the
# widths and that on 40 log-mel bands (ravdess_emobox rounds 17-18), 25 its table.
# Environment: DATA (holds urdu/), EXP, and optionally URDU_JOBS, LOCK, WORKERS, PYTHON (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"

# URDU: 400 utterances, 4 classes (angry/happy/neutral/sad, 100 each), 29 speaker tags
in_stage 1 && ssl-ser prepare urdu "$DATA/urdu" --out manifests/urdu.jsonl
in_stage 2 && shards manifests/urdu.jsonl urdu

if in_stage 3; then
  job attention_cnn attention_cnn common attention_cnn $PLAIN_CE
  job pyresnet pyresnet common pyresnet
  job utterance_stats utterance_stats common
  job utterance_stats_nospk utterance_stats common frontend.speaker_norm=false
  # stage 7's rows use all frames (the job's default before the VAD of stage 10)
  job functionals_mlp functionals_mlp common frontend.base.vad=false
  job functionals_mlp_nospk functionals_mlp common frontend.speaker_norm=false frontend.base.vad=false
  job xvector xvector_scratch_copypaste common xvector frontend.speaker_norm=true
  job xvector_nospk xvector_scratch_copypaste common xvector
  # ravdess_emobox's VGG job (its conf files, read relative to this recipe's conf/) and DAAE
  job dec_vgg deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine
  job dec_vgg_nospk deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine \
    frontend.speaker_norm=false
  job daae_nospk daae_finetune common ../../ravdess_daae/conf/small daae $PLAIN_CE   # the paper's input
  job functionals_mlp_nospk_vad functionals_mlp common frontend.speaker_norm=false frontend.base.vad=true
  job functionals_mlp_nospk_tmp functionals_mlp common frontend.speaker_norm=false frontend.base.vad=true \
    frontend.temporal=true
  # ravdess_emobox round 12: the VGG without the paper's dropout 0.5 on its 32-unit layers
  job dec_vgg_do0 deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine \
    model.dropout=0.0
  job dec_vgg_do0_nospk deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine \
    model.dropout=0.0 frontend.speaker_norm=false
  w2=("model.widths=[8,16,16,32,32]" model.fc_dim=64)    # and at twice the widths
  job dec_vgg_do0_w2 deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine \
    model.dropout=0.0 "${w2[@]}"
  job dec_vgg_do0_w2_nospk deepemocluster common ../../ravdess_emobox/conf/dec_vgg ../../ravdess_emobox/conf/adam_cosine \
    model.dropout=0.0 "${w2[@]}" frontend.speaker_norm=false
  # ravdess_emobox round 13: DAAE's segments from the voiced frames only (cached features, as
  # the VAD needs whole utterances), against the same cached job without the VAD
  job daae_cache_nospk daae_finetune common ../../ravdess_daae/conf/small daae data.feature_cache=true $PLAIN_CE
  job daae_vad_nospk daae_finetune common ../../ravdess_daae/conf/small daae data.feature_cache=true \
    frontend.vad=true $PLAIN_CE
  # ravdess_emobox round 14: the attention CNN at twice the tiny widths, Adam + cosine, no mixup,
  # cached features, segments of the voiced frames only; without speaker normalisation (URDU's
  # speakers each speak one emotion, see the README)
  e=../../ravdess_emobox/conf
  job att_w2_vad_nospk attention_cnn common $e/attention_cnn_r8 $e/cache $e/attention_cnn_cpu $e/adam_cosine \
    model.first_channels=4 "model.channels=[8,8,16,16]" frontend.vad=true $PLAIN_CE
  # ravdess_emobox round 15: class weights (inverse training frequency; a fold's training
  # speakers here leave its classes unequal, e.g. 20 neutral clips of 298)
  job att_w2_vad_nospk_bal attention_cnn common $e/attention_cnn_r8 $e/cache $e/attention_cnn_cpu $e/adam_cosine \
    model.first_channels=4 "model.channels=[8,8,16,16]" frontend.vad=true method.class_weight=balanced
  job daae_vad_nospk_bal daae_finetune common ../../ravdess_daae/conf/small daae data.feature_cache=true \
    frontend.vad=true method.class_weight=balanced
  job dec_vgg_do0_w2_nospk_bal deepemocluster common ../../ravdess_emobox/conf/dec_vgg \
    ../../ravdess_emobox/conf/adam_cosine model.dropout=0.0 "${w2[@]}" frontend.speaker_norm=false \
    method.class_weight=balanced
  # ravdess_emobox round 17's x-vector at twice the widths (its stage 66: class weights, Adam +
  # cosine over 20 epochs, widths 16-128; the pick there is three times the widths, stage 68,
  # which finished after this ran); without speaker normalisation, as xvector_nospk
  job xvector_nospk_pick xvector_scratch_copypaste common xvector $e/adam_cosine method.class_weight=balanced \
    "model.widths=[16,32,64,128]"
  # ravdess_emobox rounds 17-18: the same at three times the widths (its stage 68), and that on 40
  # log-mel bands instead of 23 MFCCs (its stage 72, the x-vector's pick there)
  xv_w3=(method.class_weight=balanced "model.widths=[24,48,96,192]")
  job xvector_nospk_w3 xvector_scratch_copypaste common xvector $e/adam_cosine "${xv_w3[@]}"
  job xvector_nospk_w3_mel40 xvector_scratch_copypaste common xvector $e/adam_cosine $e/logmel40 "${xv_w3[@]}"
fi

# 5 folds grouped by speaker; in each fold 3 of the training speakers are held out for
# validation (best checkpoint), the rest train. Rerunning finds finished folds done.
# cv5 JOB...: each job under that protocol, its output in logs/JOB.log
cv5() {
  local j
  for j in "$@"; do logged "$j" ssl-ser cv "jobs/$j.yaml" --folds 5 --valid-speakers 3 --debug; done
}
in_stage 4 && cv5 attention_cnn
in_stage 5 && cv5 pyresnet
if in_stage 6; then
  cv5 utterance_stats utterance_stats_nospk
fi

if in_stage 7; then
  cv5 functionals_mlp functionals_mlp_nospk xvector xvector_nospk
fi

if in_stage 8; then
  cv5 dec_vgg dec_vgg_nospk daae_nospk
fi

if in_stage 9; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "attention-pooling CNN (Li et al. 2018), tiny, 12 epochs" runs/attention_cnn-cv-k5 \
    --row "PyResNet (LSSED), tiny, 30 epochs" runs/pyresnet-cv-k5 \
    --row "utterance statistics network, speaker normalisation" runs/utterance_stats-cv-k5 \
    --row "utterance statistics network, no speaker normalisation" runs/utterance_stats_nospk-cv-k5 \
    --row "functionals front-end + MLP, speaker normalisation" runs/functionals_mlp-cv-k5 \
    --row "functionals front-end + MLP, no speaker normalisation" runs/functionals_mlp_nospk-cv-k5 \
    --row "x-vector ResNet small, speaker normalisation" runs/xvector-cv-k5 \
    --row "x-vector ResNet small, no speaker normalisation" runs/xvector_nospk-cv-k5 || true
  echo
  "$PYTHON" "$COMMON/table.py" cv \
    --row "DeepEmoCluster's VGG, tiny, speaker normalisation" runs/dec_vgg-cv-k5 \
    --row "DeepEmoCluster's VGG, tiny, no speaker normalisation" runs/dec_vgg_nospk-cv-k5 \
    --row "DAAE, small, no pretraining, no speaker normalisation" runs/daae_nospk-cv-k5
fi

in_stage 10 && cv5 functionals_mlp_nospk_vad

if in_stage 11; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "functionals front-end + MLP, no speaker normalisation" runs/functionals_mlp_nospk-cv-k5 \
    --row "the same, voiced frames only (vad: true)" runs/functionals_mlp_nospk_vad-cv-k5
fi

in_stage 12 && cv5 functionals_mlp_nospk_tmp

if in_stage 13; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "functionals front-end + MLP, no speaker normalisation, voiced frames only" runs/functionals_mlp_nospk_vad-cv-k5 \
    --row "the same + the VAD's timing functionals (temporal: true)" runs/functionals_mlp_nospk_tmp-cv-k5
fi

if in_stage 14; then
  cv5 ${URDU_JOBS:-dec_vgg_do0 dec_vgg_do0_nospk dec_vgg_do0_w2 dec_vgg_do0_w2_nospk}
fi

if in_stage 15; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "DeepEmoCluster's VGG, tiny, no dropout, speaker normalisation" runs/dec_vgg_do0-cv-k5 \
    --row "DeepEmoCluster's VGG, tiny, no dropout, no speaker normalisation" runs/dec_vgg_do0_nospk-cv-k5 \
    --row "the same at twice the widths, speaker normalisation" runs/dec_vgg_do0_w2-cv-k5 \
    --row "the same at twice the widths, no speaker normalisation" runs/dec_vgg_do0_w2_nospk-cv-k5
fi

if in_stage 16; then
  cv5 ${URDU_JOBS:-daae_cache_nospk daae_vad_nospk}
fi

if in_stage 17; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "DAAE, small, no pretraining, no speaker normalisation, cached features" runs/daae_cache_nospk-cv-k5 \
    --row "the same, segments of the voiced frames only" runs/daae_vad_nospk-cv-k5
fi
in_stage 18 && cv5 att_w2_vad_nospk
if in_stage 19; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "attention CNN at twice the tiny widths, Adam + cosine, voiced frames, no speaker normalisation" \
    runs/att_w2_vad_nospk-cv-k5
fi

in_stage 20 && cv5 att_w2_vad_nospk_bal daae_vad_nospk_bal dec_vgg_do0_w2_nospk_bal
if in_stage 21; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "attention CNN at twice the tiny widths, voiced frames, no speaker normalisation (stage 18)" \
    runs/att_w2_vad_nospk-cv-k5 --row "the same, class-balanced loss" runs/att_w2_vad_nospk_bal-cv-k5 \
    --row "DAAE, small, no pretraining, voiced frames, no speaker normalisation (stage 16)" runs/daae_vad_nospk-cv-k5 \
    --row "the same, class-balanced loss" runs/daae_vad_nospk_bal-cv-k5 \
    --row "DeepEmoCluster's VGG, twice the tiny widths, no dropout, no speaker normalisation (stage 14)" \
    runs/dec_vgg_do0_w2_nospk-cv-k5 --row "the same, class-balanced emotion loss" runs/dec_vgg_do0_w2_nospk_bal-cv-k5
fi

in_stage 22 && cv5 xvector_nospk xvector_nospk_pick   # the first reruns stage 7's baseline on the current code
if in_stage 23; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "x-vector ResNet small, no speaker normalisation (stage 7's job)" runs/xvector_nospk-cv-k5 \
    --row "the same, ravdess_emobox round 17's stage 66 (class weights, Adam + cosine, 20 epochs, twice the widths)" \
    runs/xvector_nospk_pick-cv-k5
fi

# do ravdess_emobox rounds 17-18's x-vector settings (three times the widths; then 40 log-mel
# bands) hold on a second corpus? URDU_JOBS as in 14 (one job per process)
in_stage 24 && cv5 ${URDU_JOBS:-xvector_nospk_w3 xvector_nospk_w3_mel40}
if in_stage 25; then
  "$PYTHON" "$COMMON/table.py" cv \
    --row "x-vector ResNet small, class weights, Adam + cosine, twice the widths, no speaker normalisation (stage 22)" \
    runs/xvector_nospk_pick-cv-k5 --row "the same at three times the widths" runs/xvector_nospk_w3-cv-k5 \
    --row "the same on 40 log-mel bands (ravdess_emobox round 18's pick)" runs/xvector_nospk_w3_mel40-cv-k5
fi
