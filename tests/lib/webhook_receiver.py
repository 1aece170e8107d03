#!/usr/bin/env python3
"""A webhook receiver for tests: an HTTP server on 127.0.0.1 (a free port) that appends each
POST's body, one line each, to OUT, answers 204, and writes the port it bound to PORT_FILE.

Usage: webhook_receiver.py PORT_FILE OUT  (runs until killed)
"""
import http.server
import sys

port_file, out = sys.argv[1], sys.argv[2]


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with open(out, "a", encoding="utf-8") as f:
            f.write(body.replace("\n", " ") + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
with open(port_file + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402 (the rename makes the port appear whole)
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
