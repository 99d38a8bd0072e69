#!/usr/bin/env bash
# streamwatch `scan` next to ffmpeg's own detectors on the same files, in one run.
#
# Makes 20 s 30 fps H.264 clips (libx264 veryfast, testsrc2) at 720p and 1080p, then times, on
# each: ffmpeg decode only; ffmpeg + blackdetect,freezedetect; ffmpeg + blackdetect,
# freezedetect,blockdetect; streamwatch scan on the GPU backend (lavapipe where there is no GPU)
# and on the CPU backend, all video detectors on. Prints frames/s and the ratios.
# Usage: benches/scan_vs_ffmpeg.sh [path/to/streamwatch]   (default: target/release/streamwatch)
set -euo pipefail
bin=${1:-target/release/streamwatch}
dir=${BENCH_DIR:-target/bench-clips}
mkdir -p "$dir"
export NODEVICE_SELECT=1

frames_per_second() { # frames, seconds
    awk -v f="$1" -v s="$2" 'BEGIN { printf "%.0f", f / s }'
}

timed() { # command...; prints wall seconds
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

printf '%-6s %10s %12s %14s %14s %14s\n' clip decode +black,freeze +blockdetect "sw gpu" "sw cpu"
for size in 1280x720 1920x1080; do
    clip="$dir/testsrc2-$size.mp4"
    if [ ! -s "$clip" ]; then
        ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=30:duration=20" \
            -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p "$clip"
    fi
    n=600
    decode=$(timed ffmpeg -v error -i "$clip" -f null -)
    bf=$(timed ffmpeg -v error -i "$clip" -vf blackdetect,freezedetect -f null -)
    bfb=$(timed ffmpeg -v error -i "$clip" -vf blackdetect,freezedetect,blockdetect -f null -)
    gpu=$(timed "$bin" scan "$clip" --backend gpu)
    cpu=$(timed "$bin" scan "$clip" --backend cpu)
    d=$(frames_per_second $n "$decode"); b=$(frames_per_second $n "$bf")
    bb=$(frames_per_second $n "$bfb"); g=$(frames_per_second $n "$gpu"); c=$(frames_per_second $n "$cpu")
    printf '%-6s %10s %12s %14s %8s (%.2fx) %8s (%.2fx)\n' "${size#*x}p" "$d" "$b" "$bb" \
        "$g" "$(awk -v a="$g" -v b="$b" 'BEGIN{print a/b}')" \
        "$c" "$(awk -v a="$c" -v b="$b" 'BEGIN{print a/b}')"
    printf '%-6s %10s %12s %14s %8s (%.2fx) %8s (%.2fx)  vs +blockdetect\n' "" "" "" "" \
        "" "$(awk -v a="$g" -v b="$bb" 'BEGIN{print a/b}')" \
        "" "$(awk -v a="$c" -v b="$bb" 'BEGIN{print a/b}')"
done
echo "frames/s = 600 frames / wall seconds (process start to exit); ratios against ffmpeg with"
echo "blackdetect,freezedetect (first line) and with blockdetect added (second line)"
