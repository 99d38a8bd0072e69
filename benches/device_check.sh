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
#   the GPU-vs-CPU shader comparison tests (those that need no ffmpeg, which is not carried).
# `--dry-run` runs the same steps here on whatever adapter there is (lavapipe in CI), with the
# binaries of this checkout (STREAMWATCH_BIN, E2E_BIN), short windows and stream counts
# divided by 64, so that `make test` proves the script prints every figure.
# Results (bench JSON, logs) go to $OUT, and on the device also into one archive there,
# $OUT/device-check.tar.gz, since the device tool brings back only a few files.
# DEVICE_CHECK_SCALE divides the stream counts of a real run too, to try the packed runtime
# on a machine without the GPU; STEP_TIMEOUT (seconds, default 120) bounds each step, so one
# that hangs costs a line, not the lease.
set -uo pipefail

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-target/device-check}
mkdir -p "$OUT"
rm -f "$OUT"/*.json
export NODEVICE_SELECT=1
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
# DEVICE_CHECK_STEPS: the sections to run (all by default), for a rerun within what is left
# of a lease.
STEPS=${DEVICE_CHECK_STEPS:-engine bandwidth tuning nvdec tests}
PATH=$PATH:/usr/sbin:/sbin
STARTED=$(date +%s)

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
    # The driver's own folder holds libcuda and libnvcuvid, which nvcodec opens by name.
    driver_libs=""
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
        [ -d "$d" ] && driver_libs="$driver_libs:$d"
    done
    export LD_LIBRARY_PATH=/tmp/devlibs/usr/lib/x86_64-linux-gnu:/tmp/devlibs/lib/x86_64-linux-gnu$driver_libs
    nvcuvid=$( (ldconfig -p; ls /usr/local/nvidia/lib64 /usr/local/nvidia/lib) 2>/dev/null |
        grep -o 'libnvcuvid[^ ]*' | head -1)
    echo "NVDEC library: ${nvcuvid:-none found}"
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
    SECONDS_PER_RUN=${DEVICE_CHECK_SECONDS:-5}
    SCALE=${DEVICE_CHECK_SCALE:-1}
    CLIP=/tmp/devbin/1080p30-h264.ts
fi

# sample_gpu_memory FILE: the GPU's used memory (MiB) every second into FILE, until
# stop_sampling; decoders' device memory is not in the engine's own figure.
SAMPLER=""
sample_gpu_memory() {
    command -v nvidia-smi >/dev/null || return 0
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 1000 >"$1" 2>/dev/null &
    SAMPLER=$!
}
stop_sampling() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    SAMPLER=""
}

# bench NAME ARGS...: a GPU bench run; its JSON is $OUT/NAME.json.
bench() {
    local name=$1
    shift
    timeout -k 5 "$STEP_TIMEOUT" "$SW" bench --backend gpu --json "$OUT/$name.json" "$@" \
        >"$OUT/$name.txt" 2>&1
    local rc=$?
    [ "$rc" = 124 ] && echo "($name: stopped after ${STEP_TIMEOUT}s)"
    return "$rc"
}

field() { jq -r "$2" "$OUT/$1.json" 2>/dev/null || echo "-"; }

engine() {
    bench "engine-$1" --resolution 1920x1080 --streams "$1" --duration "$SECONDS_PER_RUN" "${@:2}"
}

# scaled N: the stream count a step runs: N divided by SCALE, rounded up.
scaled() { echo $((($1 + SCALE - 1) / SCALE)); }
# as_run N: how a line names the count it ran.
as_run() {
    if [ "$SCALE" = 1 ]; then
        echo "$1"
    elif [ "$DRY" = 1 ]; then
        echo "$1 (dry run: $(scaled "$1"))"
    else
        echo "$1 (scaled: $(scaled "$1"))"
    fi
}

# Engine-only throughput: synthetic 1080p frames, all statistics.
section_engine() {
    for n in 1 16 64 256; do
        streams=$(scaled "$n")
        [ -s "$OUT/engine-$streams.json" ] || engine "$streams"
        echo "engine 1080p frames/s at $(as_run "$n") streams:" \
            "$(field "engine-$streams" '.frames_per_second | round')"
    done
}

# The bus beside the engine, in one run, and the engine's GPU memory at the top count.
section_bandwidth() {
    local top
    top=$(scaled 256)
    engine "$top" --bandwidth
    echo "host to device: $(field "engine-$top" '.host_to_device_bytes_per_second / 1e9 * 100 | round / 100') GB/s;" \
        "the engine at $(as_run 256) streams ($(field "engine-$top" '.frames_per_second | round') frames/s)" \
        "took $(field "engine-$top" '.engine_upload_share * 1000 | round / 10')% of it"
    echo "GPU memory per 1080p stream: $(field "engine-$top" '.gpu_memory_per_stream_bytes / 1048576 * 10 | round / 10') MiB"
}

# Subgroup pass and batches in flight, at 64 streams (scaled).
section_tuning() {
    local mid
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
}

# NVDEC: the most 1080p30 H.264 streams decoded and analysed in real time: every frame of
# every stream (the clip is 30 fps), none dropped or late. The bench waits for all streams to
# be up first, up to 0.3 s each with NVDEC, so a step's limit grows with its stream count.
section_nvdec() {
    local kept=0 note="" streams peak
    printf '[ingest]\ndecoder = "nvdec"\n' >"$OUT/nvdec.toml"
    for n in 8 32 64 128 256; do
        streams=$(scaled "$n")
        sample_gpu_memory "$OUT/nvdec-$streams.smi"
        STEP_TIMEOUT=$((STEP_TIMEOUT + streams / 2)) bench "nvdec-$streams" --source "$CLIP" \
            --realtime --streams "$streams" --duration "$SECONDS_PER_RUN" --config "$OUT/nvdec.toml"
        stop_sampling
        if jq -e '.dropped_frames == 0 and .late_frames == 0 and (.errors | length) == 0
                and .frames_per_second >= 0.95 * .streams * 30' "$OUT/nvdec-$streams.json" \
            >/dev/null 2>&1; then
            kept=$streams
            continue
        fi
        note=$(jq -r 'if (.errors | length) > 0 then .errors[0] else "\(.streams) streams: \(.frames_per_second | round) of \(.streams * 30) frames/s, \(.dropped_frames) dropped, \(.late_frames) late" end' \
            "$OUT/nvdec-$streams.json" 2>/dev/null ||
            grep -m1 '^error: stream' "$OUT/nvdec-$streams.txt" || tail -1 "$OUT/nvdec-$streams.txt")
        break
    done
    echo "NVDEC 1080p30 streams in real time: $kept${note:+ (stopped at: $(echo "$note" | head -c 200))}"
    if [ -s "$OUT/nvdec-$kept.json" ]; then
        peak=$(sort -n "$OUT/nvdec-$kept.smi" 2>/dev/null | tail -1)
        echo "NVDEC at $kept streams: $(field "nvdec-$kept" '.cpu_cores * 100 | round / 100') cores," \
            "$(field "nvdec-$kept" '.rss_per_stream_bytes / 1048576 * 10 | round / 10') MiB RSS per" \
            "stream, GPU memory used at most ${peak:-(no nvidia-smi)} MiB"
    fi
}

# GPU-vs-CPU shader tests that need no ffmpeg (both pass-1 variants; the subgroup one only
# runs on a real GPU).
section_tests() {
    if [ -z "$E2E" ] || [ ! -x "$E2E" ]; then
        echo "gpu vs cpu tests: not run (no e2e binary given)"
        return
    fi
    timeout -k 5 "$STEP_TIMEOUT" "$E2E" gpu_vs_cpu:: --skip decoded_clips --skip interlaced_frames \
        --skip defect_pictures --test-threads 1 --nocapture >"$OUT/gpu_vs_cpu.log" 2>&1
    echo "gpu vs cpu tests: exit $? ($(grep -o '[0-9]* passed; [0-9]* failed' "$OUT/gpu_vs_cpu.log" ||
        echo 'no test summary'))"
}

engine 1
echo "adapter: $(field engine-1 .backend)"
for section in $STEPS; do
    "section_$section"
done

echo "device check took $(($(date +%s) - STARTED)) s"
if [ "$DRY" = 0 ]; then
    tar -czf /tmp/device-check.tar.gz -C "$OUT" . && mv /tmp/device-check.tar.gz "$OUT/"
fi
