# Sourced by every recipe's run.sh (wespeaker style): options, the environment it needs and
# the helpers its stages share. Nothing here names a machine: paths come from the environment.
#
#   DATA=/path/to/corpora EXP=/path/to/experiment bash bench/recipes/NAME/run.sh [--stage N] [--stop-stage M]
#
#   DATA     the folder holding the corpora in their published layout (ravdess/, urdu/, fsdd/, noise/)
#   EXP      the experiment directory: manifests/, shards/, jobs/, runs/ and logs/ are written there
#   LOCK     optional: a file to hold (flock) around each heavy step, so that heavy jobs of
#            several people on one machine do not overlap
#   WORKERS  processes for `ssl-ser shards build` (default 1)
#   PYTHON   the interpreter that has ssl_ser (default: python); `ssl-ser` is taken from PATH
#
# Every stage is resumable: a finished step (shard set, run, evaluation) is skipped on rerun,
# and an interrupted training run resumes from its last checkpoint.
set -euo pipefail

stage=1
stop_stage=100
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "$0: unknown option '$1' (options: --stage N --stop-stage M)" >&2; exit 2 ;;
  esac
done

RECIPE="$(cd "$(dirname "$0")" && pwd)"           # the recipe folder (conf/, local/)
COMMON="$(cd "$RECIPE/../common" && pwd)"
JOBS="$(cd "$RECIPE/../../../jobs" && pwd)"       # the project's job configs
PYTHON=${PYTHON:-python}
# jobs/attention_cnn.yaml and jobs/daae_finetune.yaml weigh the classes since ravdess_emobox's
# round 16: the recipe jobs built on them before pass this to keep the plain cross-entropy
# they were run with, so their rows rerun as printed
PLAIN_CE=method.class_weight=none

# require VAR "what it is": stop with a one-line message when VAR is unset or empty
require() {
  [ -n "${!1:-}" ] || { echo "$(basename "$RECIPE")/run.sh: set $1 ($2)" >&2; exit 2; }
}
require DATA "the folder holding the corpora, e.g. DATA=/data/corpora"
require EXP "the experiment directory to write to, e.g. EXP=/scratch/$(basename "$RECIPE")"
command -v ssl-ser > /dev/null || { echo "$(basename "$RECIPE")/run.sh: no ssl-ser on PATH (activate its environment)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "$(basename "$RECIPE")/run.sh: DATA=$DATA is not a directory" >&2; exit 2; }
mkdir -p "$EXP/manifests" "$EXP/shards" "$EXP/jobs" "$EXP/runs" "$EXP/logs"
EXP="$(cd "$EXP" && pwd)"
cd "$EXP"   # job configs name their data and runs relative to EXP (shards/..., runs)

# in_stage N: is stage N between --stage and --stop-stage?
in_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# heavy CMD ...: run a heavy step at low priority, holding $LOCK when it is set
heavy() {
  if [ -n "${LOCK:-}" ]; then flock "$LOCK" nice -n 5 "$@"; else nice -n 5 "$@"; fi
}

# logged NAME CMD ...: heavy, its output kept in logs/NAME.log (progress bars left out of the
# terminal). With FOLDS set, logs/NAME.folds012.log (the fold indices): two processes given
# different FOLDS then write two logs instead of interleaving one
logged() {
  local name=$1; shift
  [ -z "${FOLDS:-}" ] || name+=".folds${FOLDS//[, ]/}"
  heavy "$@" 2>&1 | tee "logs/$name.log" | { grep -v 'it/s\]\|s/it\]' || true; }
}

# shards MANIFEST NAME: shards/NAME from a manifest, unless that shard set is complete
shards() {
  [ -f "shards/$2/index.json" ] && { echo "shards/$2: done"; return; }
  ssl-ser shards build "$1" "shards/$2" --workers "${WORKERS:-1}" --quiet
}

# job NAME BASE CONF... [KEY=VALUE...]: jobs/NAME.yaml = the project's jobs/BASE.yaml with the
# recipe's conf/CONF.yaml overrides applied in order (see common/job.py), then name: NAME and
# any KEY=VALUE (for paths that must be absolute)
job() {
  local name=$1 base=$2; shift 2
  local args=()
  for c in "$@"; do
    case "$c" in *=*) args+=(--set "$c") ;; *) args+=("$RECIPE/conf/$c.yaml") ;; esac
  done
  "$PYTHON" "$COMMON/job.py" "$JOBS/$base.yaml" "${args[@]}" --set "name=$name" --out "jobs/$name.yaml"
  echo "jobs/$name.yaml"
}

# trained RUN EPOCHS: has runs/RUN logged EPOCHS epochs (metrics.jsonl: one line per epoch)?
trained() {
  [ -f "runs/$1/metrics.jsonl" ] && [ "$(wc -l < "runs/$1/metrics.jsonl")" -ge "$2" ]
}

# seeded CONFIG SEED [SHARDS OUT]...: the run CONFIG_sSEED (jobs/CONFIG.yaml, name and
# train.seed set), then `ssl-ser evaluate` of its best checkpoint on each SHARDS into
# runs/CONFIG_sSEED/OUT; training is skipped once the first evaluation is there
seeded() {
  local run=${1}_s$2 job=jobs/$1.yaml seed=$2
  shift 2
  [ -f "runs/$run/$2/metrics.json" ] ||
    logged "$run" ssl-ser train "$job" --debug --set "name=$run" --set "train.seed=$seed"
  while [ $# -gt 1 ]; do evaluate "runs/$run" "$1" "runs/$run/$2"; shift 2; done
}

# evaluate RUN SHARDS OUT: `ssl-ser evaluate` of RUN's best checkpoint into OUT/metrics.json, once
evaluate() {
  [ -f "$3/metrics.json" ] && return
  heavy ssl-ser evaluate "$1" "$2" --out "$3" > /dev/null
  echo "$3/metrics.json"
}
