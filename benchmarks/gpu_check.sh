#!/usr/bin/env bash
# On a CUDA machine: every router and multi-task model trains on the GPU; the same seed gives the
# same numbers there (default kernels) and not with --nondeterministic; a CUDA checkpoint resumes on
# the CPU; and the Table 2 network's epoch time with each kernel choice, interleaved.
#   bash benchmarks/gpu_check.sh FASHION_MNIST_DIR [OUT_DIR]
# Prints one line per run (exit code, test metric, train seconds and samples/s per epoch).
# DEVICE=cpu EXTRA="--max-batches 5" rehearses it on a machine without CUDA.
set -u
DATA=${1:?usage: bash benchmarks/gpu_check.sh FASHION_MNIST_DIR [OUT_DIR]}
R=${2:-runs/gpu-check}
RR=${RR:-routing-rl}
mkdir -p "$R"
summary() {
  python3 - "$1" <<'PY'
import json, pathlib, sys
path = pathlib.Path(sys.argv[1]) / "results.json"
if not path.exists():
    sys.exit(print(f"{sys.argv[1]}: no results.json"))
r = json.loads(path.read_text())
e = r["epochs"]
print(f"{sys.argv[1]}: epochs {len(e)} device {r['config']['device']} deterministic {r['config'].get('deterministic')} "
      f"test {r['final']['last']['test_mean']!r} train s {[round(x['train_seconds'], 2) for x in e]} "
      f"samples/s {[round(x['samples_per_second']) for x in e]}")
PY
}
run() {
  name=$1; shift
  $RR run --quiet --device "${DEVICE:-cuda}" --logdir "$R/$name" ${OVERWRITE---overwrite} ${EXTRA:-} "$@" > "$R/$name.log" 2>&1
  rc=$?; echo "== $name exit $rc"; [ $rc -ne 0 ] && tail -3 "$R/$name.log"; summary "$R/$name"
}
echo "### every router and model on CUDA"
for a in fixed-random hard-concrete qlearning reinforce shared-bottom wpl; do run "$a" --agent $a --env synthetic-groups --epochs 2; done
run no-sharing --agent no-sharing --env synthetic-groups --epochs 2 --routed all --blocks 8
run wpl-multilabel --agent wpl --env multilabel-synthetic --epochs 2
for m in mmoe ml-mmoe shared-bottom-mlp snr-aver snr-trans; do
  run "$m-multilabel" --agent $m --env multilabel-synthetic --epochs 2
  run "$m-regression" --agent $m --env mmoe-synthetic --epochs 2
done
echo "### the same seed twice, with each kernel choice"
for kernels in --deterministic --nondeterministic; do
  for i in 1 2; do run "hard-concrete-${kernels#--}-$i" --agent hard-concrete --env synthetic-groups --epochs 3 --seed 7 $kernels; done
done
echo "### a CUDA checkpoint resumed on the CPU"
run resume --agent wpl --env synthetic-groups --epochs 2 --seed 3
DEVICE=cpu OVERWRITE= run resume --agent wpl --env synthetic-groups --epochs 4 --seed 3 --resume
echo "### Table 2 rows on Fashion-MNIST, kernel choices interleaved"
FM=(--env fmnist-mtl --data-dir "$DATA" --preset reexamining-fmnist --channels-last --fused-optimizer --epochs 2)
SOFTMAX=(--agent wpl -o variant=public-code-corrected -o parameterization=softmax)
for round in 1 2; do
  for kernels in --deterministic --nondeterministic; do
    run "separate-optimizers-${kernels#--}-$round" "${FM[@]}" "${SOFTMAX[@]}" $kernels
    run "routing-conv123-${kernels#--}-$round" "${FM[@]}" "${SOFTMAX[@]}" --routed conv1,2,3 $kernels
  done
done
