"""A tiny canned HTTP server on 127.0.0.1 for answers the sandbox never gives, and the canary key.

`CannedApi` answers every GET with whatever its `reply` function returns for the request's path
and query, and records each request (path, query and headers) so a test can assert exactly what
reached it, the `Authorization` header included. It binds a loopback address only (`127.0.0.1`
by default, `127.0.0.2` for a second, "foreign" host) on a port the OS picks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from integration_tests.connector_process import ConnectorRun

CANARY_KEY = "pk_CANARY_hostile_0123456789"
JSON_API = "application/vnd.api+json"


@dataclass(frozen=True)
class Reply:
    """One canned answer: status, body bytes and headers (`Content-Type` JSON:API by default)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": JSON_API})


@dataclass(frozen=True)
class SeenRequest:
    """What one request carried: the path with its query, and every header."""

    target: str
    headers: Mapping[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


Responder = Callable[[str], Reply]


class CannedApi:
    """An HTTP/1.1 server answering `reply(target)` to every GET, recording each request."""

    def __init__(self, reply: Responder, host: str = "127.0.0.1") -> None:
        self._reply = reply
        self._lock = threading.Lock()
        self.requests: list[SeenRequest] = []
        self._host = host
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/"

    def paths(self) -> list[str]:
        with self._lock:
            return [seen.path for seen in self.requests]

    def authorizations(self) -> list[str | None]:
        with self._lock:
            return [seen.headers.get("Authorization") for seen in self.requests]

    def __enter__(self) -> CannedApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with api._lock:
                    api.requests.append(SeenRequest(self.path, dict(self.headers.items())))
                reply = api._reply(self.path)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, fmt: str, *args: Any) -> None:
                return

        return Handler


def document(
    resources: Sequence[Any], next_url: str | None = None, **members: Any
) -> dict[str, Any]:
    """A JSON:API list document with `links.next` (and any other top-level members)."""
    return {"data": list(resources), "links": {"self": "", "next": next_url}, **members}


def json_reply(body: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=json.dumps(body).encode())


def metric(metric_id: str, **attributes: Any) -> dict[str, Any]:
    """A Klaviyo metric resource with the given attributes (name and dates by default)."""
    base = {
        "name": f"Metric {metric_id}",
        "created": "2024-01-02T03:04:05+00:00",
        "updated": "2024-01-02T03:04:05+00:00",
        "integration": None,
    }
    return {"type": "metric", "id": metric_id, "attributes": {**base, **attributes}}


def event(event_id: str, at: Any, **attributes: Any) -> dict[str, Any]:
    """A Klaviyo event resource at `at` (a datetime in Klaviyo's `+00:00` form, or anything a
    test wants in its place), with metric and profile ids."""
    base = {"timestamp": 1704164645, "datetime": at, "uuid": f"uuid-{event_id}"}
    return {
        "type": "event",
        "id": event_id,
        "attributes": {"event_properties": {}, **base, **attributes},
        "relationships": {
            "metric": {"data": {"type": "metric", "id": "M1"}},
            "profile": {"data": {"type": "profile", "id": "P1"}},
        },
    }


def canary_leaks(run: ConnectorRun, key: str = CANARY_KEY) -> list[str]:
    """Where the key appears in the run's output: a subset of `["stdout", "stderr"]`."""
    return [name for name, text in (("stdout", run.stdout), ("stderr", run.stderr)) if key in text]


def non_log_messages(run: ConnectorRun) -> list[dict[str, Any]]:
    """Every message but log lines (LOG, and the CDK's `DEBUG` lines under `--debug`)."""
    return [message for message in run.messages if message["type"] not in ("LOG", "DEBUG")]
