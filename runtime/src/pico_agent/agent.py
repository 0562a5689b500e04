"""Wires the parts together and runs them until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from typing import Any

from . import __version__
from .api import API, Reply
from .catalog import Catalog, Instance
from .config import AgentConfig
from .dns import DNSProtocol, Resolver
from .docker import DockerClient
from .log import log
from .membership import Membership
from .metrics import Metrics
from .state import StateFile
from .supervisor import Supervisor

SHUTDOWN_BOUND = 15.0


def load_or_create_token(path) -> str:
    """The API token: created 0600 on first start, so it never has to leave the node."""
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


class Agent:
    def __init__(self, config: AgentConfig):
        self.config = config
        self.started = time.time()
        self.metrics = Metrics()
        self.catalog = Catalog(config.node_name)
        self.state = StateFile(config.state_dir / "state.json")
        saved = self.state.load()
        self.docker = DockerClient(config.supervisor.docker_socket)
        self.membership = Membership(config, self.catalog, self.metrics)
        self.supervisor = Supervisor(config.supervisor, config.services_dir, self.docker, config.node_name,
                                     self.metrics, self._local_instances, restarts=saved.get("restarts"),
                                     on_restart=self._save_state)
        self.supervisor.address = self.advertise_address
        self.membership.on_self_address = self.supervisor.publish
        self.api = API(self, load_or_create_token(config.token_file))

    def advertise_address(self) -> str:
        if self.config.advertise_address:
            return self.config.advertise_address
        if self.membership.self_address:
            return self.membership.self_address
        others = [a for a in self.config.bind_addresses if not a.startswith("127.")]
        return others[0] if others else self.config.bind_addresses[0]

    def _local_instances(self, instances: list[Instance]) -> None:
        if self.catalog.set_local(instances):
            log("info", "local_catalog", version=self.catalog.local_version,
                healthy=sorted({i.id for i in instances}))
            self.membership.local_catalog_changed()

    def _save_state(self) -> None:
        try:
            self.state.save({"restarts": self.supervisor.restarts})
        except OSError as err:
            log("error", "state_write_failed", path=str(self.state.path), error=err.strerror)

    # -- what the API asks of the agent --------------------------------------------------------
    def render_metrics(self) -> str:
        return self.metrics.render(self.catalog, self.supervisor.status(), self.supervisor.restarts,
                                   len(self.supervisor.desired.errors), self.membership.connected)

    def health_report(self) -> dict[str, Any]:
        problems = []
        if self.membership.problem:
            problems.append(f"serf: {self.membership.problem}")
        if self.supervisor.docker_problem:
            problems.append(f"docker: {self.supervisor.docker_problem}")
        problems += [f"service file {name}: {why}" for name, why in sorted(self.supervisor.desired.errors.items())]
        if self.state.problem:
            problems.append(self.state.problem)
        return {
            "node": self.config.node_name, "version": __version__, "status": "degraded" if problems else "ok",
            "problems": problems, "uptime_s": round(time.time() - self.started),
            "serf_connected": self.membership.connected, "instances": self.supervisor.status(),
        }

    async def request_reconcile(self) -> Reply:
        self.supervisor.look_at_docker()
        return Reply(202, {"reconcile": "started"})

    async def restart_service(self, name: str) -> Reply:
        replicas = [r for r in self.supervisor.replicas.values() if r.spec.name == name and not r.spec.external]
        if not replicas:
            return Reply(404, {"error": f"no container service {name} on this node"})
        for replica in replicas:
            if replica.container_id:
                await self.docker.stop(replica.container_id, self.config.supervisor.stop_timeout)
            replica.retry_at = 0.0
        log("info", "restart_requested", service=name, replicas=len(replicas))
        self.supervisor.wake.set()
        return Reply(202, {"restarting": [r.key for r in replicas]})

    async def drain_service(self, name: str, drain: bool, replicas: set[int] | None = None) -> Reply:
        if drain:
            keys = self.supervisor.drain(name, replicas)
            if not keys:
                return Reply(404, {"error": f"no service {name} on this node"})
            return Reply(200, {"drained": keys})
        return Reply(200, {"undrained": self.supervisor.undrain(name)})

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.supervisor.look_at_docker)
        servers, transports = [], []
        resolver = Resolver(self.catalog, self.config.domain, self.config.dns_ttl)
        for address in self.config.bind_addresses:
            servers.append(await self.api.serve(address, self.config.http_port))
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DNSProtocol(resolver, self.metrics), local_addr=(address, self.config.dns_port))
            transports.append(transport)
        log("info", "agent_started", node=self.config.node_name, version=__version__,
            listen=list(self.config.bind_addresses), http_port=self.config.http_port, dns_port=self.config.dns_port)
        async with asyncio.TaskGroup() as group:
            workers = [
                group.create_task(self.supervisor.run(stop), name="supervisor"),
                group.create_task(self.supervisor.watch_events(stop), name="docker-events"),
                group.create_task(self.membership.run(stop), name="membership"),
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
        log("info", "agent_stopped")
