#!/usr/bin/python3
"""An HLS origin on 127.0.0.1 that serves a live encoder's playlist and segments under any
number of stream names, and breaks each name the way the tests ask.

    fault_origin.py PORT WWW_DIR FAULTS_JSON

GET/HEAD /NAME/live.m3u8 and /NAME/SEGMENT serve WWW_DIR/live.m3u8 and WWW_DIR/SEGMENT;
/NAME/live.mpd is a dynamic MPEG-DASH manifest of the same TS segments (SegmentTemplate with a
SegmentTimeline, built from the playlist on each request);
/NAME/master.m3u8 is a master playlist of two variants, /NAME-a/live.m3u8 and /NAME-b/live.m3u8.
FAULTS_JSON maps NAME to a fault, read on every request, so a test changes a fault by
rewriting the file (atomically, by rename):

  freeze        the playlist stops updating (the copy served when the fault began)
  playlist_404, playlist_500, segment_404, segment_500
                those requests answer that status
  garbage       segments are random bytes of the right length
  truncated     segments are cut to 40 % of their length
  broken        the playlist is an HTML error page served with status 200
  redirect      the playlist redirects to itself, forever
  slow          every answer trickles out at 16 bytes per half second
  sequence_back the media sequence number goes back by 1000
  long_segments EXTINF says each segment lasts 2.5 times the target duration

Hostile origins (the process must survive them, bounded in memory, and name the problem):
  cut_playlist  the playlist stops mid-line
  invalid_utf8  the playlist has bytes that are not UTF-8
  huge_playlist a 50 MB playlist
  many_segments 200,000 segments listed before the live ones
  many_variants the master lists 10,000 variants
  endless_playlist / endless_segment
                a chunked body that never ends
  gzip_bomb     the playlist is 100 MB of zeros gzipped, sent as Content-Encoding: gzip
  empty_segments
                segments are 0 bytes
  redirect_scheme
                the playlist redirects to file:///etc/passwd
  bad_extinf    EXTINF values NaN, -5 and 1e30
  max_sequence  EXT-X-MEDIA-SEQUENCE is 2^64-1
  scte35_events the MPD carries two SCTE-35 breaks in EventStreams, 3 and 12 s after the
                name's first MPD request: a 6 s break in XML (splice_insert, event 77) and
                a 4 s one in base64 (event 7)
  fuzz          each answer is mutated at random (cut, flipped bytes, lines dropped,
                duplicated or replaced, numbers made huge, garbage or empty segments;
                for the MPD, hostile elements and attributes as well)
"""
import gzip
import json
import os
import random
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENDLESS_SECONDS = 60
made = {}


def huge():
    """A 50 MB playlist, made on first use."""
    if "huge" not in made:
        made["huge"] = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + b"#EXTINF:1,\nx.ts\n" * (50 * 1024 * 1024 // 16)
    return made["huge"]


def bomb():
    """100 MB of zeros gzipped (about 100 kB), made on first use."""
    if "bomb" not in made:
        made["bomb"] = gzip.compress(b"\0" * (100 * 1024 * 1024), compresslevel=9)
    return made["bomb"]

PORT = int(sys.argv[1])
WWW = sys.argv[2]
FAULTS = sys.argv[3]
frozen = {}


def fault_of(name):
    try:
        with open(FAULTS) as f:
            return json.load(f).get(name, "")
    except (OSError, ValueError):
        return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def reply(self, status, body, content_type, head, slow=False, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        try:
            if slow:
                for i in range(0, len(body), 16):
                    self.wfile.write(body[i:i + 16])
                    self.wfile.flush()
                    time.sleep(0.5)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def serve(self, head):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 2 or ".." in parts[1]:
            return self.reply(404, b"not found\n", "text/plain", head)
        name, file = parts
        if file == "master.m3u8" and fault_of(name) == "many_variants":
            lines = ["#EXTM3U"]
            for i in range(10000):
                lines.append("#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=426x240" % (100000 + i))
                lines.append("/%s-a/live.m3u8" % name)
            return self.reply(200, ("\n".join(lines) + "\n").encode(),
                              "application/vnd.apple.mpegurl", head)
        if file == "master.m3u8":
            # Two renditions of the same media, each a stream name of its own (NAME-a, NAME-b),
            # so that a test can break one of them.
            master = ("#EXTM3U\n"
                      "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=426x240\n/%s-a/live.m3u8\n"
                      "#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240\n/%s-b/live.m3u8\n"
                      % (name, name)).encode()
            return self.reply(200, master, "application/vnd.apple.mpegurl", head)
        fault = fault_of(name)
        if fault != "freeze":
            frozen.pop(name, None)
        slow = fault == "slow"
        if file == "live.mpd":
            body = dash_manifest(name if fault == "scte35_events" else None)
            if body is None:
                return self.reply(404, b"not found\n", "text/plain", head)
            if fault == "fuzz":
                body = fuzz_mpd(body)
            return self.reply(200, body, "application/dash+xml", head)
        if file.endswith(".m3u8"):
            if fault == "playlist_404":
                return self.reply(404, b"not found\n", "text/plain", head)
            if fault == "playlist_500":
                return self.reply(500, b"internal error\n", "text/plain", head)
            if fault == "redirect":
                return self.reply(302, b"", "text/plain", head, headers=[("Location", self.path)])
            if fault == "broken":
                page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
                return self.reply(200, page, "application/vnd.apple.mpegurl", head)
            try:
                with open(os.path.join(WWW, file), "rb") as f:
                    body = f.read()
            except OSError:
                return self.reply(404, b"not found\n", "text/plain", head)
            hostile = self.hostile_playlist(fault, body, head)
            if hostile is not None:
                return hostile
            if fault == "freeze":
                body = frozen.setdefault(name, body)
            elif fault == "sequence_back":
                body = re.sub(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)",
                              lambda m: b"#EXT-X-MEDIA-SEQUENCE:%d" % max(0, int(m.group(1)) - 1000), body)
            elif fault == "long_segments":
                target = int(re.search(rb"#EXT-X-TARGETDURATION:(\d+)", body).group(1))
                body = re.sub(rb"#EXTINF:[0-9.]+,", b"#EXTINF:%.3f," % (target * 2.5), body)
            return self.reply(200, body, "application/vnd.apple.mpegurl", head, slow)
        if fault == "segment_404":
            return self.reply(404, b"not found\n", "text/plain", head)
        if fault == "segment_500":
            return self.reply(500, b"internal error\n", "text/plain", head)
        try:
            with open(os.path.join(WWW, file), "rb") as f:
                body = f.read()
        except OSError:
            return self.reply(404, b"not found\n", "text/plain", head)
        if fault == "endless_segment":
            # MPEG-TS null packets: the body is endless, not garbage (that is "garbage"), so
            # the size limit is the one problem (random headers failed type finding at
            # random, and that error could be the one shown).
            null_packet = b"\x47\x1f\xff\x10" + b"\xff" * 184
            return self.endless(null_packet, "video/mp2t", head)
        if fault == "empty_segments":
            body = b""
        elif fault == "fuzz":
            body = fuzz_segment(body)
        elif fault == "garbage":
            body = random.randbytes(len(body))
        elif fault == "truncated":
            body = body[: len(body) * 2 // 5]
        return self.reply(200, body, "video/mp2t", head, slow)


    def hostile_playlist(self, fault, body, head):
        """The answer to a playlist request under a hostile fault, or None."""
        m3u8 = "application/vnd.apple.mpegurl"
        if fault == "cut_playlist":
            return self.reply(200, body[: len(body) // 2 + 3], m3u8, head)
        if fault == "invalid_utf8":
            return self.reply(200, body.replace(b"#EXTINF", b"#EXT\xff\xfe\xc3INF", 2), m3u8, head)
        if fault == "huge_playlist":
            return self.reply(200, huge(), m3u8, head)
        if fault == "many_segments":
            seq = int(re.search(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)", body).group(1))
            fake = b"".join(b"#EXTINF:1,\nold%d.ts\n" % (seq + i) for i in range(200000))
            head_tags, first, rest = body.partition(b"#EXTINF")
            return self.reply(200, head_tags + fake + first + rest, m3u8, head)
        if fault == "endless_playlist":
            return self.endless(b"#EXTINF:1,\nx.ts\n", m3u8, head)
        if fault == "gzip_bomb":
            return self.reply(200, bomb(), m3u8, head, headers=[("Content-Encoding", "gzip")])
        if fault == "redirect_scheme":
            return self.reply(302, b"", "text/plain", head, headers=[("Location", "file:///etc/passwd")])
        if fault == "bad_extinf":
            values = iter([b"NaN", b"-5", b"1e30"] * 10)
            return self.reply(200, re.sub(rb"#EXTINF:[0-9.]+,", lambda m: b"#EXTINF:%s," % next(values), body), m3u8, head)
        if fault == "max_sequence":
            return self.reply(200, re.sub(rb"#EXT-X-MEDIA-SEQUENCE:\d+", b"#EXT-X-MEDIA-SEQUENCE:18446744073709551615", body), m3u8, head)
        if fault == "fuzz":
            return self.reply(200, fuzz_playlist(body), m3u8, head)
        return None

    def endless(self, chunk, content_type, head):
        """A chunked body that goes on for ENDLESS_SECONDS or until the client leaves."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        block = chunk * max(1, 65536 // len(chunk))
        deadline = time.time() + ENDLESS_SECONDS
        try:
            while time.time() < deadline:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def fuzz_playlist(body):
    """One random mutation of a playlist."""
    lines = body.split(b"\n")
    kind = random.randrange(8)
    if kind == 0:
        return body[: random.randrange(len(body) + 1)]
    if kind == 1:
        data = bytearray(body)
        for _ in range(random.randrange(1, 20)):
            data[random.randrange(len(data))] = random.randrange(256)
        return bytes(data)
    if kind == 2 and len(lines) > 2:
        del lines[random.randrange(len(lines))]
    elif kind == 3:
        i = random.randrange(len(lines))
        lines[i:i] = [lines[i]] * random.randrange(1, 50)
    elif kind == 4:
        return re.sub(rb"\d+", lambda m: random.choice([b"0", b"-1", b"18446744073709551615",
                                                        b"99999999999999999999999", b"NaN"]), body, count=random.randrange(1, 6))
    elif kind == 5:
        i = random.randrange(len(lines))
        lines[i] = random.choice([b"#EXT-X-KEY:METHOD=AES-128,URI=\"/nokey\"", b"#EXT-X-MAP:URI=\"x\"",
                                  b"#EXT-X-BYTERANGE:99999999@99999999999", b"#EXT-X-DISCONTINUITY",
                                  b"#EXT-X-ENDLIST", b"#EXT-X-STREAM-INF:BANDWIDTH=1", b"http://[::1", b""])
    return b"\n".join(lines)


STARTED = time.time()


XML_BREAK = """<scte35:SpliceInfoSection><scte35:SpliceInsert spliceEventId="77" outOfNetworkIndicator="true"
          spliceImmediateFlag="true"><scte35:BreakDuration autoReturn="true" duration="540000"/>
          </scte35:SpliceInsert></scte35:SpliceInfoSection>"""
# splice_insert out of network, event 7, immediate, a 4 s break.
BINARY_BREAK = "/DAgAAAAAAAAAAAADwUAAAAHf/9+AAV+QAABAAAAANQqnoU="


def event_streams(name):
    """Two SCTE-35 breaks, placed once (on the availability clock) from the first request."""
    first = made.setdefault(("events", name), int(time.time() - STARTED))
    return """
    <EventStream schemeIdUri="urn:scte:scte35:2013:xml" timescale="1">
      <Event presentationTime="%d" duration="6" id="1">%s</Event>
    </EventStream>
    <EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="1">
      <Event presentationTime="%d" duration="4" id="2"><scte35:Signal><scte35:Binary>%s</scte35:Binary></scte35:Signal></Event>
    </EventStream>""" % (first + 3, XML_BREAK, first + 12, BINARY_BREAK)


def dash_manifest(events_of=None):
    """A dynamic MPD listing the playlist's TS segments (1 s each, numbered as in the playlist),
    with SCTE-35 EventStreams for the name `events_of`."""
    try:
        with open(os.path.join(WWW, "live.m3u8"), "rb") as f:
            playlist = f.read()
    except OSError:
        return None
    seq = re.search(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)
    count = playlist.count(b"#EXTINF")
    if seq is None or count == 0:
        return None
    first = int(seq.group(1))
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(STARTED))
    return ("""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016"
     profiles="urn:mpeg:dash:profile:mp2t-simple:2011"
     type="dynamic" availabilityStartTime="%s" minimumUpdatePeriod="PT1S" minBufferTime="PT2S"
     timeShiftBufferDepth="PT5S">
  <Period id="0" start="PT0S">%s
    <AdaptationSet mimeType="video/mp2t" segmentAlignment="true">
      <Representation id="v0" bandwidth="800000" width="320" height="240" codecs="avc1.64001e,mp4a.40.2">
        <SegmentTemplate timescale="1000" media="live$Number%%05d$.ts" startNumber="%d">
          <SegmentTimeline>
            <S t="%d" d="1000" r="%d"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
""" % (start, event_streams(events_of) if events_of else "", first, first * 1000, count - 1)).encode()


def fuzz_mpd(body):
    """One random mutation of an MPD: the playlist mutations, or a hostile element."""
    if random.randrange(2) == 0:
        return fuzz_playlist(body)
    lines = body.split(b"\n")
    i = random.randrange(len(lines))
    lines[i] = random.choice([
        b'<S t="-1" d="0" r="-1"/>', b'<S t="18446744073709551615" d="1" r="2147483647"/>',
        b'<SegmentTemplate media="$Number%0999999d$" startNumber="-5" duration="0"/>',
        b'<BaseURL>file:///etc/passwd</BaseURL>', b'<BaseURL>http://[::1</BaseURL>',
        b'<Period start="PT99999999999H"/>', b'<Period id="x" start="P-1D">',
        b'<SegmentList><SegmentURL mediaRange="999999999-1"/></SegmentList>',
        b'<!ENTITY lol "lol">' * 50, b'<Representation id="' + b"a" * 100000 + b'">',
        b"<" * 1000, b"",
    ])
    return b"\n".join(lines)


def fuzz_segment(body):
    """One random mutation of a segment, or none."""
    kind = random.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return random.randbytes(random.randrange(1, 300000))
    if kind == 2:
        return body[: random.randrange(len(body) + 1)]
    if kind == 3:
        data = bytearray(body)
        for _ in range(random.randrange(1, 200)):
            data[random.randrange(len(data))] = random.randrange(256)
        return bytes(data)
    return body


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
