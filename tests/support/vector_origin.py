#!/usr/bin/python3
"""An HLS origin on 127.0.0.1 that plays scripted playlist sequences (the RFC vectors of
`hls_vectors.rs`), one stream name per vector.

    vector_origin.py PORT SEGMENT_FILE VECTORS_JSON

VECTORS_JSON maps NAME to {"step": SECONDS, "files": {FILE: TEXT or [TEXT, ...]}}. GET or
HEAD /NAME/FILE serves the FILE's text of the current step: the step advances every "step"
seconds from the first request for NAME, and stays on the last. A lone text (a master
playlist) is served as it is. Any /NAME/*.ts is SEGMENT_FILE, a real MPEG-TS segment.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
with open(sys.argv[2], "rb") as f:
    SEGMENT = f.read()
with open(sys.argv[3]) as f:
    VECTORS = json.load(f)
started = {}
lock = threading.Lock()


def playlist(name, file):
    vector = VECTORS.get(name)
    if vector is None or file not in vector["files"]:
        return None
    texts = vector["files"][file]
    if isinstance(texts, str):
        return texts
    with lock:
        t0 = started.setdefault(name, time.monotonic())
    step = int((time.monotonic() - t0) / vector["step"])
    return texts[min(step, len(texts) - 1)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        parts = self.path.split("?")[0].strip("/").split("/")
        body, kind = None, "text/plain"
        if len(parts) == 2 and parts[1].endswith(".ts") and parts[0] in VECTORS:
            body, kind = SEGMENT, "video/mp2t"
        elif len(parts) == 2:
            text = playlist(parts[0], parts[1])
            if text is not None:
                body, kind = text.encode(), "application/vnd.apple.mpegurl"
        status = 200 if body is not None else 404
        body = body if body is not None else b"not found\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
