#!/usr/bin/env bash
# Train the models the steering evaluations read (issue 12): Multi-VAE, MLP+flow and the SVD baseline
# on Last.fm 2K and MovieLens 1M, split seeds 0-2, with the accuracy zoo's validation-chosen settings
# (benchmarks/results/accuracy_zoo_*.md). No UMAP maps (the evaluations do not read them).
#
#   RECSYS_MODELS_DIR=/tmp/steer_models benchmarks/steering_models.sh [DATASETS] [SEEDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
export RECSYS_MAP_REDUCER="${RECSYS_MAP_REDUCER:-none}"
DATASETS="${1:-lastfm-2k ml-1m}"
SEEDS="${2:-0 1 2}"
for d in $DATASETS; do
  for s in $SEEDS; do
    "$PY" -m recsys train multvae --dataset "$d" --model-id "multvae-$d-s$s" --set seed="$s" \
      --set epochs=100 --set patience=5 --set beta_max=0.2 --set dropout=0.5
    "$PY" -m recsys train mlp_flow --dataset "$d" --model-id "mlp_flow-$d-s$s" --set seed="$s" \
      --set epochs=100 --set patience=5 --set latent_dim=200 --set hidden_dim=600 --set dropout=0.5
    "$PY" -m recsys train svd --dataset "$d" --model-id "svd-$d-s$s" --set seed="$s"
  done
done
