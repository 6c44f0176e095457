#!/usr/bin/env bash
# Routers and SNR-paper models on multilabel-synthetic at matched size (about 25k trainable
# parameters), 50 epochs, seeds 0-2; then each method against shared-bottom-mlp with
# `routing-rl compare`. Runs go to runs/mlc/<method>-s<seed>; existing complete runs are kept.
set -euo pipefail
export OMP_NUM_THREADS=1
RL=${RL:-routing-rl}
common=(--env multilabel-synthetic --epochs 50 --quiet --threads 1)
router=(--hidden 46 --blocks 4)
declare -A methods=(
  [wpl]="--agent wpl --separate-optimizers --router-lr 0.02 ${router[*]}"
  [fixed-random]="--agent fixed-random ${router[*]}"
  [hard-concrete]="--agent hard-concrete ${router[*]}"
  [snr-trans]="--agent snr-trans -o hidden_sizes=32,23"
  [snr-aver]="--agent snr-aver"
  [mmoe]="--agent mmoe -o shared_hidden=64 -o expert_hidden=31"
  [shared-bottom-mlp]="--agent shared-bottom-mlp -o hidden_sizes=128,88"
)
for method in wpl fixed-random hard-concrete snr-trans snr-aver mmoe shared-bottom-mlp; do
  for seed in 0 1 2; do
    dir=runs/mlc/$method-s$seed
    if [ -f "$dir/results.json" ] && grep -q '"status": "complete"' "$dir/results.json"; then continue; fi
    # shellcheck disable=SC2086
    $RL run "${common[@]}" ${methods[$method]} --seed "$seed" --logdir "$dir" --overwrite > /dev/null
  done
  $RL show "runs/mlc/$method-s0" | tail -4 | head -1
done
for method in wpl fixed-random hard-concrete snr-trans snr-aver mmoe; do
  echo "== $method vs shared-bottom-mlp"
  $RL compare --a runs/mlc/$method-s0 --a runs/mlc/$method-s1 --a runs/mlc/$method-s2 \
    --b runs/mlc/shared-bottom-mlp-s0 --b runs/mlc/shared-bottom-mlp-s1 --b runs/mlc/shared-bottom-mlp-s2
done
