#!/usr/bin/env bash
# The runs of bench/results_daae.md (after bench/daae_data.sh), each in one process (--debug,
# without its batch caps) on the CPU, one thread, under the shared CPU lock.
#
#   DAAE=/work/daae_bench bash bench/daae_bench.sh
#
# Scale: the "small" DAAE below (64k parameters; the paper-size `full` is 1.2M and ~10x slower
# per step on this CPU), 10 epochs of 20 batches of 128 segments per stage; evaluation
# segments every 265 ms (no overlap).
set -euo pipefail
DAAE=${DAAE:-/work/daae_bench}
SSL="${SSL:-/work/venv/bin/ssl-ser}"
PY="${PY:-/work/venv/bin/python}"
HERE="$(cd "$(dirname "$0")" && pwd)"
JOBS="$HERE/../jobs"
S="$DAAE/shards"
RUNS="$DAAE/runs"
mkdir -p "$DAAE/logs"
cd "$(dirname "$DAAE")"   # the jobs name their shards daae_bench/shards/...
[ "$(basename "$DAAE")" = daae_bench ] || { echo "DAAE must end in /daae_bench" >&2; exit 2; }
export OMP_NUM_THREADS=1

COMMON=(--debug --set storage_path="$RUNS" --set train.epochs=10 --set data.samples_per_epoch=2560
        --set data.segment.eval_hop=0.265 --set debug.max_train_batches=null --set debug.max_eval_batches=null
        --set model.size=tiny --set 'model.encoder_channels=[8,16,16]' --set model.latent_dim=32
        --set 'model.cnn_channels=[8,16,16,16]' --set model.model_dim=32 --set model.num_heads=2
        --set model.lstm_hidden=32 --set model.head_hidden=32)

train() {  # NAME JOB [--set ...]
  local name=$1 job=$2; shift 2
  [ -f "$RUNS/$name/checkpoint_epoch-000010/meta.json" ] && { echo "$name: done"; return; }
  echo "$name: training"
  flock /work/notes/cpu.lock nice -n 5 "$SSL" train "$JOBS/$job" "${COMMON[@]}" --set name="$name" "$@" \
    > "$DAAE/logs/$name.log" 2>&1
  grep "final" "$DAAE/logs/$name.log" || true
}

# Stage one on URDU + FSDD: the DAAE, and the same network without the adversarial heads.
train daae_pretrain daae_pretrain.yaml --set method.domain_max_batches=1
train plain_pretrain daae_pretrain.yaml --set method.domain_max_batches=1 --set method.adversarial=false

# Stage two on RAVDESS actors 01-16, from each pretrained network's last epoch, or from scratch.
for seed in 0 1; do
  train "ft_daae_s$seed" daae_finetune.yaml --set train.seed=$seed \
    --set train.init_from="$RUNS/daae_pretrain/checkpoint_epoch-000010"
  train "ft_plain_s$seed" daae_finetune.yaml --set train.seed=$seed \
    --set train.init_from="$RUNS/plain_pretrain/checkpoint_epoch-000010"
  train "ft_scratch_s$seed" daae_finetune.yaml --set train.seed=$seed --set train.init_from=null
done

# Test actors 21-24: best checkpoint by validation UA (actors 17-20).
flock /work/notes/cpu.lock nice -n 5 "$PY" "$HERE/daae_eval.py" \
  "$RUNS"/ft_daae_s0 "$RUNS"/ft_daae_s1 "$RUNS"/ft_plain_s0 "$RUNS"/ft_plain_s1 \
  "$RUNS"/ft_scratch_s0 "$RUNS"/ft_scratch_s1 --test "$S/ravdess_test" --json "$DAAE/test.json"
flock /work/notes/cpu.lock nice -n 5 "$PY" "$HERE/daae_eval.py" --latent --which latest \
  "$RUNS"/daae_pretrain "$RUNS"/plain_pretrain --test "$S/ravdess_test" --json "$DAAE/test_latent.json"
flock /work/notes/cpu.lock nice -n 5 "$PY" "$HERE/daae_plot.py" \
  --run "$RUNS/daae_pretrain/checkpoint_epoch-000010" "DAAE (adversarial)" \
  --run "$RUNS/plain_pretrain/checkpoint_epoch-000010" "same network, no adversary" \
  --sets "$S/ravdess_test" "$S/urdu" "$S/fsdd" --per-set 200 --out "$HERE/daae_latents.png" \
  --json "$DAAE/latents.json"
