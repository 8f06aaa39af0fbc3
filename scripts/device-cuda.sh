#!/bin/bash
# Issue 20's measurement in one GPU session: onnxruntime's CUDA provider, installed by `ddpo install-cuda --from` the
# kit ../shared/device/cuda-kit.sh makes, against PyTorch (anchor_torch.py) on the same GPU.
#
# Prepare here (CPU), once:   bash scripts/device-cuda.sh prepare
#   builds dist/, fills .cudaprobe/p1 (~51 MiB: Node.js, onnxruntime-node 1.29.0, provider part 0) and .cudaprobe/p2
#   (~25 MiB: the other provider parts, anchor_torch.py + diffusers' source, the SD 1.5-sized model builder).
# Then two device calls, back to back (the machine must stay warm in between; staging lives in .cudaprobe/stage):
#   1. carry [".cudaprobe/p1"],         timeout_s 120: bash .cudaprobe/p1/cuda-probe.sh
#   2. carry [".cudaprobe/p2", "dist"], timeout_s 600: bash scripts/device-cuda.sh
# Call 2 finishes staging, runs `ddpo install-cuda --from .cudaprobe/stage/provider` (libraries from the machine's
# PyTorch cu130 wheels, verification graph on CUDA), then, each phase in its own process with its own limit inside one
# deadline: the PyTorch anchor; UNet forward fp16 at batch 2 and 16; the DDPO LoRA train step fp16 (batch 1, CFG) with
# peak GPU memory; the same step profiled per op with CUDA_LAUNCH_BLOCKING=1 (each kernel's time is then its own);
# `ddpo train --ep cuda` on the embedded model; one `ddpo train --ep cuda` epoch on an SD 1.5-sized model (random
# weights). Results: $OUT/summary.txt, $OUT/phases.txt, $OUT/cuda-results.tgz (logs, JSON, gzipped profiles).
# Dry run on a CPU machine: DRY=1 bash scripts/device-cuda.sh (after prepare, and after running call 1's command):
#   --ep cpu, the reference fixture's UNet at 16x16 latents, the embedded model for the epoch, no anchor.
# Knobs: DEADLINE (s, default 560), PHASES (default: install anchor sample-fp16 train-fp16 train-profile product build-sd15
# epoch-sd15).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); cd "$ROOT"
P=$ROOT/.cudaprobe

prepare() {
  set -e
  node scripts/build.mjs
  if [ -d "$ROOT/.git" ]; then bash ../shared/device/cuda-kit.sh "$ROOT"
  else  # a git worktree: cuda-kit.sh writes its exclude line into ROOT/.git/info, so it runs on a stand-in root
    local tmp; tmp=$(mktemp -d); mkdir -p "$tmp/.git/info"
    [ -d "$P/work" ] && mkdir -p "$tmp/.cudaprobe" && mv "$P/work" "$tmp/.cudaprobe/work"
    bash ../shared/device/cuda-kit.sh "$tmp"
    rm -rf "$P"; mv "$tmp/.cudaprobe" "$P"; rm -rf "$tmp"
  fi
  cp ../shared/device/anchor_torch.py ../shared/device/diffusers-src.tgz "$P/p2/"
  node -e "require('esbuild').buildSync({ entryPoints: ['scripts/build-sd15-unet.ts'], outfile: '$P/p2/build-sd15.js', bundle: true,
    platform: 'node', format: 'cjs', target: 'node20', external: ['onnxruntime-node', 'onnxruntime-common'], logLevel: 'warning' })"
  du -sh "$P/p1" "$P/p2" dist
  echo "call 1: carry [\".cudaprobe/p1\"], timeout_s 120, command: bash .cudaprobe/p1/cuda-probe.sh"
  echo "call 2 (at once): carry [\".cudaprobe/p2\", \"dist\"], timeout_s 600, command: bash scripts/device-cuda.sh"
}
if [ "${1:-}" = prepare ]; then prepare; exit; fi

OUT=${OUT:-/tmp/ddpo-cuda-out}; R=/tmp/ddpo-cuda-results; rm -rf "$R"; mkdir -p "$OUT" "$R"
DEADLINE=${DEADLINE:-560}; DRY=${DRY:-0}
PHASES=${PHASES:-install anchor sample-fp16 train-fp16 train-profile product build-sd15 epoch-sd15}
FORCE=()  # a dry run has no driver: install-cuda goes on with --force, and its verification says why CUDA cannot run
if [ "$DRY" = 1 ]; then EP=cpu; UNET=fixture; LATENT=16; BIG=4; FORCE=(--force); PHASES=${PHASES/anchor /}; else EP=cuda; UNET=sd15; LATENT=64; BIG=16; fi
source "$ROOT/scripts/device-phases.sh"

# ---- 1. staging: the kit's last parts, Node.js on PATH, onnxruntime-node 1.29.0 as the project's node_modules --------
ROOT=$ROOT OUT=$R/probe BENCH=0 TORCH=0 PROBE_EP=$EP bash "$P/p2/cuda-probe.sh" > "$R/probe.log" 2>&1; stamp "cuda-probe.sh rc=$?"
command -v node >/dev/null 2>&1 || export PATH=$P/stage/bin:$PATH
BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if [ ! -f "$BIN/libonnxruntime.so.1" ]; then
  mkdir -p node_modules && cp -r "$P/stage/node_modules/onnxruntime-node" "$P/stage/node_modules/onnxruntime-common" node_modules/
  rm -f "$BIN"/libonnxruntime_providers_* "$BIN/ddpo-cuda.json"
fi
# the provider as install-cuda takes it: a folder with the kit's libonnxruntime_providers_{cuda,shared}.so
mkdir -p "$P/stage/provider"
SB=$P/stage/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do [ -s "$SB/$f" ] && ln -f "$SB/$f" "$P/stage/provider/$f"; done
stamp "staged: node $(node --version), $(ls "$P/stage/provider" | tr '\n' ' ')"

# ---- 2. install-cuda, then the measurements --------------------------------------------------------------------------
nvidia-smi > "$R/nvidia-smi.txt" 2>&1
phase install 120 node dist/cli.js install-cuda --from "$P/stage/provider" "${FORCE[@]}"
B=(node dist/cli.js bench); C=(--unet "$UNET" --ep "$EP" --latent "$LATENT" --cache /tmp/ddpo-bench)
phase anchor 110 bash -c "python3 $P/p2/anchor_torch.py > $R/anchor.json"
VS=(); [ -s "$R/anchor.json" ] && VS=(--anchor "$R/anchor.json")  # the bench prints its ratios to PyTorch's
phase sample-fp16 150 "${B[@]}" sample "${C[@]}" --batch 2,$BIG --precision fp16 --attention decomposed,mha --warmup 2 --runs 5 \
  "${VS[@]}" --out "$R/sample-fp16.json"
phase train-fp16 110 "${B[@]}" train "${C[@]}" --train-precision fp16 --warmup 1 --runs 3 "${VS[@]}" --out "$R/train-fp16.json"
# per-op time of the train step: CUDA kernels run asynchronously, so without CUDA_LAUNCH_BLOCKING onnxruntime's node
# times are launch times; blocking makes each node's time its kernels' (plus a launch), at the price of the total
phase train-profile 80 env CUDA_LAUNCH_BLOCKING=1 "${B[@]}" train "${C[@]}" --train-precision fp16 --warmup 1 --runs 2 \
  --profile "$R/profiles" --out "$R/train-profile.json"
experiment() {  # experiment DIR MODEL_DIR DDPO_JSON
  rm -rf "$1"; mkdir -p "$1"
  printf '{"schemaVersion":1,"name":"cuda-check","createdAt":"2026-12-06T00:00:00.000Z","baseModel":{"id":"local","path":"%s"},"prompts":["a red circle on a blue background","a green triangle on a white background"]}' "$2" > "$1/experiment.json"
  echo "$3" > "$1/ddpo.json"
}
experiment /tmp/ddpo-tiny "$ROOT/media/tiny-model" '{"num_epochs":2,"sample_num_steps":6,"sample_batch_size":4,"sample_num_batches_per_epoch":1,"train_batch_size":2,"latent_size":16,"reward":"jpeg_incompressibility","mixed_precision":"fp16","save_freq":1000}'
phase product 60 node dist/cli.js train --experiment /tmp/ddpo-tiny --ep "$EP"
# one epoch of the product on an SD 1.5-sized model: 2 samples x 20 steps at 64x64 latents (CFG), each timestep trained
# once with batch 1; set against the bench: 20 sampling evaluations at UNet batch 4 plus 40 train steps
SD=/tmp/ddpo-sd15-model; EPOCH_LATENT=64
if [ "$DRY" = 1 ]; then SD=$ROOT/media/tiny-model; EPOCH_LATENT=16
elif [ ! -f "$SD/unet/model.onnx" ]; then phase build-sd15 90 node "$P/p2/build-sd15.js" --out "$SD" --tokenizer "$ROOT/media/tiny-model/tokenizer"; fi
experiment /tmp/ddpo-sd15 "$SD" "{\"num_epochs\":1,\"sample_num_steps\":20,\"sample_batch_size\":2,\"sample_num_batches_per_epoch\":1,\"train_batch_size\":1,\"latent_size\":$EPOCH_LATENT,\"reward\":\"jpeg_incompressibility\",\"mixed_precision\":\"fp16\",\"save_freq\":1000}"
phase epoch-sd15 200 node dist/cli.js train --experiment /tmp/ddpo-sd15 --ep "$EP"
for e in tiny sd15; do find "/tmp/ddpo-$e" -name metrics.jsonl -exec cp {} "$R/$e-metrics.jsonl" \; 2>/dev/null; done

# ---- 3. what comes back: summary, phases, everything else in one archive -------------------------------------------
{ echo "== probe"; grep -E 'CUDA_USED|CUDA_SESSION_FAILED|NOT FOUND|not found|FAIL' "$R/probe.log"
  for f in install sample-fp16 train-fp16 train-profile product build-sd15 epoch-sd15; do
    echo "== $f"; grep -vE '^\s*$|^epoch [0-9]+/[0-9]+ [a-z]+ [0-9]+/[0-9]+$' "$R/$f.log" 2>/dev/null | tail -n 30; done
  echo "== anchor"; cat "$R/anchor.json" 2>/dev/null; } > "$R/summary.txt"
cp "$R/phases.txt" "$R/summary.txt" "$OUT/"
tar czf "$OUT/cuda-results.tgz" -C "$R" .
tail -n 100 "$R/summary.txt"; cat "$R/phases.txt"
