"""A small asyncio HTTP/1.1 client: Docker API over a unix socket, health checks and peers over TCP.

The Docker SDK and urllib would pull in requests, urllib3 and ssl: 11 MB of a 25 MB budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

MAX_BODY = 8 * 1024 * 1024


class HTTPError(Exception):
    """The connection failed or the answer was not HTTP."""


class BodyTooLarge(HTTPError):
    """The answer came, with a body longer than the caller takes."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


async def _open(unix: str | None, host: str, port: int):
    if unix:
        return await asyncio.open_unix_connection(unix, limit=256 * 1024)
    return await asyncio.open_connection(host, port, limit=256 * 1024)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HTTPError(f"not an HTTP response: {status_line[:60]!r}")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        key, _sep, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size_line = await reader.readline()
        if not size_line:
            return
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


def _request_bytes(method: str, path: str, host: str, body: Any, headers: dict[str, str] | None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", "User-Agent: pico-agent"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    elif method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def request(method: str, path: str, *, unix: str | None = None, host: str = "localhost", port: int = 80,
                  body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30.0,
                  max_body: int = MAX_BODY) -> Response:
    """One request. A body longer than `max_body` is an HTTPError, found before it is read where
    the length is given; with max_body=0 the body is never read (a health check needs the status)."""
    async def run() -> Response:
        reader, writer = await _open(unix, host, port)
        try:
            writer.write(_request_bytes(method, path, host if not unix else "docker", body, headers))
            await writer.drain()
            status, head = await _read_head(reader)
            if max_body == 0 or method == "HEAD":
                data = b""
            elif "chunked" in head.get("transfer-encoding", ""):
                parts, total = [], 0
                async for chunk in _chunks(reader):
                    total += len(chunk)
                    if total > max_body:
                        raise BodyTooLarge(f"response body larger than {max_body} bytes")
                    parts.append(chunk)
                data = b"".join(parts)
            elif "content-length" in head:
                length = int(head["content-length"])
                if length > max_body:
                    raise BodyTooLarge(f"response body of {length} bytes, larger than {max_body}")
                data = await reader.readexactly(length)
            else:
                data = await reader.read(max_body + 1)
                if len(data) > max_body:
                    raise BodyTooLarge(f"response body larger than {max_body} bytes")
            return Response(status, head, data)
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(run(), timeout)
    # First: a timeout is an OSError too (TimeoutError, since Python 3.11).
    except asyncio.TimeoutError:
        raise HTTPError(f"{method} {path}: no answer within {timeout:g} s") from None
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        raise HTTPError(f"{method} {path}: {err or type(err).__name__}") from None


async def stream_json(path: str, *, unix: str) -> AsyncIterator[Any]:
    """Yield JSON objects from a long-lived response (Docker's /events)."""
    reader, writer = await _open(unix, "docker", 0)
    try:
        writer.write(_request_bytes("GET", path, "docker", None, None))
        await writer.drain()
        status, head = await _read_head(reader)
        if status != 200:
            raise HTTPError(f"GET {path}: HTTP {status}")
        decoder, buffer = json.JSONDecoder(), ""
        source = _chunks(reader) if "chunked" in head.get("transfer-encoding", "") else _raw(reader)
        async for chunk in source:
            buffer += chunk.decode()
            while True:
                buffer = buffer.lstrip()
                if not buffer:
                    break
                try:
                    item, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                yield item
    finally:
        writer.close()


async def _raw(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while data := await reader.read(65536):
        yield data
