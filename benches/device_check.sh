#!/usr/bin/env bash
# `make device-check`, on a lent GPU machine: the GPU-vs-CPU shader tests that need no ffmpeg
# (both pass-1 variants, the subgroup one only runs on a real GPU; interlaced frames included)
# and `bench` on the GPU and CPU backends side by side, 720p and 1080p, 16 and 64 streams.
# That machine has no GStreamer, Rust or registry: `make device-pack` prepares everything here
# in .devbin/ (xz-compressed release binaries and the Debian 12 libraries they load) and .gl/
# (the Vulkan loader), both ignored by git and carried to the device. Results go to $OUT.
set -uo pipefail
OUT=${OUT:-target/device-check}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/devlibs
for f in .devbin/debs/*.deb; do dpkg -x "$f" /tmp/devlibs; done
export LD_LIBRARY_PATH=/tmp/devlibs/usr/lib/x86_64-linux-gnu:/tmp/devlibs/lib/x86_64-linux-gnu
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$nvidia_icd" ] && export VK_DRIVER_FILES=$nvidia_icd
nvidia-smi -L 2>&1 | tee "$OUT/device.txt"
mkdir -p /tmp/devbin
for f in .devbin/*.xz; do xz -dc "$f" >"/tmp/devbin/$(basename "$f" .xz)"; done
chmod +x /tmp/devbin/*
export NODEVICE_SELECT=1
/tmp/devbin/e2e gpu_vs_cpu:: --skip decoded_clips --skip interlaced_frames --skip defect_pictures --test-threads 1 \
    --nocapture >"$OUT/gpu_vs_cpu.log" 2>&1
echo "gpu_vs_cpu exit: $?" | tee -a "$OUT/device.txt"
for res in 1280x720 1920x1080; do
    for streams in 16 64; do
        for backend in gpu cpu; do
            /tmp/devbin/streamwatch bench --backend "$backend" --resolution "$res" \
                --streams "$streams" --duration 8 --json "/tmp/bench.json" \
                >>"$OUT/bench.log" 2>&1
            echo "$res $streams $backend exit $?" >>"$OUT/device.txt"
            cat /tmp/bench.json >>"$OUT/bench.jsonl" 2>/dev/null && echo >>"$OUT/bench.jsonl"
        done
    done
done
tail -3 "$OUT/device.txt"
