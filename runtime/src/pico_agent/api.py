"""The HTTP API: discovery and health for anyone on the mesh, state changes only with the token.

GET  /v1/services               healthy instance count per service, cluster-wide
GET  /v1/services/<name>        that service's healthy instances
GET  /v1/members                Serf members and their status
GET  /v1/health                 this agent: Serf, Docker, service files, local instances (503 if degraded)
GET  /v1/catalog/local          this node's healthy instances (what peers fetch)
GET  /metrics                   Prometheus text format
POST /v1/reconcile              reconcile now                       (Authorization: Bearer <token>)
POST /v1/services/<name>/restart  restart this node's instances     (Authorization: Bearer <token>)
POST /v1/services/<name>/drain    withdraw them (?replicas=1,2: only those) from discovery; DELETE
                                  publishes them again (token)

A deliberately small HTTP/1.1 server: one request per connection, bounded sizes, no keep-alive.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import NAME_RE
from .log import log

MAX_HEAD = 8 * 1024
MAX_BODY = 64 * 1024
READ_TIMEOUT = 10.0
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] | None = None

    def encode(self) -> bytes:
        if self.content_type == "application/json":
            payload = (json.dumps(self.body, indent=1, sort_keys=True) + "\n").encode()
        else:
            payload = self.body.encode()
        head = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}",
                f"Content-Type: {self.content_type}", f"Content-Length: {len(payload)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (self.headers or {}).items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> Request:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"request head larger than {MAX_HEAD} bytes") from None
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "incomplete request") from None
    except asyncio.TimeoutError:
        raise BadRequest(408, "request not received in time") from None
    try:
        lines = head.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise BadRequest(400, "request head is not ASCII") from None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            raise BadRequest(400, "malformed header line")
        headers[key.strip().lower()] = value.strip()
    body = b""
    if "transfer-encoding" in headers:
        raise BadRequest(411, "send a Content-Length; chunked bodies are not accepted")
    if "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise BadRequest(400, "Content-Length is not a number")
        if int(length) > MAX_BODY:
            raise BadRequest(413, f"body larger than {MAX_BODY} bytes")
        try:
            body = await asyncio.wait_for(reader.readexactly(int(length)), READ_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError):
            raise BadRequest(400, "body shorter than Content-Length") from None
    path, _, query = parts[1].partition("?")
    return Request(parts[0], path, headers, body, query)


Handler = Callable[[Request, list[str]], Awaitable[Reply]]


def _replicas(query: str):
    """None (every replica), a set of replica numbers, or "bad"."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "replicas":
            numbers = value.split(",")
            if not value or len(numbers) > 64 or not all(n.isdigit() and len(n) <= 3 for n in numbers):
                return "bad"
            return {int(n) for n in numbers}
    return None


class API:
    """Routes requests to the agent's handlers; the agent passes itself as `agent`."""

    def __init__(self, agent: Any, token: str):
        self.agent = agent
        self._token = token.encode()

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
                {"name": m.name, "address": m.address, "port": m.port, "status": m.status, "tags": m.tags}
                for m in sorted(agent.catalog.members.values(), key=lambda m: m.name)]})
        if route == ["health"]:
            if reply := self._only_get(request):
                return reply
            report = agent.health_report()
            return Reply(200 if report["status"] == "ok" else 503, report)
        if route == ["catalog", "local"]:
            return self._only_get(request) or Reply(200, {
                "node": agent.catalog.node, "version": agent.catalog.local_version,
                "instances": [i.to_json() for i in agent.catalog.local]})
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

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await read_request(reader)
                reply = await self.dispatch(request)
            except BadRequest as err:
                reply = error(err.status, str(err))
            except Exception as err:  # a handler bug must not take the agent down
                log("error", "api_handler_failed", error=repr(err)[:300])
                reply = error(500, "internal error; see the agent's log")
            writer.write(reply.encode())
            await writer.drain()
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def serve(self, host: str, port: int) -> asyncio.base_events.Server:
        return await asyncio.start_server(self.handle, host, port, limit=MAX_HEAD, reuse_address=True)
