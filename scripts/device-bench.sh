#!/bin/bash
# The one command a GPU session runs on the lent H100 (issue 9: "ddpo bench" against PyTorch, same GPU, same call).
# Prepare here:  npm run build && bash ../shared/device/pack.sh
# Device call:   carry [".device", "dist", "scripts/device-bench.sh"], timeout_s 560,
#                command: source .device/setup.sh && bash scripts/device-bench.sh
# Results under $OUT: nvidia-smi.txt, anchor.json (+ .log), ours.json (rewritten after every measurement, so a
# timeout keeps what was measured), ours.log (table + ratios against the anchor), export-*.json when EXPORT=1.
# Budget (~8 min): anchor ≤ ANCHOR_S, ours ≤ OURS_S (SD 1.5 build ~10 s, 3.4 GB save, 5 sessions, 2 training graphs).
set -uo pipefail
OUT=${OUT:-/tmp/ddpo-out}; mkdir -p "$OUT"
ANCHOR_S=${ANCHOR_S:-150}; OURS_S=${OURS_S:-300}; EP=${EP:-webgpu}; RUNS=${RUNS:-5}
UNET=${UNET:-sd15}; LATENT=${LATENT:-64}; BATCHES=${BATCHES:-2,16}  # overridable for a dry run on CPU
CACHE=${CACHE:-/tmp/ddpo-bench}
start=$(date +%s); stamp() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$OUT/phases.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; vulkaninfo --summary > "$OUT/vulkan.txt" 2>&1 || true
stamp "anchor (PyTorch) start"
timeout "$ANCHOR_S" python3 .device/anchor_torch.py > "$OUT/anchor.json" 2> "$OUT/anchor.log"; stamp "anchor rc=$?"

# Ours: fp16 first (the targets are fp16), batch 2 (CFG at batch 1) and 16; then the fp16 and fp32 train steps.
stamp "ours start"
timeout "$OURS_S" node dist/cli.js bench all --unet "$UNET" --ep "$EP" --latent "$LATENT" --batch "$BATCHES" --precision fp16,fp32 \
  --train-precision fp16,fp32 --warmup 2 --runs "$RUNS" --placement --cache "$CACHE" --out "$OUT/ours.json" \
  --anchor "$OUT/anchor.json" > "$OUT/ours.log" 2>&1; stamp "ours rc=$?"

# Optional: the very UNet PyTorch exports (TorchScript exporter, static batch 2), to separate our graph from the runtime.
if [ "${EXPORT:-0}" = 1 ]; then
  timeout 120 python3 .device/anchor_torch.py --export /tmp/torch-export > /dev/null 2> "$OUT/export.log"
  timeout 90 node dist/cli.js bench sample --unet /tmp/torch-export --ep "$EP" --latent "$LATENT" --batch 2 --precision fp32,fp16 \
    --runs "$RUNS" --cache "$CACHE" --out "$OUT/export-sample.json" > "$OUT/export.log.txt" 2>&1; stamp "export rc=$?"
fi
tail -n 25 "$OUT/ours.log"; cat "$OUT/phases.txt"
