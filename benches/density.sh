#!/usr/bin/env bash
# `make bench-density`: how many live 720p25 H.264 + AAC streams (a file played in real time
# and looped, 2 s GOP, 3 B-frames) this machine keeps, per analysis tier, and what one ffmpeg
# process per stream costs on the same streams. Prints one table from one run.
#
# A tier keeps N streams when `streamwatch bench --realtime` over them drops no frame (in
# keyframes: misses no keyframe) and no frame reaches its sink late (decoding keeps up). The
# largest N is found by doubling then halving with short probes, then confirmed over
# DENSITY_SECONDS (default 300). p99 detect latency is measured at 80% of that N. The ffmpeg
# column runs the full tier's N streams through `ffmpeg -re` with blackdetect, freezedetect,
# silencedetect and ebur128, one process each, for the same window.
#
# Settings (environment): DENSITY_SECONDS (confirmation window, 300), DENSITY_PROBE_SECONDS
# (30), DENSITY_MAX_STREAMS (512), DENSITY_BACKEND (auto), DENSITY_TIERS ("full reference
# keyframes"), DENSITY_OUT (target/density: the clip, every bench JSON, the table).
set -euo pipefail

BIN=${1:-target/release/streamwatch}
CONFIRM=${DENSITY_SECONDS:-300}
PROBE=${DENSITY_PROBE_SECONDS:-30}
MAX=${DENSITY_MAX_STREAMS:-512}
BACKEND=${DENSITY_BACKEND:-auto}
TIERS=${DENSITY_TIERS:-full reference keyframes}
OUT=${DENSITY_OUT:-target/density}
mkdir -p "$OUT"
export NODEVICE_SELECT=1

CLIP=$OUT/live-720p25-h264-aac.ts
if [ ! -s "$CLIP" ]; then
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=25" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 60 \
        -c:v libx264 -preset veryfast -g 50 -keyint_min 50 -sc_threshold 0 -bf 3 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -ac 2 -f mpegts "$CLIP.part"
    mv "$CLIP.part" "$CLIP"
fi

# bench TIER N SECONDS: runs bench, leaves its JSON in $OUT/TIER-N-SECONDS.json.
bench() {
    local json=$OUT/$1-$2-$3.json
    "$BIN" bench --source "$CLIP" --realtime --streams "$2" --duration "$3" \
        --analysis "$1" --backend "$BACKEND" --json "$json" >"$OUT/$1-$2-$3.txt" 2>&1 || true
    echo "$json"
}

# keeps JSON: whether the run kept every stream: no drop, no late frame, no error, and every
# frame of every stream (25 fps) analysed or skipped by the tier, so none is still starting.
keeps() {
    [ -s "$1" ] && jq -e '.dropped_frames == 0 and .late_frames == 0 and (.errors | length) == 0
        and .frames + .skipped_frames >= 0.95 * .streams * 25 * .duration' "$1" >/dev/null
}

# largest TIER: the largest N the tier keeps in short probes, confirmed over $CONFIRM s.
largest() {
    local tier=$1 lo=0 hi n=$2
    while [ "$n" -le "$MAX" ] && keeps "$(bench "$tier" "$n" "$PROBE")"; do
        lo=$n
        n=$((n * 2))
    done
    hi=$((n > MAX ? MAX + 1 : n))
    while [ $((hi - lo)) -gt $((lo / 16 + 1)) ]; do
        n=$(((lo + hi) / 2))
        if keeps "$(bench "$tier" "$n" "$PROBE")"; then lo=$n; else hi=$n; fi
    done
    # The confirmation may fail where a short probe passed: step down by a tenth until it holds.
    while [ "$lo" -gt 0 ] && ! keeps "$(bench "$tier" "$lo" "$CONFIRM")"; do
        lo=$((lo * 9 / 10))
    done
    echo "$lo"
}

# ffmpeg N SECONDS: one `ffmpeg -re` per stream; prints "cores_per_stream rss_mib_per_stream".
ffmpeg_per_stream() {
    local n=$1 secs=$2 pids=() i
    for ((i = 0; i < n; i++)); do
        ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$CLIP" \
            -vf "blackdetect=d=2,freezedetect=d=2" -af "silencedetect=d=2,ebur128" \
            -f null - >/dev/null 2>&1 &
        pids+=($!)
    done
    sleep 5
    local t0 t1 c0 c1 rss=0
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "${pids[@]}")
    sleep "$secs"
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "${pids[@]}")
    for i in "${pids[@]}"; do
        rss=$((rss + $(awk '/VmRSS/ {print $2}' "/proc/$i/status" 2>/dev/null || echo 0)))
    done
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v n="$n" -v rss="$rss" \
        -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.3f %.1f\n", (c1 - c0) / hz / (t1 - t0) / n, rss / 1024 / n }'
}

# cpu_ticks PID...: user + system clock ticks of the processes.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

field() { jq -r "$2" "$1" 2>/dev/null || echo "-"; }

declare -A start=([full]=4 [reference]=4 [keyframes]=16)
TABLE=$OUT/density.txt
{
    echo "bench-density: $(nproc) cores, $(uname -m), backend $BACKEND, $(date -u +%FT%TZ)"
    echo "streams: 720p25 H.264 (2 s GOP, 3 B-frames) + AAC stereo, a file in real time, looped"
    printf '%-10s %8s %15s %15s %12s %13s %12s\n' tier streams "cores/stream" "ffmpeg c/strm" \
        "RSS MiB/strm" "p99 ms @80%" "dropped"
} >"$TABLE"
for tier in $TIERS; do
    n=$(largest "$tier" "${start[$tier]:-4}")
    confirmed=$OUT/$tier-$n-$CONFIRM.json
    at80=$((n * 8 / 10))
    [ "$at80" -lt 1 ] && at80=1
    p99=$(field "$(bench "$tier" "$at80" "$PROBE")" '.latency_p99_ms // "-" | if type == "number" then . * 10 | round / 10 else . end')
    ff="-"
    if [ "$tier" = full ] && [ "$n" -gt 0 ]; then
        read -r ff_cores ff_rss <<<"$(ffmpeg_per_stream "$n" "$CONFIRM")"
        ff="$ff_cores ($ff_rss MiB)"
    fi
    printf '%-10s %8s %15s %15s %12s %13s %12s\n' "$tier" "$n" \
        "$(field "$confirmed" '.cpu_cores_per_stream * 1000 | round / 1000')" "$ff" \
        "$(field "$confirmed" '.rss_per_stream_bytes / 1048576 * 10 | round / 10')" "$p99" \
        "$(field "$confirmed" '.dropped_frames')" >>"$TABLE"
done
cat "$TABLE"
