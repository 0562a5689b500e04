"""The HTTP API: discovery and health for anyone on the mesh, state changes only with the token.

GET  /v1/services               healthy instance count per service, cluster-wide
GET  /v1/services/<name>        that service's healthy instances
GET  /v1/members                Serf members, their status and since when (where this agent saw it change)
GET  /v1/health                 this agent: Serf, Docker, service files, local instances (503 if degraded)
GET  /v1/catalog/local          this node's healthy instances (what peers fetch)
GET  /metrics                   Prometheus text format
GET  /                          the status page (HTML; it reads /v1/status)
GET  /v1/status                 the cluster as this agent holds it: boards, services, takeovers, events
GET  /v1/prometheus/targets     every member's /metrics (failed ones too), for Prometheus' http_sd_configs
POST /v1/reconcile              reconcile now                       (Authorization: Bearer <token>)
POST /v1/services/<name>/restart  restart this node's instances     (Authorization: Bearer <token>)
POST /v1/services/<name>/drain    withdraw them (?replicas=1,2: only those) from discovery; DELETE
                                  publishes them again (token)

A deliberately small HTTP/1.1 server: one request per connection, no keep-alive, no request bodies,
a bounded head read within a deadline, and a cap on connections still waiting to send one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .config import NAME_RE
from .connections import BACKLOG, ConnectionLimiter, WaitingConnection
from .log import log
from .membership import TAG_API
from .status_page import PAGE

# The status page loads nothing from elsewhere (boards are often offline) and may not be framed.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
               "frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

if TYPE_CHECKING:
    from .catalog import Catalog

MAX_HEAD = 8 * 1024
# Whole request head within this time, or the connection is closed (slow-loris clients).
READ_TIMEOUT = 10.0
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
           505: "HTTP Version Not Supported"}
_TOKEN = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token: methods, header names


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    query: str = ""


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] | None = None

    def encode(self, with_body: bool = True) -> bytes:
        if self.content_type == "application/json":
            payload = (json.dumps(self.body, indent=1, sort_keys=True) + "\n").encode()
        else:
            payload = self.body.encode()
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}",
                f"Content-Type: {self.content_type}", f"Content-Length: {len(payload)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (self.headers or {}).items()]
        # A HEAD answer has the GET answer's headers and no body (RFC 9110 9.3.2).
        return ("\r\n".join(head) + "\r\n\r\n").encode() + (payload if with_body else b"")


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_head(head: bytes) -> Request:
    """The request head up to its blank line. No endpoint takes a body, so none is ever read."""
    try:
        lines = head.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise BadRequest(400, "request head is not ASCII") from None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1].startswith("/") or not parts[1].isprintable():
        raise BadRequest(400, "malformed request line")
    if parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, "HTTP/1.1 or HTTP/1.0 only")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(key):
            raise BadRequest(400, "malformed header line")
        headers[key.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest(413, "this API takes no request body")
    length = headers.get("content-length", "0")
    if not length.isdigit() or len(length) > 12:
        raise BadRequest(400, "Content-Length is not a number")
    if int(length):
        raise BadRequest(413, "this API takes no request body")
    path, _sep, query = parts[1].partition("?")
    return Request(parts[0], path, headers, query)


class _Connection(WaitingConnection):
    """One client connection. A protocol rather than a stream and a task: an idle connection then
    costs a transport and a small buffer, nothing that runs."""

    timeout = READ_TIMEOUT

    def __init__(self, api: API):
        super().__init__(api.limiter)
        self.api = api
        self.answered = False

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return  # a body or a second request: neither is read
        start = max(0, len(self.buffer) - 3)  # a head sent a byte at a time is searched once, not n times
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n", start, MAX_HEAD)
        if end >= 0:
            self._answer(bytes(self.buffer[:end + 4]))
        elif len(self.buffer) >= MAX_HEAD:
            self._reply(error(431, f"request head larger than {MAX_HEAD} bytes"))

    def eof_received(self) -> bool:
        if not self.answered:
            self._reply(error(400, "incomplete request"))
        return True  # keep the write side open for the answer

    def timed_out(self) -> None:
        if self.answered:
            if self.transport is not None:
                self.transport.abort()  # a client that does not read its answer
        else:
            self._reply(error(408, "request not received in time"))

    def _answer(self, head: bytes) -> None:
        self.answered = True
        self.limiter.done_waiting(self)
        try:
            request = parse_head(head)
        except BadRequest as err:
            self._reply(error(err.status, str(err)))
            return
        asyncio.get_running_loop().create_task(self._dispatch(request))

    async def _dispatch(self, request: Request) -> None:
        try:
            reply = await self.api.dispatch(request)
        except Exception as err:  # a handler bug must not take the agent down
            log("error", "api_handler_failed", error=repr(err)[:300])
            reply = error(500, "internal error; see the agent's log")
        self._reply(reply, with_body=request.method != "HEAD")

    def _reply(self, reply: Reply, with_body: bool = True) -> None:
        self.answered = True
        self.limiter.done_waiting(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply.encode(with_body))
            self.transport.close()  # after the buffer is written; the timer aborts a client that never reads


Handler = Callable[[Request, list[str]], Awaitable[Reply]]


def _since(when: float | None) -> int | None:
    return None if when is None else int(when)


def _replicas(query: str):
    """None (every replica), a set of replica numbers, or "bad"."""
    for part in query.split("&"):
        key, _sep, value = part.partition("=")
        if key == "replicas":
            numbers = value.split(",")
            if not value or len(numbers) > 64 or not all(n.isdigit() and len(n) <= 3 for n in numbers):
                return "bad"
            return {int(n) for n in numbers}
    return None


class AgentOperations(Protocol):
    """What the API asks of the agent: the cluster's view, reports, and actions on this node."""

    catalog: Catalog

    def render_metrics(self) -> str:
        ...

    def health_report(self) -> dict[str, Any]:
        ...

    def cluster_status(self) -> dict[str, Any]:
        ...

    async def request_reconcile(self) -> Reply:
        ...

    async def restart_service(self, name: str) -> Reply:
        ...

    async def drain_service(self, name: str, drain: bool, replicas: set[int] | None = None) -> Reply:
        ...


def prometheus_targets(catalog: Catalog) -> list[dict[str, Any]]:
    """Prometheus HTTP service discovery (http_sd_configs): one target per member that announces
    its API port, labelled with its node name, board and CPU (its Serf tags), so a Prometheus
    pointed at any agent scrapes every board, and a board that joins is followed without touching
    Prometheus. A failed member stays a target (its `up` goes to 0: a board down shows and can
    alert); one that left on purpose (drained, powered down by energy.yml) is no longer one."""
    targets = []
    for member in sorted(catalog.members.values(), key=lambda m: m.name):
        port = member.tags.get(TAG_API, "")
        if member.status not in ("alive", "failed") or not port.isdigit():
            continue
        host = f"[{member.address}]" if ":" in member.address else member.address
        labels = {"node": member.name, "board": member.tags.get("board", ""), "arch": member.tags.get("arch", "")}
        targets.append({"targets": [f"{host}:{port}"], "labels": labels})
    return targets


class API:
    """Routes requests to the agent's operations."""

    def __init__(self, agent: AgentOperations, token: str, limiter: ConnectionLimiter | None = None):
        self.agent = agent
        self._token = token.encode()
        self.limiter = limiter or ConnectionLimiter()

    def authorized(self, request: Request) -> Reply | None:
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer "):
            return Reply(401, {"error": "this call changes state: send Authorization: Bearer <token> "
                                        "(the token is in the agent's token_file, readable by root only)"},
                         headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given[7:].strip().encode(), self._token):
            return error(403, "wrong token")
        return None

    async def dispatch(self, request: Request) -> Reply:
        segments = [s for s in request.path.split("/") if s]
        agent = self.agent
        if segments == []:
            return self._only_get(request) or Reply(200, PAGE, content_type="text/html; charset=utf-8",
                                                    headers=PAGE_HEADERS)
        if segments == ["metrics"]:
            return self._only_get(request) or Reply(200, agent.render_metrics(),
                                                    content_type="text/plain; version=0.0.4")
        if len(segments) < 2 or segments[0] != "v1":
            return error(404, f"no such endpoint {request.path}; see /v1/services, /v1/members, /v1/health, /metrics")
        route = segments[1:]
        if route == ["services"]:
            return self._only_get(request) or Reply(200, {"services": agent.catalog.services()})
        if route[0] == "services" and len(route) in (2, 3):
            name = route[1]
            if not NAME_RE.match(name):
                return error(400, f"{name[:80]!r} is not a service name (lower-case letters, digits, '-')")
            if len(route) == 3:
                if route[2] == "drain":
                    if request.method not in ("POST", "DELETE"):
                        return error(405, "use POST to drain, DELETE to publish again")
                    replicas = _replicas(request.query)
                    if replicas == "bad":
                        return error(400, "replicas=1,2: replica numbers, comma-separated")
                    return self.authorized(request) or await agent.drain_service(name, request.method == "POST", replicas)
                if route[2] != "restart":
                    return error(404, f"no such endpoint {request.path}")
                if request.method != "POST":
                    return error(405, "use POST")
                return self.authorized(request) or await agent.restart_service(name)
            return self._only_get(request) or Reply(200, {
                "service": name, "instances": [i.to_json() for i in agent.catalog.instances(name)]})
        if route == ["members"]:
            return self._only_get(request) or Reply(200, {"members": [
                {"name": m.name, "address": m.address, "port": m.port, "status": m.status, "tags": m.tags,
                 "since": _since(agent.catalog.member_since.get(m.name))}
                for m in sorted(agent.catalog.members.values(), key=lambda m: m.name)]})
        if route == ["health"]:
            if reply := self._only_get(request):
                return reply
            report = agent.health_report()
            return Reply(200 if report["status"] == "ok" else 503, report)
        if route == ["catalog", "local"]:
            return self._only_get(request) or Reply(200, agent.catalog.local_document())
        if route == ["status"]:
            return self._only_get(request) or Reply(200, agent.cluster_status())
        if route == ["prometheus", "targets"]:
            return self._only_get(request) or Reply(200, prometheus_targets(agent.catalog))
        if route == ["reconcile"]:
            if request.method != "POST":
                return error(405, "use POST")
            return self.authorized(request) or await agent.request_reconcile()
        return error(404, f"no such endpoint {request.path}")

    @staticmethod
    def _only_get(request: Request) -> Reply | None:
        if request.method not in ("GET", "HEAD"):
            return Reply(405, {"error": "read-only endpoint: use GET"}, headers={"Allow": "GET, HEAD"})
        return None

    async def serve(self, host: str, port: int, sock: socket.socket | None = None) -> asyncio.base_events.Server:
        """On `sock` if systemd passed one (pico_agent.listeners), else on host:port."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            return await loop.create_server(lambda: _Connection(self), sock=sock, backlog=BACKLOG)
        return await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True, backlog=BACKLOG)
