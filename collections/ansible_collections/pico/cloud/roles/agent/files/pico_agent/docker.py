"""The Docker Engine API calls the supervisor needs, over the node's socket (Docker or Podman)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from . import httpclient

API = "/v1.41"
LABEL_SERVICE = "pico.service"
LABEL_REPLICA = "pico.replica"
LABEL_DIGEST = "pico.spec"
# Which agent owns the container: agents sharing one engine (tests, a bench) leave each other's alone.
LABEL_NODE = "pico.node"


class DockerError(Exception):
    """The engine refused a call or could not be reached."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class DockerClient:
    def __init__(self, socket_path: Path, timeout: float = 60.0):
        self.socket = str(socket_path)
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 204),
                    timeout: float | None = None) -> Any:
        try:
            response = await httpclient.request(method, API + path, unix=self.socket, body=body,
                                                timeout=timeout or self.timeout)
        except httpclient.HTTPError as err:
            raise DockerError(f"Docker API at {self.socket}: {err}") from None
        if response.status not in ok:
            try:
                message = response.json().get("message", "")
            except (ValueError, AttributeError):
                message = response.body[:200].decode(errors="replace")
            raise DockerError(f"{method} {path}: HTTP {response.status}: {message}", response.status)
        return response.json() if response.body else None

    async def managed_containers(self, node: str) -> list[dict[str, Any]]:
        """Every container this node's agent manages, running or not."""
        filters = urllib.parse.quote(json.dumps({"label": [LABEL_SERVICE, f"{LABEL_NODE}={node}"]}))
        return await self._call("GET", f"/containers/json?all=1&filters={filters}") or []

    async def image_present(self, image: str) -> bool:
        try:
            await self._call("GET", f"/images/{urllib.parse.quote(image, safe='')}/json")
            return True
        except DockerError as err:
            if err.status == 404:
                return False
            raise

    async def create(self, name: str, body: dict[str, Any]) -> str:
        result = await self._call("POST", f"/containers/create?name={urllib.parse.quote(name)}", body)
        return result["Id"]

    async def start(self, container_id: str) -> None:
        await self._call("POST", f"/containers/{container_id}/start", ok=(204, 304))

    async def stop(self, container_id: str, timeout: int) -> None:
        await self._call("POST", f"/containers/{container_id}/stop?t={timeout}", ok=(204, 304, 404),
                         timeout=timeout + 30)

    async def remove(self, container_id: str) -> None:
        await self._call("DELETE", f"/containers/{container_id}?force=1&v=1", ok=(200, 204, 404))

    async def exec_exit_code(self, container_id: str, command: list[str], timeout: float) -> int:
        """Run a command in the container and return its exit code (health checks)."""
        created = await self._call("POST", f"/containers/{container_id}/exec",
                                   {"Cmd": command, "AttachStdout": False, "AttachStderr": False})
        exec_id = created["Id"]
        await self._call("POST", f"/exec/{exec_id}/start", {"Detach": True}, ok=(200, 204))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            state = await self._call("GET", f"/exec/{exec_id}/json")
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            await asyncio.sleep(0.1)
        raise DockerError(f"health command still running after {timeout:g} s")

    async def events(self, node: str) -> AsyncIterator[dict[str, Any]]:
        """Events of this node's managed containers, as they happen."""
        filters = urllib.parse.quote(json.dumps({"type": ["container"], "label": [f"{LABEL_NODE}={node}"]}))
        try:
            async for event in httpclient.stream_json(f"{API}/events?filters={filters}", unix=self.socket):
                yield event
        except (OSError, httpclient.HTTPError, asyncio.IncompleteReadError) as err:
            raise DockerError(f"event stream from {self.socket} ended: {err}") from None
