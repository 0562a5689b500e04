"""Health checks (HTTP, TCP, command in the container) and the state machine around them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from . import httpclient
from .docker import DockerClient, DockerError
from .spec import HealthSpec

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


@dataclass
class HealthTracker:
    """Docker's semantics: failures in the start period do not count; `retries` failures in a row
    make an instance unhealthy; one success makes it healthy."""

    spec: HealthSpec
    started_at: float
    status: str = STARTING
    failures: int = 0
    last_detail: str = ""
    next_check: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.spec.type == "none":
            self.status = HEALTHY
        self.next_check = self.started_at

    def due(self, now: float) -> bool:
        return self.spec.type != "none" and now >= self.next_check

    def record(self, ok: bool, detail: str, now: float) -> bool:
        """Apply one result; True when the status changed."""
        before = self.status
        self.next_check = now + self.spec.interval
        self.last_detail = detail
        if ok:
            self.failures, self.status = 0, HEALTHY
        elif now - self.started_at >= self.spec.start_period:
            self.failures += 1
            if self.failures >= self.spec.retries:
                self.status = UNHEALTHY
        return self.status != before


async def probe(spec: HealthSpec, port: int | None, docker: DockerClient | None = None,
                container_id: str | None = None, host: str = "127.0.0.1") -> tuple[bool, str]:
    """Run one check; never raises."""
    try:
        if spec.type == "http":
            # The status line is the check: the body (a large static index on `path: /`) is never read.
            response = await httpclient.request("GET", spec.path, host=host, port=port or 80, timeout=spec.timeout,
                                                max_body=0)
            return 200 <= response.status < 400, f"HTTP {response.status}"
        if spec.type == "tcp":
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), spec.timeout)
            writer.close()
            return True, "connected"
        if spec.type == "command":
            if docker is None or container_id is None:
                return False, "no container"
            code = await docker.exec_exit_code(container_id, list(spec.command), spec.timeout)
            return code == 0, f"exit code {code}"
    # First: a timeout is an OSError too (TimeoutError, since Python 3.11).
    except asyncio.TimeoutError:
        return False, f"no answer within {spec.timeout:g} s"
    except (httpclient.HTTPError, DockerError, OSError) as err:
        return False, str(err)[:200]
    return True, "no check"
