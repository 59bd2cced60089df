"""Real loopback receivers for tests: an HTTP server to build fakes on (the webhook endpoint is one), and an SMTP server."""

from __future__ import annotations

import gzip
import json
import socketserver
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Loopback:
    """A threaded HTTP server on 127.0.0.1 (``port`` 0: any free one) answering each POST with :meth:`post`, quietly.

    Subclasses set what :meth:`post` reads before calling ``super().__init__()``: the server starts in it.
    """

    def __init__(self, port: int = 0) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                owner.post(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sdk_body(request: BaseHTTPRequestHandler) -> bytes:
    """The body of a POST the SDK sent, gunzipped when it says so."""
    body = request.rfile.read(int(request.headers["content-length"]))
    return gzip.decompress(body) if request.headers.get("content-encoding") == "gzip" else body


class Hook(Loopback):
    """Records POSTs; ``responses`` lists (status, headers) to answer in turn, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: list[tuple[int, dict[str, str]]] = []
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def post(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("content-length", 0)))
        self.requests.append(
            {"path": request.path, "headers": {k.lower(): v for k, v in request.headers.items()}, "body": body, "t": time.time()}
        )
        status, headers = self.responses.pop(0) if self.responses else (200, {})
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("content-length", "0")
        request.end_headers()

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def wait(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.json()):
                return self.json()
            time.sleep(0.05)
        raise AssertionError(f"webhook never got what was expected; got {self.json()}")


class Smtp:
    """A minimal SMTP server (HELO/EHLO, MAIL, RCPT, DATA, QUIT) keeping the messages it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 rta-test ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        self.wfile.write(b"354 end with .\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        sink.messages.append(message_from_bytes(data))
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"smtp://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
