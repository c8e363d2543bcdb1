#!/usr/bin/env python3
"""DMTF's Redfish Mockup Server speaking HTTP/1.1 with keep-alive, as BMCs do (iDRAC,
iLO, OpenBMC's bmcweb): the server as shipped answers HTTP/1.0 and closes every
connection. Its answers without a body (404, 405, 204) carry no Content-Length, which
HTTP/1.1 needs to end them: `Content-Length: 0` is added where none was sent, and
TCP_NODELAY is set as on any keep-alive server. Nothing else changes. Usage: redfish_keepalive.py RUN_PY [run.py's arguments...]
"""
import runpy
import sys
from http.server import BaseHTTPRequestHandler

BaseHTTPRequestHandler.protocol_version = "HTTP/1.1"
# Headers and body go out in two writes: without TCP_NODELAY the body waits on the
# client's delayed ACK, 40 ms an answer once connections are kept.
BaseHTTPRequestHandler.disable_nagle_algorithm = True
_send_header = BaseHTTPRequestHandler.send_header
_end_headers = BaseHTTPRequestHandler.end_headers


def send_header(self, keyword, value):
    if keyword.lower() == "content-length":
        self._dcmon_length_sent = True
    return _send_header(self, keyword, value)


def end_headers(self):
    if not getattr(self, "_dcmon_length_sent", False):
        _send_header(self, "Content-Length", "0")
    self._dcmon_length_sent = False
    return _end_headers(self)


BaseHTTPRequestHandler.send_header = send_header
BaseHTTPRequestHandler.end_headers = end_headers
run_py = sys.argv[1]
sys.argv = [run_py] + sys.argv[2:]
runpy.run_path(run_py, run_name="__main__")
