"""A small prefix-stripping reverse proxy for tests: what a city gateway's nginx does with

    location /gisgrid/ { proxy_pass http://127.0.0.1:8000/; proxy_set_header Host $host; ... }

``/gisgrid/x`` is passed on as ``/x`` (Host kept, X-Forwarded-* added); ``/gisgrid`` is redirected to
``/gisgrid/``; anything else is a 404 of the proxy's own and is recorded in :attr:`PrefixProxy.outside`, so a
page that asks a URL outside the prefix is caught. Bodies are read whole (no streaming: test pages are small).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Headers of one connection only (RFC 9110 §7.6.1): never passed on.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class PrefixProxy:
    def __init__(self, upstream_port: int, prefix: str = "/gisgrid") -> None:
        self.prefix = prefix
        self.outside: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                if self.path == proxy.prefix:
                    self._answer(301, b"", {"Location": proxy.prefix + "/"})
                    return
                if not self.path.startswith(proxy.prefix + "/"):
                    proxy.outside.append(f"{self.command} {self.path}")
                    self._answer(404, b"not under the gateway's prefix", {"Content-Type": "text/plain"})
                    return
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                headers["X-Forwarded-Proto"] = "http"
                headers["X-Forwarded-Prefix"] = proxy.prefix
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                try:
                    upstream.request(self.command, self.path[len(proxy.prefix) :], body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                finally:
                    upstream.close()
                self._answer(answer.status, data, kept)

            def _answer(self, status: int, data: bytes, headers: dict[str, str] | list[tuple[str, str]]) -> None:
                self.send_response(status)
                for k, v in headers.items() if isinstance(headers, dict) else headers:
                    self.send_header(k, v)
                if status not in (204, 304):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _relay

            def log_message(self, format: str, *args: object) -> None:  # quiet: failures show in the tests
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        #: The gateway's origin and the app's address behind it.
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.origin + prefix
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
