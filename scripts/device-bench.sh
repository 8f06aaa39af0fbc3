#!/bin/bash
# The one command a GPU session runs on a lent GPU: `ddpo bench` against PyTorch on the same GPU, in the same call.
# Prepare here:  npm run build && bash ../shared/device/pack.sh
# Device call:   carry [".device", "dist"], timeout_s 600, command: source .device/setup.sh && bash scripts/device-bench.sh
# Phases run as separate processes, most important first, each with its own time limit inside one overall deadline,
# so a slow or failing phase costs only itself. Everything lands in $OUT/results.tgz (JSON per phase, logs, gzipped
# onnxruntime profiles) plus phases.txt and summary.txt; compare here with scripts/compare-bench.ts.
# Knobs: PHASES (which of anchor sample-gen sample-fp16 train-fp16 train-fp16-k train-fp16-keep product sample-fp32 train-fp32 run; the
# default leaves out the sampling phases, which docs/bench/h200-2026-11-26 holds), OPTSETS ("label:key=value,..."
# WebGPU option sets, each timed for fp16 sampling and training), TRAIN_PROFILE= (empty: no train profile), DEADLINE,
# TRAIN_TIMESTEPS (the timesteps per graph run that train-fp16-k times besides train-fp16's one; default 2,4).
set -uo pipefail
OUT=${OUT:-/tmp/ddpo-out}; R=/tmp/ddpo-results; rm -rf "$R"; mkdir -p "$OUT" "$R"
TRAIN_PROFILE=${TRAIN_PROFILE-1}; DEADLINE=${DEADLINE:-530}; EP=${EP:-webgpu}; UNET=${UNET:-sd15}; LATENT=${LATENT:-64}; BIG=${BIG:-16}  # overridable for a dry run on CPU
CACHE=${CACHE:-/tmp/ddpo-bench}; PHASES=${PHASES:-anchor sample-gen train-fp16 train-fp16-k train-fp16-keep product train-fp32}; TRAIN_TIMESTEPS=${TRAIN_TIMESTEPS:-2,4}
source "$(dirname "${BASH_SOURCE[0]}")/device-phases.sh"
B=(node dist/cli.js bench); C=(--unet "$UNET" --ep "$EP" --latent "$LATENT" --cache "$CACHE")

nvidia-smi > "$R/nvidia-smi.txt" 2>&1; vulkaninfo --summary > "$R/vulkan.txt" 2>&1 || true
phase anchor 110 bash -c "python3 .device/anchor_torch.py > $R/anchor.json"
# sampling targets are fp16: batch 2 (CFG at batch 1) and 16, standard-op attention against fused attention, profiled
phase sample-fp16 170 "${B[@]}" sample "${C[@]}" --batch 2,$BIG --precision fp16 --attention decomposed,mha-fold --warmup 2 --runs 5 \
  --profile "$R/profiles" --out "$R/sample-fp16.json"
# generation before and after the rebuilt UNet (ddpo generate, rating pairs): fp32 as exported against fp16 with
# unfolded fused attention, at UNet batch 2 (one image with CFG) and 4 (a pair)
phase sample-gen 90 "${B[@]}" sample "${C[@]}" --batch 2,4 --precision fp32,fp16 --attention decomposed,mha --warmup 2 --runs 5 --no-ddim \
  --out "$R/sample-gen.json"
phase train-fp16 150 "${B[@]}" train "${C[@]}" --train-precision fp16 --warmup 1 --runs 3 ${TRAIN_PROFILE:+--profile "$R/profiles"} --out "$R/train-fp16.json"
# issue 9: K timesteps per graph run (UNet batch 2K), one graph per K; its JSON is kept after each K, should the limit cut it short
phase train-fp16-k 150 "${B[@]}" train "${C[@]}" --train-precision fp16 --train-timesteps "$TRAIN_TIMESTEPS" --warmup 1 --runs 3 --out "$R/train-fp16-k.json"
# the memory the backward's attention recomputation saves: the same fp16 step keeping every attention probability
phase train-fp16-keep 80 "${B[@]}" train "${C[@]}" --train-precision fp16 --no-recompute --warmup 1 --runs 2 --out "$R/train-fp16-keep.json"
# the product path on the GPU: 'ddpo train --ep webgpu' on the embedded model (fp16 graphs, fused-attention sampling
# graph, float16 LoRA I/O, per-model provider lines and the CPU-placement report), two epochs
P=/tmp/ddpo-product; rm -rf "$P"; mkdir -p "$P"
printf '{"schemaVersion":1,"name":"gpu-check","createdAt":"2026-11-26T00:00:00.000Z","baseModel":{"id":"tiny-shapes","path":"%s"},"prompts":["a red circle on a blue background","a green triangle on a white background"]}' "$PWD/media/tiny-model" > "$P/experiment.json"
echo '{"num_epochs":2,"sample_num_steps":6,"sample_batch_size":4,"sample_num_batches_per_epoch":1,"train_batch_size":2,"latent_size":16,"reward":"jpeg_incompressibility","mixed_precision":"fp16","save_freq":1000}' > "$P/ddpo.json"
phase product 60 node dist/cli.js train --experiment "$P" --ep "$EP"
# its metrics: logprob_mismatch is how far the GPU's float16 sampling and training graphs disagree (train_old_log_probs)
find "$P" -name metrics.jsonl -exec cp {} "$R/product-metrics.jsonl" \; 2>/dev/null
phase sample-fp32 70 "${B[@]}" sample "${C[@]}" --batch 2 --precision fp32 --attention decomposed,mha-fold,mha --warmup 2 --runs 5 --no-ddim \
  --placement --out "$R/sample-fp32.json"
phase train-fp32 100 "${B[@]}" train "${C[@]}" --train-precision fp32 --warmup 1 --runs 3 --out "$R/train-fp32.json"
# WebGPU provider option sets, each label:key=value,... (e.g. OPTSETS="noval:validationMode=disabled"): fp16 sampling
# with fused attention at both batches and the fp16 train step, per set
for set in ${OPTSETS:-}; do
  label=${set%%:*}; o=${set#*:}; PHASES="$PHASES sample-$label train-$label"
  phase "sample-$label" 70 "${B[@]}" sample "${C[@]}" --batch 2,$BIG --precision fp16 --attention mha-fold --webgpu "$o" --no-ddim \
    --warmup 2 --runs 5 --out "$R/sample-$label.json"
  phase "train-$label" 70 "${B[@]}" train "${C[@]}" --train-precision fp16 --webgpu "$o" --warmup 1 --runs 3 --out "$R/train-$label.json"
done

{ for f in sample-gen sample-fp16 train-fp16 train-fp16-k train-fp16-keep product sample-fp32 train-fp32 $(for set in ${OPTSETS:-}; do echo "sample-${set%%:*} train-${set%%:*}"; done); do echo "== $f"; grep -v '^\s*$' "$R/$f.log" 2>/dev/null | tail -n 30; done
  echo "== anchor"; cat "$R/anchor.json" 2>/dev/null; } > "$R/summary.txt"
cp "$R/phases.txt" "$R/summary.txt" "$OUT/"
tar czf "$OUT/results.tgz" -C "$R" .
cat "$R/summary.txt" | tail -n 80; cat "$R/phases.txt"
