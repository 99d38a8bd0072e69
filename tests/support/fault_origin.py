#!/usr/bin/python3
"""An HLS origin on 127.0.0.1 that serves a live encoder's playlist and segments under any
number of stream names, and breaks each name the way the tests ask.

    fault_origin.py PORT WWW_DIR FAULTS_JSON

GET/HEAD /NAME/live.m3u8 and /NAME/SEGMENT serve WWW_DIR/live.m3u8 and WWW_DIR/SEGMENT;
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
"""
import json
import os
import random
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
        if fault == "garbage":
            body = random.randbytes(len(body))
        elif fault == "truncated":
            body = body[: len(body) * 2 // 5]
        return self.reply(200, body, "video/mp2t", head, slow)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
