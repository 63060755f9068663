#!/usr/bin/env bash
# The whole benchmark suite on a GPU machine, installing nothing: JSON, the log and the summary go to $OUT.
#
# On the GPU machine python3 has torch, accelerate, safetensors, huggingface_hub, pyarrow, pillow, opencv,
# pyyaml and psutil, but no mediapipe: the landmark stage is skipped there (said so in the output) and
# everything else runs. The third-party model files are not in the repository; before the call, here:
#
#   mkdir -p .carry/models    # /.carry/ is git-ignored
#   cp ../shared/models/face_detection_yunet_2023mar.onnx ../shared/models/mobilefacenet_casia.safetensors .carry/models/
#
# then run (device tool): command "bash benchmarks/gpu_run.sh", carry [".carry"], timeout_s 600.
# Arguments go to run_all.py, e.g. "bash benchmarks/gpu_run.sh --skip-train" to split the run over two calls
# if one gets near the 10-minute limit (torch.compile takes a minute or two of it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/benchmarks/gpu-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -z "${GANIME_AGE_ASSETS:-}" ]; then
  for dir in .carry/models shared/models ../shared/models; do
    if [ -d "$dir" ]; then export GANIME_AGE_ASSETS="$PWD/$dir"; break; fi
  done
fi
echo "GANIME_AGE_ASSETS=${GANIME_AGE_ASSETS:-<unset: detector and identity loss will be skipped>}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
python3 benchmarks/run_all.py --json-dir "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
