#!/usr/bin/python3
"""Loopback RTSP test server for streamwatch's integration tests.

Serves rtsp://127.0.0.1:PORT/test: a live, shared GstRtspServer media with H.264
(x264enc tune=zerolatency, ultrafast, keyframe every second, SPS/PPS repeated) and,
unless --no-audio, AAC (1 kHz sine). The picture is SMPTE bars scrolling
sideways by 4 px per frame (videotestsrc horizontal-speed=4), so it is never frozen.

--black A B makes the picture fully black (videotestsrc pattern=black)
for A <= t < B seconds, where t counts from the moment this *server process started*
(not from the first client connecting). A 40 ms GLib timer applies the schedule to every
media instance, so clients that (re)connect during the window also see black.

Run with /usr/bin/python3 (Debian's python with gi). Stop it with SIGTERM.
"""

import argparse
import sys
import time

T0 = time.monotonic()

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--black", type=float, nargs=2, metavar=("A", "B"))
    ap.add_argument("--no-audio", action="store_true")
    args = ap.parse_args()

    Gst.init(None)
    video = (
        "videotestsrc name=vsrc is-live=true pattern=smpte horizontal-speed=4 "
        f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bitrate=800 "
        "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
    audio = (
        " audiotestsrc is-live=true wave=sine freq=1000 volume=0.3 "
        "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
        "! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
    )
    launch = "( " + video + ("" if args.no_audio else audio) + " )"

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    sources = []  # the videotestsrc of every media instance
    state = {"black": None}

    def in_black():
        if not args.black:
            return False
        t = time.monotonic() - T0
        return args.black[0] <= t < args.black[1]

    def apply(vsrc, black):
        vsrc.set_property("pattern", "black" if black else "smpte")

    def on_configure(_factory, media):
        bin_ = media.get_element()
        vsrc = bin_.get_by_name("vsrc")
        apply(vsrc, in_black())
        sources.append(vsrc)

    def tick():
        black = in_black()
        if black != state["black"]:
            state["black"] = black
            for vsrc in sources:
                apply(vsrc, black)
            print(f"t={time.monotonic() - T0:.3f} black={black}", flush=True)
        return True

    factory.connect("media-configure", on_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    GLib.timeout_add(40, tick)
    print(f"READY rtsp://127.0.0.1:{args.port}/test t={time.monotonic() - T0:.3f}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
