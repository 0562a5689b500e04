"""Wires the parts together and runs them until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import __version__, listeners
from .api import API, Reply
from .catalog import MAX_CATALOG_BYTES, Catalog, Instance
from .config import AgentConfig
from .dns import DNSProtocol, Resolver, serve_dns_tcp
from .docker import DockerClient
from .failover import Failover, PlanSource
from .files import FileProblem, read_small_file, write_atomically
from .log import Throttled, log, recent
from .membership import Membership
from .metrics import Metrics
from .power import estimate_now
from .state import StateFile
from .status_page import cluster_status
from .supervisor import Supervisor

SHUTDOWN_BOUND = 15.0
# A loop that fails this often within the window ends the agent instead of being restarted again.
TASK_FAILURE_LIMIT = 5
TASK_FAILURE_WINDOW = 60.0


def restart_delay(failures: int) -> float:
    return min(2.0 ** failures, 30.0)


class TokenError(ValueError):
    """An API token file the agent cannot use; it does not start until it is fixed."""


MIN_TOKEN_CHARS = 16


def load_or_create_token(path: Path) -> str:
    """The API token: created 0600 on first start, so it never has to leave the node. A token file
    anyone else can read is tightened to 0600 (and said so); a short or malformed one is refused."""
    try:
        raw, status = read_small_file(path, 4096)
    except FileNotFoundError:
        raw, status = b"", None
    except (FileProblem, OSError) as err:
        raise TokenError(f"token_file {err if isinstance(err, FileProblem) else f'{path}: {err.strerror}'}: "
                         "remove it and the agent makes a new one") from None
    token = raw.decode("ascii", errors="replace").strip()
    if token:
        if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
            raise TokenError(f"token_file {path}: the token must be at least {MIN_TOKEN_CHARS} printable ASCII "
                             "characters without spaces: write a longer one, or remove the file and the agent "
                             "makes a new one")
        if status is not None and status.st_mode & 0o077:
            os.chmod(path, 0o600)
            log("warning", "token_file_mode_tightened", path=str(path), was=oct(status.st_mode & 0o777),
                now="0o600", advice="others could read the token: remove the file and restart for a new one")
        return token
    if status is not None:
        log("warning", "token_file_empty", path=str(path), advice="a new token is written in its place, mode 0600")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    # A new file renamed over the old one: an empty file kept its own mode (0644) when refilled.
    write_atomically(path, (token + "\n").encode(), 0o600)
    return token


class Agent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.started = time.time()
        self.metrics = Metrics()
        self.catalog = Catalog(config.node_name)
        self.catalog_problem: str | None = None  # the local catalog too large for peers
        self.state = StateFile(config.state_dir / "state.json")
        saved = self.state.load()
        self.docker = DockerClient(config.supervisor.docker_socket)
        self.plan = PlanSource(config.plan_file, config.state_dir / "plan.json", config.cluster_id, config.node_name)
        self.failover = Failover(config.node_name, self.plan.plan, config.failover.hold_down, config.failover.drain_time,
                                 config.failover.escalate_after)
        # Each part gets what it calls at construction; none is rewired afterwards.
        self.supervisor = Supervisor(config.supervisor, config.services_dir, self.docker, config.node_name,
                                     self.metrics, self._local_instances, restarts=saved.get("restarts"),
                                     on_restart=self._save_state, address=self.advertise_address,
                                     takeovers=self.failover.takeovers, takeovers_changed=self._failover_look)
        self.membership = Membership(config, self.catalog, self.metrics, on_member_status=self.supervisor.wake.set,
                                     on_self_address=self.supervisor.publish)
        self.api = API(self, load_or_create_token(config.token_file))
        self.exit_code = 0
        self._loop_error = Throttled("error", "event_loop_error")

    def advertise_address(self) -> str:
        if self.config.advertise_address:
            return self.config.advertise_address
        if self.membership.self_address:
            return self.membership.self_address
        others = [a for a in self.config.bind_addresses if not a.startswith("127.")]
        return others[0] if others else self.config.bind_addresses[0]

    def _failover_look(self, now: float) -> bool:
        """Every supervisor loop: a new plan, or a change in who runs what for failed peers."""
        if self.plan.poll():
            self.failover.plan = self.plan.plan
        if self.failover.update(self.catalog, now):
            log("info", "failover_changed", **self.failover.status())
            return True
        return False

    def _local_instances(self, instances: list[Instance]) -> None:
        if self.catalog.set_local(instances):
            log("info", "local_catalog", version=self.catalog.local_version,
                healthy=sorted({i.id for i in instances}))
            self._check_catalog_size()
            self.membership.local_catalog_changed()

    def _check_catalog_size(self) -> None:
        """Peers take a catalog up to MAX_CATALOG_BYTES and drop a larger one whole: say so here,
        where it can be fixed (fewer replicas or tags on this node), not only in their logs."""
        size = len(json.dumps(self.catalog.local_document(), indent=1, sort_keys=True)) + 1
        problem = (f"this node's catalog is {size} bytes, more than the {MAX_CATALOG_BYTES} its peers take: they "
                   "publish none of its instances; run fewer replicas or tags here") if size > MAX_CATALOG_BYTES else None
        if problem and problem != self.catalog_problem:
            log("error", "local_catalog_too_large", bytes=size, limit=MAX_CATALOG_BYTES)
        self.catalog_problem = problem

    def _save_state(self) -> None:
        try:
            self.state.save({"restarts": self.supervisor.restarts})
        except OSError as err:
            log("error", "state_write_failed", path=str(self.state.path), error=err.strerror)

    # -- what the API asks of the agent --------------------------------------------------------
    def render_metrics(self) -> str:
        self.metrics.connections_waiting = len(self.api.limiter)
        self.metrics.connections_evicted = self.api.limiter.evicted
        self.metrics.failover_takeovers = len(self.failover.held)
        self.metrics.failover_waiting = len(self.failover.waiting)
        self.metrics.failover_uncovered = len(self.failover.uncovered)
        return self.metrics.render(self.catalog, self.supervisor.status(), self.supervisor.restarts,
                                   len(self.supervisor.desired.errors), self.membership.connected, self.plan.plan,
                                   power=estimate_now(self.config.board, self.config.power_record_file))

    def health_report(self) -> dict[str, Any]:
        problems = []
        if self.membership.problem:
            problems.append(f"serf: {self.membership.problem}")
        if self.supervisor.docker_problem:
            problems.append(f"docker: {self.supervisor.docker_problem}")
        problems += [f"service file {name}: {why}" for name, why in sorted(self.supervisor.desired.errors.items())]
        if self.state.problem:
            problems.append(self.state.problem)
        if self.supervisor.directory_problem:
            problems.append(self.supervisor.directory_problem)
        if self.plan.problem:
            problems.append(self.plan.problem)
        if self.catalog_problem:
            problems.append(self.catalog_problem)
        return {
            "node": self.config.node_name, "version": __version__, "status": "degraded" if problems else "ok",
            "problems": problems, "uptime_s": round(time.time() - self.started),
            "serf_connected": self.membership.connected, "instances": self.supervisor.status(),
            "failover": self.failover.status(),
        }

    def cluster_status(self) -> dict[str, Any]:
        return cluster_status(self.config.node_name, self.catalog, self.plan.plan, self.failover.status(), list(recent))

    async def request_reconcile(self) -> Reply:
        self.supervisor.look_at_docker()
        return Reply(202, {"reconcile": "started"})

    async def restart_service(self, name: str) -> Reply:
        restarting = await self.supervisor.restart(name)
        if not restarting:
            return Reply(404, {"error": f"no container service {name} on this node"})
        return Reply(202, {"restarting": restarting})

    async def drain_service(self, name: str, drain: bool, replicas: set[int] | None = None) -> Reply:
        if drain:
            keys = self.supervisor.drain(name, replicas)
            if not keys:
                return Reply(404, {"error": f"no service {name} on this node"})
            return Reply(200, {"drained": keys})
        return Reply(200, {"undrained": self.supervisor.undrain(name)})

    # -- lifecycle -----------------------------------------------------------------------------
    async def _keep_running(self, name: str, work: Callable[[asyncio.Event], Awaitable[None]],
                            stop: asyncio.Event) -> None:
        """Run one of the agent's loops; restart it when it fails. A loop that keeps failing ends the
        agent (Serf left, exit 1) for systemd to restart, rather than a half-working agent that its
        peers still count on. A loop ends only at stop: one that returns before, or is cancelled
        from inside (a cancelled future it awaited, not this task's own cancel, which is shutdown),
        has failed too, or the agent would go on without it and say nothing."""
        failures: list[float] = []
        while not stop.is_set():
            try:
                await work(stop)
                if stop.is_set():
                    return
                err: BaseException = RuntimeError("the loop returned before the agent stopped")
            except asyncio.CancelledError as cancelled:
                task = asyncio.current_task()
                if stop.is_set() or (task is not None and task.cancelling()):
                    raise
                err = cancelled
            except Exception as failed:
                err = failed
            now = time.monotonic()
            failures = [t for t in failures if now - t < TASK_FAILURE_WINDOW] + [now]
            frames = traceback.extract_tb(err.__traceback__)
            log("error", "task_failed", task=name, error=repr(err)[:300],
                at=f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "returned",
                failures_in_window=len(failures))
            if len(failures) >= TASK_FAILURE_LIMIT:
                log("error", "agent_giving_up", task=name,
                    why=f"{len(failures)} failures within {TASK_FAILURE_WINDOW:g} s")
                self.exit_code = 1
                stop.set()
                return
            try:
                await asyncio.wait_for(stop.wait(), restart_delay(len(failures)))
            except asyncio.TimeoutError:
                pass

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (accept() out of file descriptors, a callback that raised): one
        structured line per 10 s instead of a traceback per event."""
        self._loop_error(message=str(context.get("message", ""))[:200], error=repr(context.get("exception"))[:200])

    async def run(self) -> int:
        """Serve until SIGTERM (exit code 0) or until a loop keeps failing (1)."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_exception)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.supervisor.look_at_docker)
        servers, transports = [], []
        resolver = Resolver(self.catalog, self.config.domain, self.config.dns_ttl)
        passed = listeners.passed_by_systemd()
        for address in self.config.bind_addresses:
            http, dns = self.config.http_port, self.config.dns_port
            servers.append(await self.api.serve(address, http, listeners.take(passed, socket.SOCK_STREAM, address, http)))
            servers.append(await serve_dns_tcp(resolver, self.metrics, self.api.limiter, address, dns,
                                               listeners.take(passed, socket.SOCK_STREAM, address, dns)))
            udp = listeners.take(passed, socket.SOCK_DGRAM, address, dns)
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: DNSProtocol(resolver, self.metrics), **({"sock": udp} if udp else {"local_addr": (address, dns)}))
            transports.append(transport)
        for sock in passed:  # a socket unit out of step with agent.toml: say so, serve what the config says
            log("warning", "listener_not_configured", address=str(sock.getsockname()[:2]), kind=sock.type.name)
            sock.close()
        log("info", "agent_started", node=self.config.node_name, version=__version__,
            listen=list(self.config.bind_addresses), http_port=self.config.http_port, dns_port=self.config.dns_port)
        async with asyncio.TaskGroup() as group:
            workers = [
                group.create_task(self._keep_running(name, work, stop), name=name)
                for name, work in (("supervisor", self.supervisor.run), ("docker-events", self.supervisor.watch_events),
                                   ("membership", self.membership.run))
            ]
            await stop.wait()
            log("info", "agent_stopping")
            for server in servers:  # stop serving first: peers must not read a half-gone node
                server.close()
            for transport in transports:
                transport.close()
            await self.membership.leave(timeout=SHUTDOWN_BOUND)
            for worker in workers:
                worker.cancel()
        self._save_state()
        log("info", "agent_stopped", exit_code=self.exit_code)
        return self.exit_code
