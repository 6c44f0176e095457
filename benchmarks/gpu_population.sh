#!/usr/bin/env bash
# On a CUDA machine, in at most 8 minutes: the Table 2 network alone and in populations of 10 and 50
# (aggregate samples/s, deterministic kernels and not) and the projected time of the whole 50-trial
# Table 2. Writes Fashion-MNIST-sized IDX files of random pixels itself (no download).
#   bash benchmarks/gpu_population.sh [DEVICE]
# DEVICE=cpu rehearses it (small: SIZES=1,2 BATCHES=3).
set -u
DEVICE=${1:-cuda}
timeout 480 python benchmarks/gpu_population.py --device "$DEVICE" --sizes "${SIZES:-1,10,50}" --batches "${BATCHES:-60}" \
  --warmup "${WARMUP:-10}" --rounds "${ROUNDS:-2}"
