"""Pico-Cloud demo service: a tiny HTTP service the lab ships as a container image.

GET /healthz answers 200 {"status": "ok"} (or 500 when DEMO_FAIL_HEALTH is set, so rollouts
can be tested against a bad version); GET /version answers the version baked in at build time.
Runs on the image's own stripped-down Python; standard library only.
"""
import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with open("/app/VERSION", encoding="ascii") as version_file:
    VERSION = version_file.read().strip()


class Handler(BaseHTTPRequestHandler):
    server_version = f"pico-demo/{VERSION}"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            healthy = not os.environ.get("DEMO_FAIL_HEALTH")
            self._reply(200 if healthy else 500, {"status": "ok" if healthy else "failing"})
        elif self.path == "/version":
            self._reply(200, {"version": VERSION, "hostname": socket.gethostname()})
        else:
            self._reply(404, {"error": f"no such path: {self.path}"})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if os.environ.get("DEMO_ACCESS_LOG"):
            super().log_message(format, *args)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("", port), Handler)
    # PID 1 in a container ignores SIGTERM unless it handles it; stop at once instead of being killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"pico-demo {VERSION} listening on :{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
