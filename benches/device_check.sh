#!/usr/bin/env bash
# `make device-check`, on a lent GPU machine (NVIDIA driver only: no GStreamer, Rust, package
# registry or network), in under 8 minutes. `make device-pack` prepares everything here first:
# .devbin/ (the xz-compressed release binary and e2e test binary, the Debian 12 GStreamer
# runtime and plugins they load, a 1080p30 H.264 clip) and .gl/ (the Vulkan loader), both
# ignored by git and carried to the device. It prints, one line each:
#   adapter and driver;
#   engine-only 1080p frames/s with all statistics at 1, 16, 64 and 256 streams (synthetic
#   frames, so decoding is left out);
#   host-to-device bandwidth measured on the same device, and the engine's share of it;
#   GPU memory per 1080p stream;
#   how many 1080p30 H.264 streams NVDEC (nvh264dec) decodes and the engine analyses in
#   real time (no drop, no late frame);
#   whether the subgroup statistics pass and a second batch in flight help;
#   the GPU-vs-CPU shader comparison tests.
# `--dry-run` runs the same steps here on whatever adapter there is (lavapipe in CI), with the
# binaries of this checkout (STREAMWATCH_BIN, E2E_BIN), short windows and stream counts
# divided by 64, so that `make test` proves the script prints every figure.
# Results also go to $OUT (bench JSON, logs).
set -uo pipefail

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-target/device-check}
mkdir -p "$OUT"
rm -f "$OUT"/*.json
export NODEVICE_SELECT=1

if [ "$DRY" = 1 ]; then
    SW=${STREAMWATCH_BIN:-target/release/streamwatch}
    E2E=${E2E_BIN:-}
    SECONDS_PER_RUN=1
    SCALE=64
    CLIP=${DEVICE_CLIP:-$OUT/1080p30-h264.ts}
    if [ ! -s "$CLIP" ]; then
        ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 \
            -t 4 -c:v libx264 -preset ultrafast -g 60 -f mpegts "$CLIP"
    fi
else
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    mkdir -p /tmp/devlibs /tmp/devbin
    for f in .devbin/debs/*.deb; do dpkg -x "$f" /tmp/devlibs; done
    export LD_LIBRARY_PATH=/tmp/devlibs/usr/lib/x86_64-linux-gnu:/tmp/devlibs/lib/x86_64-linux-gnu
    export PATH=/tmp/devlibs/usr/bin:$PATH
    export GST_PLUGIN_SYSTEM_PATH=/tmp/devlibs/usr/lib/x86_64-linux-gnu/gstreamer-1.0
    export GST_PLUGIN_SCANNER=/tmp/devlibs/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
    nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -e "$nvidia_icd" ] && export VK_DRIVER_FILES=$nvidia_icd
    nvidia-smi -L 2>&1 | tee "$OUT/nvidia-smi.txt"
    for f in .devbin/*.xz; do xz -dc "$f" >"/tmp/devbin/$(basename "$f" .xz)"; done
    chmod +x /tmp/devbin/*
    SW=/tmp/devbin/streamwatch
    E2E=/tmp/devbin/e2e
    SECONDS_PER_RUN=5
    SCALE=1
    CLIP=/tmp/devbin/1080p30-h264.ts
fi

# bench NAME ARGS...: a GPU bench run; its JSON is $OUT/NAME.json.
bench() {
    local name=$1
    shift
    "$SW" bench --backend gpu --json "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>&1
}

field() { jq -r "$2" "$OUT/$1.json" 2>/dev/null || echo "-"; }

engine() {
    bench "engine-$1" --resolution 1920x1080 --streams "$1" --duration "$SECONDS_PER_RUN" "${@:2}"
}

# Adapter, engine throughput, bandwidth, memory.
# scaled N: the stream count a step runs (N, or N/16 rounded up in a dry run).
scaled() { echo $((($1 + SCALE - 1) / SCALE)); }
# as_run N: how a line names the count it ran.
as_run() { if [ "$SCALE" = 1 ]; then echo "$1"; else echo "$1 (dry run: $(scaled "$1"))"; fi; }

engine 1
echo "adapter: $(field engine-1 .backend)"
for n in 1 16 64 256; do
    streams=$(scaled "$n")
    [ -s "$OUT/engine-$streams.json" ] || engine "$streams"
    echo "engine 1080p frames/s at $(as_run "$n") streams: $(field "engine-$streams" '.frames_per_second | round')"
done
top=$(scaled 256)
engine "$top" --bandwidth
echo "host to device: $(field "engine-$top" '.host_to_device_bytes_per_second / 1e9 * 100 | round / 100') GB/s;" \
    "the engine at $top streams took $(field "engine-$top" '.engine_upload_share * 1000 | round / 10')% of it"
echo "GPU memory per 1080p stream: $(field "engine-$top" '.gpu_memory_per_stream_bytes / 1048576 * 10 | round / 10') MiB"

# Subgroup pass and batches in flight, at 64 streams (scaled).
mid=$(scaled 64)
STREAMWATCH_SUBGROUPS=never engine "$mid" >/dev/null
cp "$OUT/engine-$mid.json" "$OUT/per-row.json"
STREAMWATCH_SUBGROUPS=always engine "$mid" >/dev/null
cp "$OUT/engine-$mid.json" "$OUT/subgroup.json"
echo "subgroup pass: $(field subgroup '.frames_per_second | round') frames/s vs per-row" \
    "$(field per-row '.frames_per_second | round') ($(field subgroup .backend))"
printf '[engine]\nbatches_in_flight = 1\n' >"$OUT/one-in-flight.toml"
engine "$mid" --config "$OUT/one-in-flight.toml" >/dev/null
cp "$OUT/engine-$mid.json" "$OUT/one-in-flight.json"
engine "$mid" >/dev/null
echo "batches in flight: 2 gives $(field "engine-$mid" '.frames_per_second | round') frames/s," \
    "1 gives $(field one-in-flight '.frames_per_second | round')"

# NVDEC: the most 1080p30 H.264 streams decoded and analysed in real time.
printf '[ingest]\ndecoder = "nvdec"\n' >"$OUT/nvdec.toml"
nvdec_kept=0
nvdec_note=""
for n in 8 32 64 128 256; do
    streams=$(scaled "$n")
    bench "nvdec-$streams" --source "$CLIP" --realtime --streams "$streams" \
        --duration "$SECONDS_PER_RUN" --config "$OUT/nvdec.toml"
    if jq -e '.dropped_frames == 0 and .late_frames == 0 and (.errors | length) == 0
            and .frames > 0' "$OUT/nvdec-$streams.json" >/dev/null 2>&1; then
        nvdec_kept=$streams
    else
        nvdec_note=$(grep -m1 -o 'NVDEC[^"]*\|nvh264dec[^"]*\|error.*' "$OUT/nvdec-$streams.txt" | head -c 160)
        break
    fi
done
echo "NVDEC 1080p30 streams in real time: $nvdec_kept${nvdec_note:+ (stopped: $nvdec_note)}"

# GPU-vs-CPU shader tests that need no ffmpeg (both pass-1 variants; the subgroup one only
# runs on a real GPU; interlaced frames included).
if [ -n "$E2E" ] && [ -x "$E2E" ]; then
    "$E2E" gpu_vs_cpu:: --skip decoded_clips --skip interlaced_frames --skip defect_pictures \
        --test-threads 1 --nocapture >"$OUT/gpu_vs_cpu.log" 2>&1
    echo "gpu vs cpu tests: exit $? ($(grep -c '\.\.\. ok' "$OUT/gpu_vs_cpu.log") passed)"
else
    echo "gpu vs cpu tests: not run (no e2e binary given)"
fi
