"""The sandbox HTTP server: Klaviyo's list endpoints on 127.0.0.1, with auth, faults and limits.

Each API request goes through the same steps, in Klaviyo's order as far as a client can tell:
count it, apply an injected fault, add latency, route, authenticate, check the scope and the
`revision` header, apply the rate limit, then answer from `endpoints.list_page`. Admin paths under
`/__sandbox/` need no key and are not counted, so a test can read stats without disturbing them.

The server only ever binds 127.0.0.1. It runs in a background thread, one thread per connection
(HTTP/1.1 keep-alive, like Klaviyo), and `stop()` closes every open connection and joins every
thread, so tests leave nothing behind.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from klaviyo_sandbox.data import Dataset
from klaviyo_sandbox.endpoints import ENDPOINTS, REVISION, CursorCodec, Endpoint, list_page
from klaviyo_sandbox.errors import ApiError, error_document, throttled
from klaviyo_sandbox.faults import Fault, FaultBook
from klaviyo_sandbox.ratelimit import RateLimiter

HOST = "127.0.0.1"
ALL_SCOPES = frozenset(
    {"campaigns:read", "events:read", "flows:read", "metrics:read", "accounts:read"}
)
FULL_KEY = "pk_sandbox_full"
NO_EVENTS_KEY = "pk_sandbox_no_events"
METRICS_ONLY_KEY = "pk_sandbox_metrics_only"
DEFAULT_KEYS: Mapping[str, frozenset[str]] = {
    FULL_KEY: ALL_SCOPES,
    NO_EVENTS_KEY: ALL_SCOPES - {"events:read"},
    METRICS_ONLY_KEY: frozenset({"metrics:read"}),
}
JSON_API = "application/vnd.api+json"
_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} | a.klaviyo.com | Cloudflare</title></head>"
    "<body><h1>Error {status}</h1><p>The web server reported an error.</p></body></html>"
)


class _Stats:
    """Request counters; a snapshot has string status keys so it is the same shape as JSON."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_path: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.faults_applied = 0
            self.max_concurrent = 0
            self.current = 0

    def enter(self, path: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_path[path] += 1
            self.current += 1
            self.max_concurrent = max(self.max_concurrent, self.current)

    def leave(self, status: int | None, faulted: bool) -> None:
        with self._lock:
            self.current -= 1
            if status is not None:
                self.by_status[str(status)] += 1
            self.faults_applied += int(faulted)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_status": dict(self.by_status),
                "throttled": self.by_status.get("429", 0),
                "max_concurrent": self.max_concurrent,
                "faults_applied": self.faults_applied,
            }


class _Response:
    """A response about to be written; `cut` sends only part of the body then resets."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON_API,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.reset = False


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class SandboxServer:
    """A Klaviyo-compatible API on 127.0.0.1 serving `dataset`; use as a context manager.

    `keys` maps API keys to scope sets (default `DEFAULT_KEYS`). `latency_ms` is added to every
    API request. With `enforce_rate_limits`, Klaviyo's per-endpoint windows answer 429; `clock`
    (seconds, default `time.monotonic`) lets tests drive those windows without sleeping.
    """

    def __init__(
        self,
        dataset: Dataset,
        keys: Mapping[str, Iterable[str]] | None = None,
        latency_ms: float = 0,
        enforce_rate_limits: bool = False,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dataset = dataset
        source = DEFAULT_KEYS if keys is None else keys
        self.keys = {key: frozenset(scopes) for key, scopes in source.items()}
        self.latency_ms = latency_ms
        self.enforce_rate_limits = enforce_rate_limits
        self.codec = CursorCodec(dataset.seed)
        self.faults = FaultBook()
        self.limiter = RateLimiter(clock)
        self._stats = _Stats()
        self._port = port
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind 127.0.0.1 and serve in a background thread; links then point at this server."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((HOST, self._port), _Handler, self)
        self.dataset.base_url = self.api_url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="klaviyo-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging requests, close every connection and join all threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        for worker in httpd.close_connections():
            worker.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Root URL, e.g. `http://127.0.0.1:8123`."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API base the connector is configured with, e.g. `http://127.0.0.1:8123/api/`."""
        return f"{self.url}/api/"

    # ---- control -------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: requests, by_path, by_status (string keys), throttled, max_concurrent..."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    # ---- request handling (called from handler threads) ----------------------------------

    def wait(self, seconds: float) -> None:
        """Sleep that ends early when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def handle_api(self, path: str, query: str, headers: Message, host: str) -> _Response:
        normalized = path.rstrip("/") or "/"
        endpoint = ENDPOINTS.get(normalized)
        pairs = parse_qsl(query, keep_blank_values=True)
        has_cursor = any(name == "page[cursor]" for name, _ in pairs)

        fault = self.faults.take(normalized, has_cursor) if endpoint else None
        self._stats.enter(normalized)
        response: _Response | None = None
        try:
            self.wait(self.latency_ms / 1000)
            if fault is not None and fault.action == "hang":
                self.wait(fault.hang_seconds)
            if fault is not None and fault.action == "status" and fault.status != 200:
                response = self._fault_response(fault, None)
                return response

            limits: dict[str, str] = {}
            try:
                body = self._answer(endpoint, pairs, headers, f"http://{host}{path}", limits)
                response = _Response(200, body, headers=limits)
            except ApiError as exc:
                extra = {**limits, **exc.headers} if exc.status != 429 else exc.headers
                response = _Response(exc.status, _json_bytes(exc.document()), headers=extra)
            response.headers["X-Klaviyo-API-Revision"] = REVISION

            if fault is not None and fault.action == "status":
                response = self._fault_response(fault, response)
            elif fault is not None and fault.action == "reset":
                response.reset = True
            return response
        finally:
            self._stats.leave(response.status if response else None, fault is not None)

    def _answer(
        self,
        endpoint: Endpoint | None,
        pairs: list[tuple[str, str]],
        headers: Message,
        link_base: str,
        limits: dict[str, str],
    ) -> bytes:
        """The page for an authorised request; fills `limits` with the RateLimit-* headers."""
        if endpoint is None:
            raise ApiError(404, "Not found.")

        scheme, _, key = (headers.get("Authorization") or "").partition(" ")
        scopes = self.keys.get(key.strip()) if scheme.lower() == "klaviyo-api-key" else None
        if scopes is None:
            raise ApiError(401, "Missing or invalid authorization")
        if endpoint.scope not in scopes:
            detail = f"You do not have permission to perform this action (needs {endpoint.scope})."
            raise ApiError(403, detail)

        revision = headers.get("revision")
        if not revision:
            raise ApiError(400, "The 'revision' header is required.", parameter="revision")
        if revision != REVISION:
            detail = f"Revision '{revision}' is not served by this sandbox; use '{REVISION}'."
            raise ApiError(400, detail, parameter="revision")

        if self.enforce_rate_limits:
            wait, remaining = self.limiter.acquire(endpoint.kind, endpoint.burst, endpoint.steady)
            if wait is not None:
                raise throttled(wait)
            # Klaviyo's real (IETF draft list) syntax, describing the steady window.
            limits["RateLimit-Limit"] = (
                f"{endpoint.burst}, {endpoint.burst};w=1, {endpoint.steady};w=60"
            )
            limits["RateLimit-Remaining"] = str(remaining)
            limits["RateLimit-Reset"] = str(self.limiter.reset_in())
        return list_page(self.dataset, self.codec, endpoint, pairs, link_base)

    def _fault_response(self, fault: Fault, real: _Response | None) -> _Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)

        if fault.status == 200 and real is not None:
            response = _Response(200, real.body, headers=headers)
        elif fault.body == "html":
            page = _HTML_PAGE.format(status=fault.status).encode()
            return _Response(fault.status, page, "text/html; charset=UTF-8", headers)
        elif fault.status == 429:
            error = throttled(fault.retry_after or 0)
            response = _Response(429, _json_bytes(error.document()), headers=headers)
        else:
            detail = f"Injected fault: HTTP {fault.status}."
            response = _Response(
                fault.status, _json_bytes(error_document(fault.status, detail)), headers=headers
            )

        if fault.body == "truncated":
            response.body = response.body[: len(response.body) // 2]
        elif fault.body == "invalid_json":
            response.body = b'{"data": [{"type": "event", "id": oops'
        return response

    def handle_admin(self, method: str, path: str, body: bytes) -> _Response:
        route = (method, path.rstrip("/"))
        try:
            if route == ("GET", "/__sandbox/stats"):
                return _Response(200, _json_bytes(self.stats), "application/json")
            if route == ("POST", "/__sandbox/reset-stats"):
                self.reset_stats()
                return _Response(200, _json_bytes({"ok": True}), "application/json")
            if route == ("POST", "/__sandbox/faults"):
                payload = json.loads(body or b"[]")
                items = payload if isinstance(payload, list) else [payload]
                faults = [Fault.from_json(item) for item in items]
                for fault in faults:
                    self.add_fault(fault)
                return _Response(200, _json_bytes({"added": len(faults)}), "application/json")
            if route == ("DELETE", "/__sandbox/faults"):
                self.clear_faults()
                return _Response(200, _json_bytes({"ok": True}), "application/json")
        except (ValueError, TypeError) as exc:
            return _Response(400, _json_bytes({"error": str(exc)}), "application/json")
        return _Response(
            404, _json_bytes({"error": f"no admin route {method} {path}"}), "application/json"
        )


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers each connection so `stop()` can close and join it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], sandbox: SandboxServer
    ) -> None:
        super().__init__(address, handler)
        self.sandbox = sandbox
        self._live: dict[threading.Thread, socket.socket] = {}
        self._live_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away (a killed connector); report anything else."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="klaviyo-sandbox-connection",
            daemon=True,
        )
        with self._live_lock:
            self._live[worker] = request
        worker.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(threading.current_thread(), None)

    def close_connections(self) -> list[threading.Thread]:
        with self._live_lock:
            live = list(self._live.items())
        for _, connection in live:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return [worker for worker, _ in live]


class _Handler(BaseHTTPRequestHandler):
    """Parses one HTTP request, asks the `SandboxServer`, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "klaviyo-sandbox"
    sys_version = ""
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: tests and benchmarks read `stats` instead of an access log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""

        if parts.path.startswith("/__sandbox/"):
            response = sandbox.handle_admin(method, parts.path, body)
        elif method != "GET":
            document = error_document(405, f'Method "{method}" not allowed.')
            response = _Response(405, _json_bytes(document), headers={"Allow": "GET"})
        else:
            host = self.headers.get("Host") or f"{HOST}:{self.server.server_address[1]}"
            response = sandbox.handle_api(parts.path, parts.query, self.headers, host)
        try:
            self._write(response)
        except OSError:
            self.close_connection = True

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()

        if not response.reset:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: len(response.body) // 2])
        self.close_connection = True
        # Linger 0 turns the close into a TCP reset instead of an orderly end of stream.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
