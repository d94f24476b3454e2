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
# validation actors, 7 the chosen settings and the cached baseline under `ssl-ser cv` (FOLDS:
# 0-based fold indices, default all six; the x-vector check on fold 1 only), 8 the README tables
# of the first round; second round: 9 the utterance statistics network, its variants and
# PyResNet with functionals on all six folds (selected on the six folds' validation actors),
# 10 their table and the score fusions; third round: 11 the functionals front-end (speaker
# normalisation of every functional) and its variants, the refit on all 20 training actors, and
# the x-vector ResNet, the attention CNN and DeepEmoCluster's VGG on all six folds, 12 their table;
# fourth round: 13 the paper networks beside the speaker-normalised functional vector
# (plus_functionals front-end) and the functionals job's remaining levers, 14 their table;
# fifth round: 15 the attention CNN and DAAE beside the vector (whole utterances) and the VGG joint
# model's refit on all 20 training actors, 16 their table; sixth round: 17 levers without any
# speaker statistic, 18 their table and the speaker-free diagnostics (local/speaker_free.py);
# seventh round: 19 the wider attention CNN on all six folds, 20 a frozen self-supervised encoder
# from weights on disk (SSL_WEIGHTS, SSL_ARCH; skipped without them), 21 their tables; eighth
# round: 22 DAAE's own recipe (stage one on URDU + FSDD, stage two on each fold's 8 emotions) and
# its variants, 23 their table; ninth round: 24 the functionals job on voiced frames only (energy
# VAD), with and without speaker statistics, and each refit on all 20 training actors, 25 their
# tables, 26 PyResNet with round 1's levers on voiced frames only, 27 its table; tenth round:
# 28 PyResNet and the speaker-free functionals on the VAD's span (trim), 29 their tables, 30 the
# functionals job with the VAD's timing functionals (temporal), with and without speaker
# statistics, and each refit on all 20 training actors, 31 their tables and the fusion of the
# speaker-free refits' three seeds, 32 PyResNet with 2-s
# crops on all frames and on the VAD's span, 33 their table, 34 PyResNet with BatchNorm over
# the valid frames only (masked_norm) on all frames and on the span, 35 its table; eleventh
# round: 36 PyResNet with an SGD warm-up + cosine schedule (one-cycle's shape),
# 37 PyResNet with Kaiming initialisation (model.init), with and without zeroed residual
# branches, 38 their table, 39 DeepEmoCluster's VGG (which underfits) with and without Kaiming
# initialisation, 40 its table, 41 PyResNet at five times the rate, with Kaiming initialisation
# and with warm-up + cosine, 42 their table; twelfth round: 43 DeepEmoCluster's VGG without
# dropout and without its pseudo-label loss, 44 their table, 45 the VGG without dropout at
# twice and four times the widths, 46 their table, 47 the VGG at twice the widths with mixup,
# 48 its table; thirteenth round: 49 DAAE's recipe on cached features, with and without the VAD
# (segments of the voiced frames only), 50 their table, 51 DAAE with 1-s segments, 52 its table;
# fourteenth round: 53 the attention CNN on voiced frames at twice and four times the tiny widths,
# 54 their tables (the second against stage 19's run without the VAD), 55 the same at four and
# twice the widths with mixup, 56 their tables; fifteenth round: 57-58 class weights and logit
# adjustment on the networks, 59 their tables; sixteenth round: 60 class weights on the x-vector
# ResNet and the VGG, logit adjustment on PyResNet and DAAE, 61 their tables; seventeenth round:
# 62 class weights on the x-vector ResNet with CopyPaste (as the shipped x-vector jobs train),
# 63 its table, 64 the x-vector's pick (class weights) with Adam + cosine over 20 epochs, 65 its
# table, 66 that at twice the widths, 67 its table, 68 at three times the widths, 69 its table;
# eighteenth round: 70 at four times the widths, 71 its table (against stage 68's rerun), 72 the
# pick on 40 log-mel bands instead of 23 MFCCs, 73 its table.
# Environment: DATA (holds ravdess/; urdu/ and fsdd/ for stages 22 and 49), EXP, FOLDS, and optionally
# SSL_WEIGHTS, SSL_ARCH, LOCK, PYTHON
# (common/stages.sh).
. "$(dirname "$0")/../common/stages.sh"
FOLDS=${FOLDS:-0,1,2,3,4,5}
DAAE_CONF=../../ravdess_daae/conf   # job() reads conf files relative to this recipe's conf/

if in_stage 1; then
  ssl-ser prepare ravdess "$DATA/ravdess" --out manifests/ravdess.jsonl
fi

in_stage 2 && shards manifests/ravdess.jsonl ravdess

if in_stage 3; then
  job pyresnet_r8 pyresnet common pyresnet_r8                       # the earlier baseline
  job pyresnet_r8c pyresnet common pyresnet_r8 cache                # + feature cache
  job pyresnet_final pyresnet common pyresnet_r8 cache final        # + the chosen levers
  job xvector_r8 xvector_scratch_copypaste common xvector_r8 cache  # the second recipe
  job xvector_final xvector_scratch_copypaste common xvector_r8 cache final
  job utterance_stats utterance_stats common                           # second round
  job pyresnet_fx pyresnet common pyresnet_r8 cache final functionals
  job functionals_mlp functionals_mlp common frontend.base.vad=false   # third round (round 9 made vad the job's default)
  job att_cpu attention_cnn common attention_cnn_r8 cache final attention_cnn_cpu $PLAIN_CE
  job att_adam attention_cnn common attention_cnn_r8 cache final attention_cnn_cpu adam_cosine $PLAIN_CE
  job dec_vgg deepemocluster common dec_vgg adam_cosine
  job xvector_fx xvector_scratch_copypaste common xvector_r8 cache final xvector_fx
  job xvector_pf xvector_scratch_copypaste common xvector_r8 cache final xvector_pf   # fourth round
  job pyresnet_pf pyresnet common pyresnet_r8 cache final pyresnet_pf
  job xvector_pf_cos xvector_scratch_copypaste common xvector_r8 cache final xvector_pf adam_cosine
  job xvector_final_cos xvector_scratch_copypaste common xvector_r8 cache final adam_cosine   # seventeenth round
  job xvector_final_cos_mel40 xvector_scratch_copypaste common xvector_r8 cache final adam_cosine logmel40   # eighteenth
  job dec_vgg_pf deepemocluster common dec_vgg adam_cosine dec_vgg_pf
  job att_pf attention_cnn common attention_cnn_r8 cache final adam_cosine attention_cnn_pf $PLAIN_CE   # fifth round
  job daae_pf daae_finetune common cache final adam_cosine daae_pf $PLAIN_CE
  job us_free utterance_stats common frontend.n_mels=128 frontend.n_fft=1024 frontend.hop_length=256 \
    frontend.speaker_norm=false   # sixth round: the functionals job's features, no speaker statistics
  # eighth round: DAAE's two stages at bench/recipes/ravdess_daae's small size (conf files read
  # relative to this recipe's conf/)
  job daae_pretrain daae_pretrain $DAAE_CONF/small $DAAE_CONF/pretrain daae_pretrain
  job daae_ft daae_finetune common $DAAE_CONF/small daae_ft $PLAIN_CE
  job daae_ft_adam daae_finetune common $DAAE_CONF/small daae_ft adam_cosine $PLAIN_CE
fi

# fold 1's training actors less 4 validation actors (the same seeded draw as the cv stage)
if in_stage 4; then
  for j in pyresnet_r8 pyresnet_r8c xvector_r8; do
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
  ablate c_base_s1 pyresnet_r8c_fold0 train.seed=1     # the same, another seed: the noise level
  ablate c_spk pyresnet_r8c_fold0 frontend.speaker_norm=true
  ablate c_sa pyresnet_r8c_fold0 frontend.specaugment.freq_mask=16 frontend.specaugment.time_mask=20
  ablate c_mix pyresnet_r8c_fold0 train.mixup=0.4
  ablate c_ema pyresnet_r8c_fold0 train.ema_decay=0.99
  ablate xv_base xvector_r8_fold0
  # on top of the chosen levers: AdamW + warm-up + cosine instead of SGD steps; twice the widths
  ablate f_adamw pyresnet_r8c_fold0 frontend.speaker_norm=true train.mixup=0.4 optim.name=adamw \
    optim.lr=0.002 optim.weight_decay=0.05 schedule.name=cosine schedule.warmup_epochs=2
  ablate f_wide pyresnet_r8c_fold0 frontend.speaker_norm=true train.mixup=0.4 \
    "model.widths=[16,16,32,32]" model.stem_channels=16
fi

# the chosen levers under the protocol (fold 1: FOLDS=0), and the baselines' best checkpoints
# on fold 1's test actors
if in_stage 7; then
  logged cv_pyresnet_final ssl-ser cv jobs/pyresnet_final.yaml --folds ravdess_emobox --valid-speakers 4 --only "$FOLDS" --debug
  logged cv_pyresnet_r8c ssl-ser cv jobs/pyresnet_r8c.yaml --folds ravdess_emobox --valid-speakers 4 --only "$FOLDS" --debug
  logged cv_xvector_final ssl-ser cv jobs/xvector_final.yaml --folds ravdess_emobox --valid-speakers 4 --only 0 --debug
  g=runs/pyresnet_r8-cv-ravdess_emobox/groups
  for run in base c_base xv_base; do
    [ -f runs/$run/test/metrics.json ] ||
      heavy ssl-ser evaluate runs/$run $g/ravdess-01 $g/ravdess-11 $g/ravdess-20 $g/ravdess-21 --out runs/$run/test
  done
fi

if in_stage 8; then
  "$PYTHON" "$RECIPE/local/ablation_table.py" runs \
    --row "PyResNet tiny, earlier baseline (waveform stream)" base \
    --row "+ feature cache" c_base \
    --row "+ feature cache, seed 1" c_base_s1 \
    --row "+ feature cache + speaker normalisation" c_spk \
    --row "+ feature cache + SpecAugment (F 16, T 20)" c_sa \
    --row "+ feature cache + mixup (alpha 0.4)" c_mix \
    --row "+ feature cache + EMA of weights (0.99)" c_ema \
    --row "PyResNet tiny, chosen: cache + speaker norm + mixup" pyresnet_final-cv-ravdess_emobox/pyresnet_final-fold0 \
    --row "chosen + AdamW 0.002, wd 0.05, warm-up 2 + cosine" f_adamw \
    --row "chosen, widths x2 (16-32, stem 16)" f_wide \
    --row "x-vector ResNet small, earlier baseline + cache" xv_base \
    --row "x-vector ResNet small, chosen levers" xvector_final-cv-ravdess_emobox/xvector_final-fold0
  "$PYTHON" "$RECIPE/local/test_table.py" \
    --cv "baseline + cache" runs/pyresnet_r8c-cv-ravdess_emobox \
    --cv "chosen" runs/pyresnet_final-cv-ravdess_emobox \
    --cv "x-vector, chosen" runs/xvector_final-cv-ravdess_emobox
fi

# cvrun NAME JOB [KEY=VALUE...]: JOB under the protocol as run NAME, with overrides
cvrun() {
  local name=$1 job=$2; shift 2
  local sets=(--set "name=$name")
  for kv in "$@"; do sets+=(--set "$kv"); done
  logged "cv_$name" ssl-ser cv "jobs/$job.yaml" --folds ravdess_emobox --valid-speakers "${VALID:-4}" --only "$FOLDS" \
    --debug "${sets[@]}"
}

# cvrefit NAME JOB [KEY=VALUE...]: the same on all 20 training actors (no validation actors, the
# last epoch is tested): the protocol's last step once nothing is left to choose
cvrefit() { VALID=0 cvrun "$@"; }

# second round: every row on all six folds, chosen on the mean validation UA of their
# validation actors (4 per fold, inside the training actors), never on test actors
if in_stage 9; then
  # (a) one lever at a time on the functionals of the bands alone (hidden 256, dropout 0.3)
  small=("model.hidden=[256]" model.dropout=0.3)
  cvrun us_base utterance_stats "${small[@]}" model.cepstra=0
  cvrun us_lin utterance_stats "${small[@]}" model.cepstra=0 "model.hidden=[]"
  cvrun us_mix utterance_stats "${small[@]}" model.cepstra=0 train.mixup=0.4
  cvrun us_nospk utterance_stats "${small[@]}" model.cepstra=0 frontend.speaker_norm=false
  cvrun us_cep20 utterance_stats "${small[@]}"                 # + cepstral functionals
  # (b) on top of the cepstral functionals; the job's default is the row validation picked
  cvrun us_cep20_warp1 utterance_stats "${small[@]}" frontend.specaugment.freq_warp=0.1
  cvrun us_cep20_h512d5 utterance_stats                        # hidden 512, dropout 0.5
  cvrun us_cep20_s1 utterance_stats "${small[@]}" train.seed=1  # seeds: the noise level, and an ensemble
  cvrun us_cep20_s2 utterance_stats "${small[@]}" train.seed=2
  # (c) PyResNet: another seed of the chosen setting, and with the functionals beside it
  cvrun final_s1 pyresnet_final train.seed=1
  cvrun pyresnet_fx pyresnet_fx
  cvrun pyresnet_fx_cep20 pyresnet_fx model.functionals.cepstra=20
fi

if in_stage 10; then
  r=runs
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "(a) band functionals, hidden 256" \
    --cv "PyResNet tiny, chosen in round 1" $r/pyresnet_final-cv-ravdess_emobox \
    --cv "PyResNet tiny, chosen in round 1, seed 1" $r/final_s1-cv-ravdess_emobox \
    --cv "PyResNet tiny + band functionals" $r/pyresnet_fx-cv-ravdess_emobox \
    --cv "PyResNet tiny + band and cepstral functionals" $r/pyresnet_fx_cep20-cv-ravdess_emobox \
    --cv "(a) band functionals, hidden 256" $r/us_base-cv-ravdess_emobox \
    --cv "(a) no hidden layer (logistic regression)" $r/us_lin-cv-ravdess_emobox \
    --cv "(a) mixup 0.4" $r/us_mix-cv-ravdess_emobox \
    --cv "(a) no speaker normalisation" $r/us_nospk-cv-ravdess_emobox \
    --cv "(a) + cepstral functionals (20): (b)'s base" $r/us_cep20-cv-ravdess_emobox \
    --cv "(b) + VTLP warp 0.1" $r/us_cep20_warp1-cv-ravdess_emobox \
    --cv "(b) hidden 512, dropout 0.5: chosen" $r/us_cep20_h512d5-cv-ravdess_emobox \
    --cv "(b)'s base, seed 1" $r/us_cep20_s1-cv-ravdess_emobox \
    --cv "(b)'s base, seed 2" $r/us_cep20_s2-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/fuse.py" --cv "(b)'s base, seed 0" $r/us_cep20-cv-ravdess_emobox \
    --cv "seed 1" $r/us_cep20_s1-cv-ravdess_emobox --cv "seed 2" $r/us_cep20_s2-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/fuse.py" --cv "PyResNet tiny, chosen in round 1" $r/pyresnet_final-cv-ravdess_emobox \
    --cv "(b) hidden 512, dropout 0.5: chosen" $r/us_cep20_h512d5-cv-ravdess_emobox
fi

# third round: the functionals as a front-end, so that speaker normalisation standardises every
# functional per speaker; the remaining paper recipes on all six folds. Chosen as in round 2:
# the highest mean validation UA of the last 5 epochs, never a test actor.
if in_stage 11; then
  # (c) jobs/functionals_mlp.yaml on round 2's log-mels (64 bands, 25-ms window, 10-ms hop)
  old=(frontend.base.n_mels=64 frontend.base.n_fft=400 frontend.base.hop_length=160)
  cvrun fm_base functionals_mlp "${old[@]}"
  cvrun fm_lin functionals_mlp "${old[@]}" "model.hidden=[]"
  cvrun fm_h256 functionals_mlp "${old[@]}" "model.hidden=[256]" model.dropout=0.3
  cvrun fm_nocep functionals_mlp "${old[@]}" frontend.cepstra=0
  cvrun fm_nospk functionals_mlp "${old[@]}" frontend.speaker_norm=false
  # (d) 128 log-mels of a 64-ms window; validation picked the 16-ms hop: the job's default
  cvrun fm_b128 functionals_mlp
  cvrun fm_b128h512 functionals_mlp frontend.base.hop_length=512
  cvrun fm_b128_s1 functionals_mlp train.seed=1
  cvrun fm_b128_s2 functionals_mlp train.seed=2
  # the chosen job trained on all 20 training actors: no validation, the last epoch is tested;
  # three seeds, as for the validation runs
  for seed in 0 1 2; do
    cvrefit fm_b128_refit$([ $seed = 0 ] || echo _s$seed) functionals_mlp train.seed=$seed
  done
  # (e) the other paper recipes under the protocol
  cvrun xvector_final xvector_final
  cvrun xvector_fx xvector_fx
  FOLDS=0 cvrun att_cpu att_cpu      # the paper's schedule stayed near chance on fold 1's validation actors
  cvrun att_adam att_adam
  cvrun dec_vgg dec_vgg
fi

if in_stage 12; then
  r=runs
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "(c) functionals front-end, round 2's log-mels" \
    --cv "utterance statistics network, round 2's choice" $r/us_cep20_h512d5-cv-ravdess_emobox \
    --cv "(c) functionals front-end, round 2's log-mels" $r/fm_base-cv-ravdess_emobox \
    --cv "(c) no hidden layer (logistic regression)" $r/fm_lin-cv-ravdess_emobox \
    --cv "(c) hidden 256, dropout 0.3" $r/fm_h256-cv-ravdess_emobox \
    --cv "(c) no cepstral functionals" $r/fm_nocep-cv-ravdess_emobox \
    --cv "(c) no speaker normalisation" $r/fm_nospk-cv-ravdess_emobox \
    --cv "(d) 128 log-mels, 64-ms window, 16-ms hop: chosen" $r/fm_b128-cv-ravdess_emobox \
    --cv "(d) the same at a 32-ms hop" $r/fm_b128h512-cv-ravdess_emobox \
    --cv "(d) chosen, seed 1" $r/fm_b128_s1-cv-ravdess_emobox \
    --cv "(d) chosen, seed 2" $r/fm_b128_s2-cv-ravdess_emobox \
    --cv "(d) chosen, trained on all 20 training actors" $r/fm_b128_refit-cv-ravdess_emobox \
    --cv "(d) the same, seed 1" $r/fm_b128_refit_s1-cv-ravdess_emobox \
    --cv "(d) the same, seed 2" $r/fm_b128_refit_s2-cv-ravdess_emobox \
    --cv "x-vector ResNet small, round 1's levers" $r/xvector_final-cv-ravdess_emobox \
    --cv "x-vector ResNet small + functionals" $r/xvector_fx-cv-ravdess_emobox \
    --cv "attention CNN, CPU size, paper schedule" $r/att_cpu-cv-ravdess_emobox \
    --cv "attention CNN, CPU size, Adam + cosine" $r/att_adam-cv-ravdess_emobox \
    --cv "DeepEmoCluster's VGG, tiny" $r/dec_vgg-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/fuse.py" --cv "(d) chosen, seed 0" $r/fm_b128-cv-ravdess_emobox \
    --cv "seed 1" $r/fm_b128_s1-cv-ravdess_emobox --cv "seed 2" $r/fm_b128_s2-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/fuse.py" --cv "(d) on all 20 training actors, seed 0" $r/fm_b128_refit-cv-ravdess_emobox \
    --cv "seed 1" $r/fm_b128_refit_s1-cv-ravdess_emobox --cv "seed 2" $r/fm_b128_refit_s2-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/fuse.py" --cv "(d) chosen" $r/fm_b128-cv-ravdess_emobox \
    --cv "x-vector ResNet small + functionals" $r/xvector_fx-cv-ravdess_emobox
fi

# fourth round: x-vector ResNet, PyResNet and DeepEmoCluster's VGG each beside the
# speaker-normalised functional vector in one model (the plus_functionals front-end appends the
# functionals job's vector to the network's own features; with_functionals splits them), and the
# levers the functionals job had not tried. Chosen as before, on validation actors only.
if in_stage 13; then
  cvrun fm_ls1 functionals_mlp method.label_smoothing=0.1
  cvrun fm_ema functionals_mlp train.ema_decay=0.99
  cvrun fm_mix2 functionals_mlp train.mixup=0.2
  cvrun fm_adamw functionals_mlp optim.name=adamw optim.weight_decay=0.05
  cvrun fm_mom functionals_mlp frontend.moments=true
  cvrun xvector_pf xvector_pf
  cvrun pyresnet_pf pyresnet_pf
  cvrun dec_vgg_pf dec_vgg_pf
  cvrun xvector_pf_cos xvector_pf_cos   # the functionals job's optimiser and schedule (20 epochs)
  cvrefit xvector_pf_refit xvector_pf
  cvrefit xvector_pf_cos_refit xvector_pf_cos   # the x-vector variant validation chose
  cvrefit pyresnet_pf_refit pyresnet_pf
fi

if in_stage 14; then
  r=runs
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "functionals job, round 3's choice" \
    --cv "functionals job, round 3's choice" $r/fm_b128-cv-ravdess_emobox \
    --cv "+ label smoothing 0.1" $r/fm_ls1-cv-ravdess_emobox \
    --cv "+ EMA of the weights (0.99)" $r/fm_ema-cv-ravdess_emobox \
    --cv "+ mixup 0.2" $r/fm_mix2-cv-ravdess_emobox \
    --cv "AdamW, weight decay 0.05" $r/fm_adamw-cv-ravdess_emobox \
    --cv "+ skewness and kurtosis" $r/fm_mom-cv-ravdess_emobox \
    --cv "x-vector ResNet small, round 1's levers" $r/xvector_final-cv-ravdess_emobox \
    --cv "x-vector + functionals inside the model (round 3)" $r/xvector_fx-cv-ravdess_emobox \
    --cv "x-vector + speaker-normalised functionals" $r/xvector_pf-cv-ravdess_emobox \
    --cv "the same, Adam + cosine, 20 epochs" $r/xvector_pf_cos-cv-ravdess_emobox \
    --cv "x-vector + speaker-normalised functionals, all 20 actors" $r/xvector_pf_refit-cv-ravdess_emobox \
    --cv "the same, Adam + cosine, 20 epochs, all 20 actors" $r/xvector_pf_cos_refit-cv-ravdess_emobox \
    --cv "PyResNet tiny, round 1's levers" $r/pyresnet_final-cv-ravdess_emobox \
    --cv "PyResNet + functionals inside the model (round 2)" $r/pyresnet_fx-cv-ravdess_emobox \
    --cv "PyResNet + speaker-normalised functionals" $r/pyresnet_pf-cv-ravdess_emobox \
    --cv "PyResNet + speaker-normalised functionals, all 20 actors" $r/pyresnet_pf_refit-cv-ravdess_emobox \
    --cv "DeepEmoCluster's VGG, tiny (round 3)" $r/dec_vgg-cv-ravdess_emobox \
    --cv "DeepEmoCluster's VGG + speaker-normalised functionals" $r/dec_vgg_pf-cv-ravdess_emobox
  for joint in xvector_pf xvector_pf_cos pyresnet_pf dec_vgg_pf; do  # would a fusion be chosen?
    echo
    "$PYTHON" "$RECIPE/local/fuse.py" --cv "functionals job" $r/fm_b128-cv-ravdess_emobox \
      --cv "$joint" $r/$joint-cv-ravdess_emobox
  done
  echo
  # how much of a new actor's audio speaker normalisation needs (local/enrolment.py): the
  # speaker_prior chosen on the validation actors, then both on the test actors
  "$PYTHON" "$RECIPE/local/enrolment.py" $r/fm_b128-cv-ravdess_emobox --actors valid --prior 0 2 5 10 20
  echo
  "$PYTHON" "$RECIPE/local/enrolment.py" $r/fm_b128-cv-ravdess_emobox --prior 0 2
  echo
  "$PYTHON" "$RECIPE/local/enrolment.py" $r/fm_b128_refit-cv-ravdess_emobox --which latest --prior 0 2
fi

# fifth round: the attention CNN and DAAE's network beside the speaker-normalised functional
# vector, on whole utterances (conf/attention_cnn_pf.yaml says why); the last step for
# DeepEmoCluster's VGG joint model, as stage 13 did for the x-vector and PyResNet ones; and
# per-utterance normalisation of the functionals' log-mels, with and without speaker_norm, a
# class-balanced loss and a warm-up for the functionals job.
if in_stage 15; then
  cvrun att_pf att_pf
  cvrun daae_pf daae_pf
  cvrefit dec_vgg_pf_refit dec_vgg_pf
  cvrun fm_b128_nospk functionals_mlp frontend.speaker_norm=false   # no test-speaker statistics
  cvrun fm_utt functionals_mlp frontend.base.normalize=true frontend.speaker_norm=false
  cvrun fm_utt_spk functionals_mlp frontend.base.normalize=true
  cvrun fm_cb functionals_mlp method.class_weight=balanced   # levers round 4 had not measured
  cvrun fm_warm functionals_mlp schedule.warmup_epochs=2
fi

if in_stage 16; then
  r=runs
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "functionals job, round 3's choice" \
    --cv "functionals job, round 3's choice" $r/fm_b128-cv-ravdess_emobox \
    --cv "functionals job, all 20 actors" $r/fm_b128_refit-cv-ravdess_emobox \
    --cv "no speaker normalisation" $r/fm_b128_nospk-cv-ravdess_emobox \
    --cv "log-mels normalised per utterance, no speaker normalisation" $r/fm_utt-cv-ravdess_emobox \
    --cv "log-mels normalised per utterance, then per speaker" $r/fm_utt_spk-cv-ravdess_emobox \
    --cv "class-balanced loss" $r/fm_cb-cv-ravdess_emobox \
    --cv "2 warm-up epochs before the cosine" $r/fm_warm-cv-ravdess_emobox \
    --cv "attention CNN, CPU size, Adam + cosine (round 3)" $r/att_adam-cv-ravdess_emobox \
    --cv "attention CNN + speaker-normalised functionals" $r/att_pf-cv-ravdess_emobox \
    --cv "DAAE's network + speaker-normalised functionals" $r/daae_pf-cv-ravdess_emobox \
    --cv "DeepEmoCluster's VGG + speaker-normalised functionals" $r/dec_vgg_pf-cv-ravdess_emobox \
    --cv "the same, all 20 actors" $r/dec_vgg_pf_refit-cv-ravdess_emobox
  for joint in att_pf daae_pf; do  # would a fusion be chosen?
    echo
    "$PYTHON" "$RECIPE/local/fuse.py" --cv "functionals job" $r/fm_b128-cv-ravdess_emobox \
      --cv "$joint" $r/$joint-cv-ravdess_emobox
  done
fi

# sixth round: no statistic of any test speaker (EmoBox's setting). The utterance statistics
# network on the functionals job's log-mels, so that augmentations of the log-mels still reach
# the functionals (the functionals front-end caches one vector per utterance).
if in_stage 17; then
  cvrun sf_base us_free
  cvrun sf_warp1 us_free frontend.specaugment.freq_warp=0.1
  cvrun sf_warp2 us_free frontend.specaugment.freq_warp=0.2
  cvrun sf_sa us_free frontend.specaugment.freq_mask=8 frontend.specaugment.time_mask=20 \
    frontend.specaugment.n_freq=2 frontend.specaugment.n_time=2
  cvrun sf_mix us_free train.mixup=0.2
  # why the tiny attention CNN does not fit its training set (section 11): without mixup, and
  # at twice the widths; fold 1 only (its validation actors)
  FOLDS=0 cvrun att_nomix att_adam train.mixup=0.0
  FOLDS=0 cvrun att_w2_nomix att_adam train.mixup=0.0 model.first_channels=4 "model.channels=[8,8,16,16]"
  # URDU's 29 speakers as extra training speakers (stage 18's diagnostic)
  [ -f manifests/urdu.jsonl ] || ssl-ser prepare urdu "$DATA/urdu" --out manifests/urdu.jsonl
fi

if in_stage 18; then
  r=runs
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "speaker-free utterance statistics network" \
    --cv "functionals job, no speaker normalisation (round 5)" $r/fm_b128_nospk-cv-ravdess_emobox \
    --cv "speaker-free utterance statistics network" $r/sf_base-cv-ravdess_emobox \
    --cv "+ VTLP warp 0.1" $r/sf_warp1-cv-ravdess_emobox \
    --cv "+ VTLP warp 0.2" $r/sf_warp2-cv-ravdess_emobox \
    --cv "+ SpecAugment (2 x 8 bands, 2 x 20 frames)" $r/sf_sa-cv-ravdess_emobox \
    --cv "+ mixup 0.2" $r/sf_mix-cv-ravdess_emobox
  echo
  "$PYTHON" "$RECIPE/local/cv_table.py" --baseline "attention CNN, CPU size, Adam + cosine (round 3)" \
    --cv "attention CNN, CPU size, Adam + cosine (round 3)" $r/att_adam-cv-ravdess_emobox \
    --cv "the same without mixup (fold 1)" $r/att_nomix-cv-ravdess_emobox \
    --cv "the same at twice the widths (fold 1)" $r/att_w2_nomix-cv-ravdess_emobox
  echo
  # speaker-free heads on the functionals job's vectors, and test UA against the number of
  # training actors with and without speaker statistics (the folds of round 5's speaker-free run)
  "$PYTHON" "$RECIPE/local/speaker_free.py" --manifest manifests/ravdess.jsonl \
    --folds-json $r/fm_b128_nospk-cv-ravdess_emobox/folds.json --cache speaker_free/feats.npz \
    --extra-manifest manifests/urdu.jsonl --extra-cache speaker_free/urdu.npz
fi

# seventh round: the attention CNN at twice the widths without mixup (stage 17's fold-1 check) on
# all six folds
in_stage 19 && cvrun att_w2_nomix att_adam train.mixup=0.0 model.first_channels=4 "model.channels=[8,8,16,16]"

# a frozen self-supervised encoder (the ssl_encoder front-end), EmoBox's own setting. Nothing is
# downloaded: SSL_WEIGHTS is the torchaudio state dict of SSL_ARCH (default wavlm_base, e.g.
# torchaudio.pipelines.WAVLM_BASE's wavlm_base.pth); without it the stage says so and is skipped.
# SSL_WEIGHTS=random runs the control: the same architecture randomly initialised (seed 0), what
# pretraining must beat (runs ssl_random_ARCH*). Every utterance is encoded once
# (EXP/cache/ssl_encoder), for all folds and both runs.
ssl_name() { [ "${SSL_WEIGHTS:-}" = random ] && echo "ssl_random_$1" || echo "ssl_$1"; }
if in_stage 20; then
  arch=${SSL_ARCH:-wavlm_base}
  name=$(ssl_name "$arch")
  weights=${SSL_WEIGHTS:-}
  if [ "$weights" = random ]; then
    weights=models/random_$arch.pth
    [ -f "$weights" ] || { mkdir -p models; "$PYTHON" -c "import sys, torch, torchaudio.models as m
torch.manual_seed(0); torch.save(getattr(m, sys.argv[1])().state_dict(), sys.argv[2])" "$arch" "$weights"; }
  fi
  if [ -z "$weights" ]; then
    echo "stage 20: skipped: set SSL_WEIGHTS to the torchaudio state dict of $arch (SSL_ARCH), or to random"
  else
    [ -f "$weights" ] || { echo "stage 20: SSL_WEIGHTS=$weights is not a file" >&2; exit 2; }
    job "$name" ssl_encoder_mlp common "frontend.arch=$arch" "frontend.weights=$(realpath "$weights")" \
      "frontend.cache_dir=$EXP/cache/ssl_encoder"
    cvrun "$name" "$name"                                   # no speaker statistics (EmoBox)
    cvrun "${name}_spk" "$name" frontend.speaker_norm=true   # each test speaker's statistics
  fi
fi

# table LABEL RUN [LABEL RUN]: cv_table.py of the runs (TABLE_OPTIONS: more of its options, e.g.
# --losses), or one line saying which is missing
table() {
  local args=() label
  while [ $# -gt 0 ]; do
    [ -d "runs/$2" ] || { echo "no runs/$2 (its stage has not run): table skipped"; return 0; }
    label=${label:-$1}
    args+=(--cv "$1" "runs/$2"); shift 2
  done
  "$PYTHON" "$RECIPE/local/cv_table.py" ${TABLE_OPTIONS:-} --baseline "$label" "${args[@]}"
}

# refit_table RUN:LABEL...: table of each RUN's refits on all 20 training actors (cvrefit's
# RUN_refit, RUN_refit_s1, RUN_refit_s2: seeds 0-2), one row per seed
refit_table() {
  local args=() arm s
  for arm in "$@"; do
    for s in "" _s1 _s2; do
      args+=("${arm#*:}, all 20 training actors${s/_s/, seed }" "${arm%%:*}_refit$s-cv-ravdess_emobox")
    done
  done
  table "${args[@]}"
}

if in_stage 21; then
  table "attention CNN at twice the widths, no mixup" att_w2_nomix-cv-ravdess_emobox
  echo
  name=$(ssl_name "${SSL_ARCH:-wavlm_base}")
  table "$name, no speaker statistics" "$name-cv-ravdess_emobox" \
    "$name, speaker-normalised" "${name}_spk-cv-ravdess_emobox"
fi

# eighth round: DAAE's own recipe (Gao et al. 2021) with all labels under the protocol, at
# bench/recipes/ravdess_daae's small size (jobs of stage 3): stage one on URDU + FSDD (no RAVDESS
# audio: one pretraining for all six folds), stage two on each fold's 8 emotions from it; the
# same fine-tuning from scratch; and from the pretraining with Adam + cosine over 20 epochs (the
# other networks' remedy for underfitting) instead of the paper's Adadelta over 10
daae_stage_one() {
  [ -f manifests/urdu.jsonl ] || ssl-ser prepare urdu "$DATA/urdu" --out manifests/urdu.jsonl
  [ -f manifests/fsdd.jsonl ] || ssl-ser prepare fsdd "$DATA/fsdd" --out manifests/fsdd.jsonl
  shards manifests/urdu.jsonl urdu
  shards manifests/fsdd.jsonl fsdd
  trained daae_pretrain 10 || logged daae_pretrain ssl-ser train jobs/daae_pretrain.yaml --debug
}

if in_stage 22; then
  daae_stage_one
  cvrun daae_ft daae_ft
  cvrun daae_scratch daae_ft train.init_from=null
  cvrun daae_ft_adam daae_ft_adam
fi

if in_stage 23; then
  table "DAAE, stage one on URDU + FSDD (the paper's recipe, small)" daae_ft-cv-ravdess_emobox \
    "DAAE, no stage one" daae_scratch-cv-ravdess_emobox \
    "DAAE, stage one, then Adam + cosine, 20 epochs" daae_ft_adam-cv-ravdess_emobox
fi

# ninth round: speech frames only. RAVDESS clips are about half silence (the energy VAD keeps
# 56 % of the frames on average: stage 25's first table), which fills every functional's low
# quantiles and the networks' crops.
# `frontend.base.vad: true` keeps the voiced frames (Kaldi's compute-vad, as the x-vector's MFCCs
# do) before the functionals. The functionals job without and with speaker statistics, chosen
# on validation actors as before; then each refit on all 20 training actors (three seeds: the
# protocol's last step, cheap here, run for both arms so the comparison stays paired).
if in_stage 24; then
  cvrun fm_b128_nospk functionals_mlp frontend.speaker_norm=false
  cvrun fm_vad_nospk functionals_mlp frontend.speaker_norm=false frontend.base.vad=true
  cvrun fm_b128 functionals_mlp
  cvrun fm_vad functionals_mlp frontend.base.vad=true
  for seed in 0 1 2; do
    s=$([ $seed = 0 ] || echo _s$seed)
    cvrefit fm_b128_nospk_refit$s functionals_mlp train.seed=$seed frontend.speaker_norm=false
    cvrefit fm_vad_nospk_refit$s functionals_mlp train.seed=$seed frontend.speaker_norm=false frontend.base.vad=true
    cvrefit fm_b128_refit$s functionals_mlp train.seed=$seed
    cvrefit fm_vad_refit$s functionals_mlp train.seed=$seed frontend.base.vad=true
  done
fi

if in_stage 25; then
  "$PYTHON" "$RECIPE/local/voiced_share.py" "$DATA/ravdess" $([ -d "$DATA/urdu" ] && echo "$DATA/urdu")
  echo
  table "functionals job, no speaker statistics" fm_b128_nospk-cv-ravdess_emobox \
    "the same, voiced frames only" fm_vad_nospk-cv-ravdess_emobox \
    "speaker-normalised functionals job (round 3's choice)" fm_b128-cv-ravdess_emobox \
    "speaker-normalised, voiced frames only" fm_vad-cv-ravdess_emobox
  echo
  refit_table "fm_b128_nospk:no speaker statistics" "fm_vad_nospk:no speaker statistics, voiced frames only" \
    "fm_b128:speaker-normalised" "fm_vad:speaker-normalised, voiced frames only"
fi

# ninth round, second part: the same lever for a network. PyResNet tiny with round 1's levers
# (speaker normalisation, mixup), and the same on voiced frames only: its 4-s training crops
# then hold the whole spoken part of a clip instead of about half silence.
if in_stage 26; then
  cvrun pyresnet_final pyresnet_final
  cvrun pyresnet_vad pyresnet_final frontend.vad=true
fi

if in_stage 27; then
  table "PyResNet tiny, round 1's levers" pyresnet_final-cv-ravdess_emobox \
    "the same, voiced frames only" pyresnet_vad-cv-ravdess_emobox
fi

# tenth round: the VAD's span instead of its frames (`vad: {trim: true}`). Only the leading and
# trailing silence goes and the pauses stay, so a network's convolutions still read neighbouring
# frames (round 9's voiced frames joined every word to the next and cost PyResNet 0.06). The same
# for the functionals without speaker statistics, where the voiced frames helped.
if in_stage 28; then
  cvrun pyresnet_trim pyresnet_final "frontend.vad={trim: true}"
  cvrun fm_trim_nospk functionals_mlp frontend.speaker_norm=false "frontend.base.vad={trim: true}"
fi

if in_stage 29; then
  table "PyResNet tiny, round 1's levers" pyresnet_final-cv-ravdess_emobox \
    "the same, voiced frames only" pyresnet_vad-cv-ravdess_emobox \
    "the same, trimmed to the VAD's span" pyresnet_trim-cv-ravdess_emobox
  echo
  table "functionals job, no speaker statistics, all frames" fm_b128_nospk-cv-ravdess_emobox \
    "the same, voiced frames only" fm_vad_nospk-cv-ravdess_emobox \
    "the same, trimmed to the VAD's span" fm_trim_nospk-cv-ravdess_emobox
fi

# tenth round, second part: the timing that the VAD discards. Keeping only the voiced frames
# drops how long the speaker spoke and paused (eGeMAPS's temporal parameters); the
# functionals front-end's `temporal: true` appends six timing functionals of the base's VAD over
# the speech span (silence before and after it left out). With and without speaker statistics,
# chosen on validation actors; each refit on all 20 training actors (seeds 0-2, paired with
# stage 24's refits).
if in_stage 30; then
  cvrun fm_tmp_nospk functionals_mlp frontend.speaker_norm=false frontend.base.vad=true frontend.temporal=true
  cvrun fm_tmp functionals_mlp frontend.base.vad=true frontend.temporal=true
  for seed in 0 1 2; do
    s=$([ $seed = 0 ] || echo _s$seed)
    cvrefit fm_tmp_nospk_refit$s functionals_mlp train.seed=$seed frontend.speaker_norm=false frontend.base.vad=true \
      frontend.temporal=true
    cvrefit fm_tmp_refit$s functionals_mlp train.seed=$seed frontend.base.vad=true frontend.temporal=true
  done
fi

if in_stage 31; then
  table "functionals job on voiced frames, no speaker statistics" fm_vad_nospk-cv-ravdess_emobox \
    "+ timing functionals, no speaker statistics" fm_tmp_nospk-cv-ravdess_emobox \
    "speaker-normalised, voiced frames" fm_vad-cv-ravdess_emobox \
    "+ timing functionals, speaker-normalised" fm_tmp-cv-ravdess_emobox
  echo
  refit_table "fm_vad_nospk:no speaker statistics, voiced frames" "fm_tmp_nospk:+ timing functionals, no speaker statistics" \
    "fm_vad:speaker-normalised, voiced frames" "fm_tmp:+ timing functionals, speaker-normalised"
  echo
  # the three seeds' refits fused (mean of their probabilities): does an ensemble help?
  if [ -d runs/fm_vad_nospk_refit_s2-cv-ravdess_emobox ]; then
    "$PYTHON" "$RECIPE/local/fuse.py" --cv "seed 0" runs/fm_vad_nospk_refit-cv-ravdess_emobox \
      --cv "seed 1" runs/fm_vad_nospk_refit_s1-cv-ravdess_emobox --cv "seed 2" runs/fm_vad_nospk_refit_s2-cv-ravdess_emobox
  fi
fi

# tenth round, third part: why the network wants its silence. The voiced frames or their span
# fill about 2.2 s of a 4-s training crop and zero padding the rest, whose zeros BatchNorm
# counts in its statistics; all frames fill 3.7 s. 2-s crops leave little padding with the
# span, and also move the crop over the speech. The same crop on all frames is the control.
if in_stage 32; then
  cvrun pyresnet_c2 pyresnet_final data.crop_seconds=2.0
  cvrun pyresnet_trim_c2 pyresnet_final "frontend.vad={trim: true}" data.crop_seconds=2.0
fi

if in_stage 33; then
  table "PyResNet tiny, round 1's levers (4-s crops)" pyresnet_final-cv-ravdess_emobox \
    "the same, trimmed to the VAD's span" pyresnet_trim-cv-ravdess_emobox \
    "the same, 2-s crops" pyresnet_c2-cv-ravdess_emobox \
    "trimmed to the VAD's span, 2-s crops" pyresnet_trim_c2-cv-ravdess_emobox
fi

# tenth round, fourth part: the padding fix itself. `model.masked_norm: true` makes PyResNet's
# BatchNorm statistics count the valid frames only (MaskedBatchNorm2d), at the 4-s crops: on all
# frames, and on the VAD's span (whose crops are about half padding)
if in_stage 34; then
  cvrun pyresnet_mbn pyresnet_final model.masked_norm=true
  cvrun pyresnet_trim_mbn pyresnet_final "frontend.vad={trim: true}" model.masked_norm=true
fi

if in_stage 35; then
  table "PyResNet tiny, round 1's levers (4-s crops)" pyresnet_final-cv-ravdess_emobox \
    "the same, BatchNorm over valid frames" pyresnet_mbn-cv-ravdess_emobox \
    "trimmed to the VAD's span" pyresnet_trim-cv-ravdess_emobox \
    "trimmed to the VAD's span, BatchNorm over valid frames" pyresnet_trim_mbn-cv-ravdess_emobox \
    "trimmed to the VAD's span, 2-s crops" pyresnet_trim_c2-cv-ravdess_emobox
fi

# eleventh round: the schedule and initialisation levers the issue lists and no round measured.
# One-cycle's shape (linear warm-up to a peak, cosine decay to zero) with round 1's SGD at its
# rate (0.01); round 1 tried warm-up + cosine only with AdamW (one-cycle's higher peak: stage 41).
if in_stage 36; then
  cvrun pyresnet_cos pyresnet_final schedule.name=cosine schedule.warmup_epochs=3
fi

# Initialisation (`model.init`, ssl_ser/models/init.py): torchvision's ResNet scheme (Kaiming-normal
# convolutions, fan-out) instead of PyTorch's per-layer default, then with every residual branch's
# last BatchNorm zeroed so that each block starts as its shortcut
if in_stage 37; then
  cvrun pyresnet_kaiming pyresnet_final model.init=true
  cvrun pyresnet_kaiming_zr pyresnet_final "model.init={zero_residual: true}"
fi

if in_stage 38; then
  TABLE_OPTIONS=--losses table "PyResNet tiny, round 1's levers (SGD 0.01, x0.1 at epochs 11 and 21)" pyresnet_final-cv-ravdess_emobox \
    "warm-up 3 + cosine, peak 0.01" pyresnet_cos-cv-ravdess_emobox \
    "Kaiming initialisation" pyresnet_kaiming-cv-ravdess_emobox \
    "Kaiming, residual branches zeroed" pyresnet_kaiming_zr-cv-ravdess_emobox
  "$PYTHON" "$RECIPE/local/init_scale.py"   # how much larger Kaiming's weights start
fi

# The same initialisation for DeepEmoCluster's VGG-16 tiny: a plain 13-convolution stack, the
# depth Kaiming's scheme was derived for, and a network that underfits here (round 3: emotion
# loss 1.89 after 20 epochs); the baseline is rerun beside it on the same code
if in_stage 39; then
  cvrun dec_vgg_r11 dec_vgg    # stage 11's run is named dec_vgg
  cvrun dec_vgg_kaiming dec_vgg model.init=true
fi

if in_stage 40; then
  TABLE_OPTIONS=--losses table "DeepEmoCluster's VGG-16 tiny (round 3's job)" dec_vgg_r11-cv-ravdess_emobox \
    "the same, Kaiming initialisation" dec_vgg_kaiming-cv-ravdess_emobox
  "$PYTHON" "$RECIPE/local/init_scale.py" --model vgg16_cluster --set num_clusters=16
fi

# eleventh round, second part: five times round 1's rate (0.05). With Kaiming's weights, whose
# relative steps behind BatchNorm are a median 0.17x of the default's (stage 38's init_scale.py),
# it tests whether they lost for their slower training; with warm-up + cosine it is one-cycle's
# higher peak
if in_stage 41; then
  cvrun pyresnet_kaiming5 pyresnet_final model.init=true optim.lr=0.05
  cvrun pyresnet_cos5 pyresnet_final schedule.name=cosine schedule.warmup_epochs=3 optim.lr=0.05
fi

if in_stage 42; then
  TABLE_OPTIONS=--losses table "PyResNet tiny, round 1's levers (SGD 0.01, x0.1 at epochs 11 and 21)" pyresnet_final-cv-ravdess_emobox \
    "Kaiming initialisation" pyresnet_kaiming-cv-ravdess_emobox \
    "Kaiming initialisation, rate 0.05" pyresnet_kaiming5-cv-ravdess_emobox \
    "warm-up 3 + cosine, peak 0.01" pyresnet_cos-cv-ravdess_emobox \
    "warm-up 3 + cosine, peak 0.05" pyresnet_cos5-cv-ravdess_emobox
fi

# twelfth round: why DeepEmoCluster's VGG-16 tiny does not fit its training actors (emotion loss
# 1.89 of ln 8 = 2.08 after 20 epochs, stage 40). Its fully connected layers are 64 -> 32 -> 32
# units, each behind the paper's dropout 0.5 (sized for 4096 units); and the pseudo-label loss
# weighs as much as the emotion loss. One lever each: no dropout; no pseudo-label loss (the
# clustering still runs, so the rest of the job is the same)
if in_stage 43; then
  cvrun dec_vgg_do0 dec_vgg model.dropout=0.0
  cvrun dec_vgg_nocl dec_vgg method.cluster_weight=0.0
fi

if in_stage 44; then
  TABLE_OPTIONS=--losses table "DeepEmoCluster's VGG-16 tiny (round 3's job)" dec_vgg_r11-cv-ravdess_emobox \
    "the same, no dropout" dec_vgg_do0-cv-ravdess_emobox \
    "the same, no pseudo-label loss" dec_vgg_nocl-cv-ravdess_emobox
fi

# Without dropout the VGG still underfits (emotion + pseudo-label loss 2.08 at epoch 20, stage
# 44): twice the widths (8-32 filters, 64-unit layers; about twice the time per step), and
# four times (16-64 filters, 128 units; about four times)
if in_stage 45; then
  cvrun dec_vgg_do0_w2 dec_vgg model.dropout=0.0 "model.widths=[8,16,16,32,32]" model.fc_dim=64
  cvrun dec_vgg_do0_w4 dec_vgg model.dropout=0.0 "model.widths=[16,32,32,64,64]" model.fc_dim=128
fi

if in_stage 46; then
  TABLE_OPTIONS=--losses table "DeepEmoCluster's VGG-16 tiny, no dropout (stage 43)" dec_vgg_do0-cv-ravdess_emobox \
    "twice the widths" dec_vgg_do0_w2-cv-ravdess_emobox \
    "four times the widths" dec_vgg_do0_w4-cv-ravdess_emobox
fi

# At twice the widths the VGG fits the training voices (validation loss rising with width, stage
# 46): mixup 0.4, the regulariser round 1 chose for PyResNet (conf/final.yaml), which the VGG's
# job never had
if in_stage 47; then
  cvrun dec_vgg_do0_w2_mix dec_vgg model.dropout=0.0 "model.widths=[8,16,16,32,32]" model.fc_dim=64 train.mixup=0.4
fi

if in_stage 48; then
  TABLE_OPTIONS=--losses table "DeepEmoCluster's VGG-16 at twice the tiny widths, no dropout (stage 45)" dec_vgg_do0_w2-cv-ravdess_emobox \
    "the same + mixup 0.4" dec_vgg_do0_w2_mix-cv-ravdess_emobox
fi

# thirteenth round: DAAE on voiced frames. Its 265-ms training segments are drawn anywhere in a
# clip, and a RAVDESS clip is about half silence (stage 25): such a segment carries its clip's
# label and nothing of the emotion, and at test the silence's segments weigh as much in an
# utterance's mean. With `frontend.vad: true` the segments are cut from the whole utterance's
# voiced frames (Predictor.segment_features), which needs the cached features in training
# (whole utterances; 2560 crops per epoch as the stream's). Both arms are cached, so the VAD
# is the only difference; round 8's stream run (stage 22) is the third row
if in_stage 49; then
  daae_stage_one
  cvrun daae_cache daae_ft_adam data.feature_cache=true
  cvrun daae_vad daae_ft_adam data.feature_cache=true frontend.vad=true
fi

if in_stage 50; then
  TABLE_OPTIONS=--losses table "DAAE, stage one, then Adam + cosine, 20 epochs (round 8's job), cached features" \
    daae_cache-cv-ravdess_emobox \
    "the same, segments of the voiced frames only" daae_vad-cv-ravdess_emobox
fi

# The VAD adds 0.014 validation UA (stage 50): the silence is not most of what limits DAAE here;
# a 265-ms segment holds little of an emotion (round 8: training segment accuracy 0.25, fold 1).
# Longer segments at the same cost per epoch: 1-s segments (crops), 4x fewer per epoch and per
# batch than 2560 / 128, so every step sees the same frames; test segments every 0.5 s. Cached
# features, no VAD: the comparison is with stage 49's daae_cache
if in_stage 51; then
  cvrun daae_seg1 daae_ft_adam data.feature_cache=true data.crop_seconds=1.0 data.segment.seconds=1.0 \
    data.segment.train_hop=1.0 data.segment.eval_hop=0.5 data.samples_per_epoch=640 data.batch_size=32
fi

if in_stage 52; then
  TABLE_OPTIONS=--losses table "DAAE, stage one, then Adam + cosine, cached features, 265-ms segments (stage 49)" \
    daae_cache-cv-ravdess_emobox \
    "the same, 1-s segments" daae_seg1-cv-ravdess_emobox
fi

# fourteenth round: the attention CNN on voiced frames. Its 2-s segments (1-s hop in training,
# 0.4-s at test) are cut from the whole clip, about half of which is silence (stage 25), and an
# utterance's score is the mean of its segments'. With `frontend.vad: true` they are cut from the
# voiced frames only, as DAAE's were in stage 49 (+0.014 validation UA there). Section 11's
# setting (twice the tiny widths, no mixup, cached features; stage 19 is its run without the
# VAD); then, as the voiced frames give fewer segments per clip and so cost less, four times the
# tiny widths, the lever section 11 found limiting
att_w2=(train.mixup=0.0 model.first_channels=4 "model.channels=[8,8,16,16]")
att_w4=(train.mixup=0.0 model.first_channels=8 "model.channels=[16,16,32,32]")
if in_stage 53; then
  cvrun att_w2_vad att_adam "${att_w2[@]}" frontend.vad=true
  cvrun att_w4_vad att_adam "${att_w4[@]}" frontend.vad=true
fi

if in_stage 54; then
  TABLE_OPTIONS=--losses table "attention CNN at twice the widths, no mixup, segments of the voiced frames only" \
    att_w2_vad-cv-ravdess_emobox "the same at four times the widths" att_w4_vad-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=--losses table "attention CNN at twice the widths, no mixup (stage 19)" att_w2_nomix-cv-ravdess_emobox \
    "the same, segments of the voiced frames only" att_w2_vad-cv-ravdess_emobox
fi

# At four times the widths the attention CNN fits its training voices (stage 54: training loss
# well below validation loss, which rises): mixup 0.4, round 1's regulariser (conf/final.yaml),
# which section 10 removed from the tiny network because it could not fit
if in_stage 55; then
  cvrun att_w4_vad_mix att_adam "${att_w4[@]}" frontend.vad=true train.mixup=0.4
  cvrun att_w2_vad_mix att_adam "${att_w2[@]}" frontend.vad=true train.mixup=0.4   # and at twice the widths
fi

if in_stage 56; then
  TABLE_OPTIONS=--losses table "attention CNN at four times the widths, no mixup, voiced frames (stage 53)" \
    att_w4_vad-cv-ravdess_emobox "the same + mixup 0.4" att_w4_vad_mix-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=--losses table "attention CNN at twice the widths, no mixup, voiced frames (stage 53)" \
    att_w2_vad-cv-ravdess_emobox "the same + mixup 0.4" att_w2_vad_mix-cv-ravdess_emobox
fi

# fifteenth round: UA weighs every class alike, but the training loss weighs every clip alike, and
# RAVDESS has half as many *neutral* clips (96 of 1440); the segment models name it almost never
# (stage 54's pooled recall 0.01). Inverse-frequency class weights in the cross-entropy
# (`method.class_weight: balanced`, measured in round 5 on the functionals only) on the networks
if in_stage 57; then
  cvrun att_w2_vad_bal att_adam "${att_w2[@]}" frontend.vad=true method.class_weight=balanced
  cvrun pyresnet_cos5_bal pyresnet_final schedule.name=cosine schedule.warmup_epochs=3 optim.lr=0.05 \
    method.class_weight=balanced
fi

# the other remedy, logit adjustment (`method.logit_adjustment: 1`, Menon et al. 2021), whose
# minimiser is the balanced-accuracy rule; class weights on the attention CNN's validation pick
# (four times the widths + mixup, stage 55) and on DAAE's (stage 49)
if in_stage 58; then
  cvrun att_w2_vad_la att_adam "${att_w2[@]}" frontend.vad=true method.logit_adjustment=1.0
  cvrun att_w4_vad_mix_bal att_adam "${att_w4[@]}" frontend.vad=true train.mixup=0.4 method.class_weight=balanced
  daae_stage_one
  cvrun daae_vad_bal daae_ft_adam data.feature_cache=true frontend.vad=true method.class_weight=balanced
fi

recalls="--losses --recall neutral --recall calm"   # stages 59 and 61: UA's neglected class and its neighbour
if in_stage 59; then
  TABLE_OPTIONS=$recalls table "attention CNN at twice the widths, voiced frames (stage 53)" \
    att_w2_vad-cv-ravdess_emobox "the same, class-balanced loss" att_w2_vad_bal-cv-ravdess_emobox \
    "the same, logit adjustment" att_w2_vad_la-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "attention CNN at four times the widths, voiced frames, mixup 0.4 (stage 55)" \
    att_w4_vad_mix-cv-ravdess_emobox "the same, class-balanced loss" att_w4_vad_mix_bal-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "PyResNet tiny, warm-up 3 + cosine, peak 0.05 (stage 41)" \
    pyresnet_cos5-cv-ravdess_emobox "the same, class-balanced loss" pyresnet_cos5_bal-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "DAAE, voiced frames (stage 49)" \
    daae_vad-cv-ravdess_emobox "the same, class-balanced loss" daae_vad_bal-cv-ravdess_emobox
fi

# sixteenth round: class weights on the two networks round 15 did not run them on (the x-vector
# ResNet small with round 1's levers, rerun beside it on the current code, and DeepEmoCluster's
# VGG at twice the widths without dropout, round 12's pick), and logit adjustment on PyResNet's
# and DAAE's picks (stage 59 ran it on the attention CNN only)
if in_stage 60; then
  cvrun xvector_final_r16 xvector_final     # stage 11's run is named xvector_final
  cvrun xvector_final_bal xvector_final method.class_weight=balanced
  cvrun dec_vgg_do0_w2_bal dec_vgg model.dropout=0.0 "model.widths=[8,16,16,32,32]" model.fc_dim=64 \
    method.class_weight=balanced
  cvrun pyresnet_cos5_la pyresnet_final schedule.name=cosine schedule.warmup_epochs=3 optim.lr=0.05 \
    method.logit_adjustment=1.0
  daae_stage_one
  cvrun daae_vad_la daae_ft_adam data.feature_cache=true frontend.vad=true method.logit_adjustment=1.0
fi

if in_stage 61; then
  TABLE_OPTIONS=$recalls table "x-vector ResNet small, round 1's levers (stage 11's job)" \
    xvector_final_r16-cv-ravdess_emobox "the same, class-balanced loss" xvector_final_bal-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "DeepEmoCluster's VGG-16 at twice the tiny widths, no dropout (stage 45)" \
    dec_vgg_do0_w2-cv-ravdess_emobox "the same, class-balanced loss" dec_vgg_do0_w2_bal-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "PyResNet tiny, warm-up 3 + cosine, peak 0.05 (stage 41)" \
    pyresnet_cos5-cv-ravdess_emobox "the same, class-balanced loss (stage 57)" pyresnet_cos5_bal-cv-ravdess_emobox \
    "the same, logit adjustment" pyresnet_cos5_la-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "DAAE, voiced frames (stage 49)" \
    daae_vad-cv-ravdess_emobox "the same, class-balanced loss (stage 58)" daae_vad_bal-cv-ravdess_emobox \
    "the same, logit adjustment" daae_vad_la-cv-ravdess_emobox
fi

# seventeenth round: stage 60's class-weight gain on the x-vector was measured without CopyPaste
# (xvector_r8 sets augment: {}), but the shipped x-vector emotion jobs train with it; so the same
# pair with CopyPaste on (N+SE-CP, 80% of each batch, 3-s crops as the job's), which needs the
# waveforms (no feature cache)
copypaste=(data.feature_cache=false
  "augment.copypaste={scheme: both, batch_fraction: 0.8, crop_seconds: 3.0, neutral: neutral}")
if in_stage 62; then
  cvrun xvector_final_cp xvector_final "${copypaste[@]}"
  cvrun xvector_final_cp_bal xvector_final "${copypaste[@]}" method.class_weight=balanced
fi

if in_stage 63; then
  TABLE_OPTIONS=$recalls table "x-vector ResNet small, round 1's levers + CopyPaste" \
    xvector_final_cp-cv-ravdess_emobox "the same, class-balanced loss" xvector_final_cp_bal-cv-ravdess_emobox
fi

# the x-vector's pick (class weights, stage 60) has never run with the schedule the other networks
# gained from (conf/adam_cosine.yaml: cosine decay over 20 epochs, weight decay 1e-4; stage 3's
# xvector_final_cos job)
if in_stage 64; then
  cvrun xvector_final_bal_cos xvector_final_cos method.class_weight=balanced
fi

if in_stage 65; then
  TABLE_OPTIONS=$recalls table "x-vector ResNet small, round 1's levers, class-balanced loss (stage 60)" \
    xvector_final_bal-cv-ravdess_emobox "the same, Adam + cosine over 20 epochs" xvector_final_bal_cos-cv-ravdess_emobox
fi

# stage 64's schedule fits the training voices (training loss 0.67 against 1.02); at twice the
# widths, as the attention CNN and the VGG gained from (sections 16 and 18)
if in_stage 66; then
  cvrun xvector_final_bal_cos_w2 xvector_final_cos method.class_weight=balanced "model.widths=[16,32,64,128]"
fi

if in_stage 67; then
  TABLE_OPTIONS=$recalls table "x-vector ResNet small, class-balanced loss, Adam + cosine over 20 epochs (stage 64)" \
    xvector_final_bal_cos-cv-ravdess_emobox "the same at twice the widths" xvector_final_bal_cos_w2-cv-ravdess_emobox
fi

# twice the widths gained on 5 of 6 folds (stage 66); does the gain go on with width?
# (xv_w3: the overrides stage 72 gives its log-mel job too; w3_row: the baseline row of 71 and 73)
xv_w3=(method.class_weight=balanced "model.widths=[24,48,96,192]")
w3_row=("x-vector ResNet small, class-balanced loss, Adam + cosine over 20 epochs, three times the widths (stage 68)"
  xvector_final_bal_cos_w3-cv-ravdess_emobox)
if in_stage 68; then
  cvrun xvector_final_bal_cos_w3 xvector_final_cos "${xv_w3[@]}"
fi

if in_stage 69; then
  TABLE_OPTIONS=$recalls table "x-vector ResNet small, class-balanced loss, Adam + cosine over 20 epochs, twice the widths (stage 66)" \
    xvector_final_bal_cos_w2-cv-ravdess_emobox "the same at three times the widths" xvector_final_bal_cos_w3-cv-ravdess_emobox
fi

# eighteenth round: three times the widths still gained past the rule (stage 68, validation 0.540
# against 0.524); four times (32-256) asks whether the gain has levelled off
if in_stage 70; then
  cvrun xvector_final_bal_cos_w4 xvector_final_cos method.class_weight=balanced "model.widths=[32,64,128,256]"
fi

if in_stage 71; then
  TABLE_OPTIONS=$recalls table "${w3_row[@]}" "the same at four times the widths" xvector_final_bal_cos_w4-cv-ravdess_emobox
fi

# the x-vector's 2-D convolutions slide over 23 cepstra, whose neighbours are not neighbouring
# bands (the other CNNs read log-mels); the same network on 40 log-mel bands (stage 3's
# xvector_final_cos_mel40: conf/logmel40.yaml), with per-speaker normalisation as before
if in_stage 72; then
  cvrun xvector_final_bal_cos_w3_mel40 xvector_final_cos_mel40 "${xv_w3[@]}"
fi

if in_stage 73; then
  TABLE_OPTIONS=$recalls table "${w3_row[@]}" "the same on 40 log-mel bands" xvector_final_bal_cos_w3_mel40-cv-ravdess_emobox
fi

# nineteenth round: the pick fits the training voices (training loss 0.67 against validation
# loss 1.25). SpecAugment hurt PyResNet tiny (22k parameters, section 3) and the functionals
# (section 10), models that fit less; on this one's log-mel bands: two masks of up to 8 of the
# 40 bands and two of up to 20 frames (0.2 s of a 3-s crop)
mel40_row=("x-vector ResNet small, class-balanced loss, Adam + cosine over 20 epochs, three times the widths, 40 log-mel bands (stage 72)"
  xvector_final_bal_cos_w3_mel40-cv-ravdess_emobox)
if in_stage 74; then
  cvrun xvector_final_bal_cos_w3_mel40_sa xvector_final_cos_mel40 "${xv_w3[@]}" \
    frontend.specaugment.freq_mask=8 frontend.specaugment.time_mask=20
fi

if in_stage 75; then
  TABLE_OPTIONS=$recalls table "${mel40_row[@]}" "the same with SpecAugment" xvector_final_bal_cos_w3_mel40_sa-cv-ravdess_emobox
fi

# the protocol's last step, as round 3 took it for the functionals job: with nothing left to
# choose, the x-vector ResNet's pick (stage 72; two seeds) and PyResNet's (round 11's stage 41:
# warm-up 3 + cosine, peak 0.05) are refit on all 20 training actors of their fold (no
# validation actors; the last epoch is tested)
if in_stage 76; then
  cvrefit xvector_final_bal_cos_w3_mel40_refit xvector_final_cos_mel40 "${xv_w3[@]}"
  cvrefit xvector_final_bal_cos_w3_mel40_refit_s1 xvector_final_cos_mel40 "${xv_w3[@]}" train.seed=1
  cvrefit pyresnet_cos5_refit pyresnet_final schedule.name=cosine schedule.warmup_epochs=3 optim.lr=0.05
fi

if in_stage 77; then
  TABLE_OPTIONS=$recalls table "${mel40_row[@]}" \
    "the same, all 20 training actors" xvector_final_bal_cos_w3_mel40_refit-cv-ravdess_emobox \
    "the same, all 20 training actors, seed 1" xvector_final_bal_cos_w3_mel40_refit_s1-cv-ravdess_emobox
  echo
  TABLE_OPTIONS=$recalls table "PyResNet tiny, warm-up 3 + cosine, peak 0.05 (round 11's pick), all 20 training actors" \
    pyresnet_cos5_refit-cv-ravdess_emobox
fi

# the control for stage 77: were the refits' gains the four added actors, or testing the last
# epoch instead of the validation-picked one? The 16-actor run's last checkpoint on the same
# test actors (test_last/ beside each fold's test/)
if in_stage 78; then
  run=runs/xvector_final_bal_cos_w3_mel40-cv-ravdess_emobox
  tested=("$run"/*-fold[0-5]/test/metrics.json)
  if [ ! -f "${tested[0]}" ] || [ ${#tested[@]} -ne 6 ]; then
    echo "$run: stage 72 has not tested its six folds: stage 78 skipped"
  else
    for fold in "$run"/*-fold[0-5]; do
      [ -f "$fold/test_last/metrics.json" ] && continue
      mapfile -t test_shards < <("$PYTHON" -c 'import json, sys; print(*json.load(open(sys.argv[1]))["shards"], sep="\n")' "$fold/test/metrics.json")
      ssl-ser evaluate "$fold" "${test_shards[@]}" --which latest --device cpu --out "$fold/test_last" > /dev/null
    done
    "$PYTHON" -c 'import json, statistics as st, sys
ua = {p: json.load(open(p))["metrics"]["ua"] for p in sys.argv[1:]}
print("last epoch, 16 actors, test UA per fold:", " ".join(f"{u:.3f}" for u in ua.values()),
      f"mean {st.mean(ua.values()):.3f} ± {st.stdev(ua.values()):.3f}")' "$run"/*-fold[0-5]/test_last/metrics.json
  fi
fi
