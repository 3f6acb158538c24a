"""A local HTTP server for tests: serves a folder on 127.0.0.1 (an ephemeral port) in a thread,
records the paths it is asked for, and can misbehave on purpose for chosen paths:
``"wrong"`` sends other bytes of the right length, ``"drop"`` promises the whole file and
closes the connection halfway, and ``"drop-once"`` does so once, then serves the file."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, server_state, **kwargs):
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self):
        path = self.path.split("?")[0]
        self.state.requests.append(path)
        fault = self.state.faults.get(path)
        file = Path(self.directory) / path.lstrip("/")
        if fault is None or not file.is_file():
            return super().do_GET()
        if fault == "drop-once":
            del self.state.faults[path]
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "wrong":
            self.wfile.write(bytes([body[0] ^ 1]) + body[1:])
        else:  # "drop", "drop-once"
            self.wfile.write(body[: len(body) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


class LocalServer:
    """``with LocalServer(folder) as server: server.url``; ``server.requests``, ``server.faults``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.requests: list[str] = []
        self.faults: dict[str, str] = {}

    def __enter__(self) -> LocalServer:
        handler = functools.partial(_Handler, server_state=self, directory=str(self.folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False
