"""The reconcile loop: make the node's containers match the service files, and keep them healthy.

- A missing container is created and started; an exited or unhealthy one is restarted with
  exponential back-off; one whose spec changed is replaced; one no service file asks for is removed.
- A service whose file does not validate is left exactly as it is (reported in /v1/health).
- Images are never pulled: the node must work offline, and Ansible loads them (container_runtime role).
- Containers keep running when the agent stops: an agent upgrade does not restart services.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .catalog import Instance
from .config import SupervisorConfig
from .docker import LABEL_DIGEST, LABEL_NODE, LABEL_REPLICA, LABEL_SERVICE, DockerClient, DockerError
from .failover import FAILOVER_TAG
from .health import HEALTHY, UNHEALTHY, HealthTracker, probe
from .log import log
from .metrics import Metrics
from .spec import DesiredState, ServiceSpec, directory_stamp, load_desired


# Without container services the agent still looks for stray managed containers now and then.
DOCKER_LOOK_INTERVAL = 300.0


@dataclass
class Replica:
    spec: ServiceSpec
    index: int
    container_id: str | None = None
    running: bool = False
    health: HealthTracker | None = None
    failures: int = 0
    started_at: float = 0.0
    retry_at: float = 0.0
    problem: str = ""
    # The last failed health check, kept across restarts: what an operator (or a rollout's
    # error message) needs after the container was restarted and its new checks began.
    last_failure: str = ""
    # Taken out of discovery before a rollout stops it: still running and checked, not published.
    # A replica made for a new spec starts published.
    drained: bool = False

    @property
    def key(self) -> str:
        return f"{self.spec.name}-{self.index}"

    @property
    def healthy(self) -> bool:
        return self.running and self.health is not None and self.health.status == HEALTHY

    def needs_action(self, now: float) -> bool:
        if self.spec.external or now < self.retry_at:
            return False
        return not self.running or (self.health is not None and self.health.status == UNHEALTHY)

    def status(self) -> dict[str, Any]:
        return {
            "service": self.spec.name, "replica": self.index, "container": (self.container_id or "")[:12],
            "running": self.running, "health": self.health.status if self.health and self.running else "down",
            "detail": self.problem or (self.health.last_detail if self.health else ""),
            "restarts_in_a_row": self.failures, "tags": list(self.spec.tags), "last_failure": self.last_failure,
            "drained": self.drained,
        }


def container_name(spec: ServiceSpec, index: int) -> str:
    """pico-<service>-<replica>; a takeover says whose slot it runs: pico-<service>-for-<owner>-<slot>."""
    slot = next((t[len(FAILOVER_TAG):] for t in spec.tags if t.startswith(FAILOVER_TAG)), None)
    if slot is not None:
        owner, _sep, number = slot.rpartition(":")
        return f"pico-{spec.name}-for-{owner}-{number}"
    return f"pico-{spec.name}-{index}"


def container_body(spec: ServiceSpec, index: int, node: str) -> dict[str, Any]:
    env = dict(spec.env)
    host: dict[str, Any] = {"NetworkMode": spec.network, "RestartPolicy": {"Name": "no"}}
    body: dict[str, Any] = {
        "Image": spec.image,
        "Labels": {LABEL_SERVICE: spec.name, LABEL_REPLICA: str(index), LABEL_DIGEST: spec.digest, LABEL_NODE: node},
        "HostConfig": host,
    }
    port = spec.replica_port(index)
    if port is not None:
        # The twelve-factor convention: the app listens on $PORT. On the host network each
        # replica needs its own port; behind a bridge it is the container port.
        env["PORT"] = str(port if spec.network == "host" else spec.container_port or spec.port)
    if spec.network == "bridge" and port is not None:
        inside = f"{spec.container_port or spec.port}/tcp"
        body["ExposedPorts"] = {inside: {}}
        host["PortBindings"] = {inside: [{"HostPort": str(port)}]}
    if env:
        body["Env"] = [f"{k}={v}" for k, v in sorted(env.items())]
    if spec.command:
        body["Cmd"] = list(spec.command)
    if spec.memory:
        host["Memory"] = spec.memory
    if spec.cpus:
        host["NanoCpus"] = int(spec.cpus * 1e9)
    return body


class Supervisor:
    def __init__(self, config: SupervisorConfig, services_dir, docker: DockerClient, node: str,
                 metrics: Metrics, on_catalog_change: Callable[[list[Instance]], None],
                 restarts: dict[str, int] | None = None, on_restart: Callable[[], None] | None = None, *,
                 address: Callable[[], str] = lambda: "127.0.0.1",
                 takeovers: Callable[[], list[tuple[ServiceSpec, bool, int]]] = lambda: [],
                 takeovers_changed: Callable[[float], bool] = lambda now: False):
        """address: where peers reach this node's instances (the agent gives the Serf member address).
        takeovers: the replicas this node runs for failed peers (failover.py), as (spec, drained,
        replica number); takeovers_changed: run every loop, says whether they changed."""
        self.config = config
        self.services_dir = services_dir
        self.docker = docker
        self.node = node
        self.metrics = metrics
        self.on_catalog_change = on_catalog_change
        self.on_restart = on_restart or (lambda: None)
        self.desired = DesiredState({}, {}, ())
        self.replicas: dict[str, Replica] = {}
        self.restarts: dict[str, int] = dict(restarts or {})
        self.docker_problem: str | None = None
        self.directory_problem: str | None = None
        self.address = address
        self.wake = asyncio.Event()
        self.wants_containers = asyncio.Event()
        self._may_have_containers = True  # until the first look: a removed service's containers
        self._last_docker_look = 0.0
        self.takeovers = takeovers
        self.takeovers_changed = takeovers_changed

    # -- desired state -------------------------------------------------------------------------
    def _stamp(self) -> tuple | None:
        try:
            stamp = directory_stamp(self.services_dir)
        except OSError as err:
            problem = f"services directory {self.services_dir}: {err.strerror}; keeping the last desired state"
            if self.directory_problem != problem:
                log("error", "services_dir_unreadable", path=str(self.services_dir), error=err.strerror)
            self.directory_problem = problem
            return None
        self.directory_problem = None
        return stamp

    def _reload(self) -> None:
        stamp = self._stamp()
        if stamp is None or (stamp == self.desired.stamp and self.desired.stamp):
            return
        new = load_desired(self.services_dir, stamp)
        for name, problem in new.errors.items():
            if self.desired.errors.get(name) != problem:
                log("error", "service_file_invalid", service=name, problem=problem)
        if set(new.services) != set(self.desired.services) or new.errors != self.desired.errors:
            log("info", "desired_state", services=sorted(new.services), invalid=sorted(new.errors))
        self.desired = new

    # -- reconcile -----------------------------------------------------------------------------
    async def reconcile(self) -> None:
        started = time.monotonic()
        self._reload()
        now = time.monotonic()
        wanted: dict[str, Replica] = {}
        for spec in self.desired.services.values():
            for index in range(spec.replicas):
                key = f"{spec.name}-{index}"
                old = self.replicas.get(key)
                if old is not None and old.spec.digest == spec.digest:
                    old.spec = spec  # a new replica count: this replica's container stays as it is
                    wanted[key] = old
                else:
                    wanted[key] = Replica(spec, index, health=HealthTracker(spec.health, now) if spec.external else None)
                    if spec.external:
                        wanted[key].running = True
        # Takeovers have replica numbers past the service's planned ones (replica i listens on
        # port + i), so the node's own replicas can grow without touching them.
        for spec, drained, index in self.takeovers():
            if spec.name in self.desired.errors:
                continue  # this node's own file for it is invalid: its replicas are left as they are
            while f"{spec.name}-{index}" in wanted:
                index += 1  # a service file with more replicas than the plan has slots
            key = f"{spec.name}-{index}"
            old = self.replicas.get(key)
            if old is None or old.spec.digest != spec.digest:
                old = Replica(spec, index)
            old.drained = drained
            wanted[key] = old
        # Replicas of services whose file is invalid keep their last known state.
        for key, old in self.replicas.items():
            if old.spec.name in self.desired.errors and key not in wanted:
                wanted[key] = old
        self.replicas = wanted

        # The Docker API is touched only while the node has container services, or may still hold
        # containers of removed ones: with Podman each call starts its API service (~40 MB).
        wants = any(not replica.spec.external for replica in self.replicas.values())
        if wants:
            self.wants_containers.set()
        else:
            self.wants_containers.clear()
        if wants or self._may_have_containers or now - self._last_docker_look >= DOCKER_LOOK_INTERVAL:
            self._last_docker_look = now
            try:
                left = await self._reconcile_containers(now)
                self._may_have_containers = wants or left > 0
                if self.docker_problem:
                    log("info", "docker_reachable", socket=self.docker.socket)
                self.docker_problem = None
            except DockerError as err:
                if self.docker_problem != str(err):
                    log("error", "docker_unreachable", error=str(err))
                self.docker_problem = str(err)
        self.metrics.observe_reconcile(time.monotonic() - started)
        self.publish()

    async def _reconcile_containers(self, now: float) -> int:
        """Returns how many managed containers are left after this pass."""
        containers = await self.docker.managed_containers(self.node)
        removed = 0
        seen: set[str] = set()
        for container in containers:
            labels = container.get("Labels") or {}
            name = labels.get(LABEL_SERVICE, "")
            key = f"{name}-{labels.get(LABEL_REPLICA, '')}"
            replica = self.replicas.get(key)
            if name in self.desired.errors:
                if replica:
                    replica.container_id = container["Id"]
                    replica.running = container.get("State") == "running"
                continue  # invalid file: touch nothing
            if replica is None or replica.spec.external or key in seen:
                await self._remove(container, "not in the desired state")
                removed += 1
                continue
            if labels.get(LABEL_DIGEST) != replica.spec.digest:
                await self._remove(container, "spec changed")
                removed += 1
                replica.container_id, replica.running = None, False
                continue
            seen.add(key)
            running = container.get("State") == "running"
            if replica.container_id != container["Id"] or (running and not replica.running):
                replica.health = HealthTracker(replica.spec.health, now)
                replica.started_at = replica.started_at or now
            replica.container_id, replica.running = container["Id"], running

        for key, replica in self.replicas.items():
            if replica.spec.external or replica.spec.name in self.desired.errors:
                continue
            if key not in seen:
                replica.container_id, replica.running = None, False
            if replica.running and replica.failures and now - replica.started_at >= self.config.backoff_reset \
                    and replica.healthy:
                replica.failures = 0
            needs_start = replica.container_id is None or not replica.running
            unhealthy = replica.running and replica.health is not None and replica.health.status == UNHEALTHY
            if (needs_start or unhealthy) and now >= replica.retry_at:
                await self._start(replica, now, "unhealthy" if unhealthy else "exited" if replica.container_id else "missing")
        return len(containers) - removed

    async def _remove(self, container: dict[str, Any], why: str) -> None:
        labels = container.get("Labels") or {}
        await self.docker.remove(container["Id"])
        log("info", "container_removed", service=labels.get(LABEL_SERVICE), replica=labels.get(LABEL_REPLICA),
            container=container["Id"][:12], reason=why)

    async def _start(self, replica: Replica, now: float, reason: str) -> None:
        spec = replica.spec
        try:
            if replica.container_id and reason == "unhealthy":
                await self.docker.stop(replica.container_id, self.config.stop_timeout)
            if replica.container_id is None:
                if not await self.docker.image_present(spec.image):
                    problem = f"image {spec.image} is not on this node: load it with the container_runtime role"
                    if replica.problem != problem:
                        log("error", "image_missing", service=spec.name, image=spec.image)
                    replica.problem = problem
                    replica.retry_at = now + self.config.backoff_max
                    return
                name = container_name(spec, replica.index)
                replica.container_id = await self.docker.create(name, container_body(spec, replica.index, self.node))
            await self.docker.start(replica.container_id)
        except DockerError as err:
            replica.problem = str(err)
            log("error", "container_start_failed", service=spec.name, replica=replica.index, error=str(err))
            self._back_off(replica, now)
            return
        replica.problem = ""
        replica.running = True
        replica.started_at = now
        replica.health = HealthTracker(spec.health, now)
        if reason != "missing":
            self.restarts[spec.name] = self.restarts.get(spec.name, 0) + 1
            self.on_restart()
        self._back_off(replica, now)
        log("info", "container_started", service=spec.name, replica=replica.index, reason=reason,
            container=replica.container_id[:12], next_restart_after_s=round(replica.retry_at - now, 1))

    def _back_off(self, replica: Replica, now: float) -> None:
        replica.failures += 1
        delay = min(self.config.backoff_initial * 2 ** (replica.failures - 1), self.config.backoff_max)
        replica.retry_at = now + delay

    # -- health --------------------------------------------------------------------------------
    async def check_health(self) -> None:
        now = time.monotonic()
        due = [r for r in self.replicas.values() if r.running and r.health is not None and r.health.due(now)]
        if not due:
            return
        results = await asyncio.gather(*(probe(r.spec.health, r.spec.replica_port(r.index), self.docker,
                                               r.container_id) for r in due))
        changed = False
        for replica, (ok, detail) in zip(due, results):
            assert replica.health is not None
            if not ok and detail:
                replica.last_failure = detail
            if replica.health.record(ok, detail, time.monotonic()):
                changed = True
                log("info" if replica.health.status == HEALTHY else "warning", "health_changed",
                    service=replica.spec.name, replica=replica.index, status=replica.health.status, detail=detail)
                if replica.health.status == UNHEALTHY:
                    self.wake.set()
        if changed:
            self.publish()

    def publish(self) -> None:
        instances = [
            Instance(r.spec.name, self.node, self.address(), r.spec.replica_port(r.index),
                     f"{self.node}/{r.key}", r.spec.tags)
            for r in self.replicas.values() if r.healthy and not r.drained
        ]
        self.on_catalog_change(instances)

    def drain(self, name: str, indices: set[int] | None = None) -> list[str]:
        """Withdraw this node's instances of `name` (all, or replicas `indices`) from discovery;
        they keep running until their service file says otherwise."""
        replicas = [r for r in self.replicas.values() if r.spec.name == name and (indices is None or r.index in indices)]
        for replica in replicas:
            replica.drained = True
        if replicas:
            log("info", "service_drained", service=name, replicas=sorted(r.index for r in replicas))
            self.publish()
        return sorted(r.key for r in replicas)

    def undrain(self, name: str) -> bool:
        replicas = [r for r in self.replicas.values() if r.spec.name == name and r.drained]
        for replica in replicas:
            replica.drained = False
        if replicas:
            log("info", "service_undrained", service=name, replicas=sorted(r.index for r in replicas))
            self.publish()
        return bool(replicas)

    async def restart(self, name: str) -> list[str]:
        """Stop this node's containers of `name` now; the next reconcile starts them again, with no
        back-off. The replicas restarted (none: no container service of that name here)."""
        replicas = [r for r in self.replicas.values() if r.spec.name == name and not r.spec.external]
        for replica in replicas:
            if replica.container_id:
                await self.docker.stop(replica.container_id, self.config.stop_timeout)
            replica.retry_at = 0.0
        if replicas:
            log("info", "restart_requested", service=name, replicas=len(replicas))
            self.wake.set()
        return sorted(r.key for r in replicas)

    def look_at_docker(self) -> None:
        """The next reconcile lists containers even if no service asks for one (API, SIGHUP)."""
        self._may_have_containers = True
        self.wake.set()

    def next_wakeup(self, now: float) -> float:
        times = [r.retry_at for r in self.replicas.values() if r.retry_at > now and not r.spec.external
                 and (not r.running or (r.health is not None and r.health.status == UNHEALTHY))]
        times += [r.health.next_check for r in self.replicas.values() if r.running and r.health and r.spec.health.type != "none"]
        return min([now + self.config.interval, *times])

    # -- loops ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        last_full = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if self.takeovers_changed(now):
                self.wake.set()
            if self.wake.is_set() or now - last_full >= self.config.interval or \
                    any(r.needs_action(now) for r in self.replicas.values()) or \
                    self._stamp() not in (None, self.desired.stamp):
                self.wake.clear()
                last_full = now
                await self.reconcile()
            await self.check_health()
            timeout = max(0.05, min(self.next_wakeup(time.monotonic()) - time.monotonic(), 1.0))
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def watch_events(self, stop: asyncio.Event) -> None:
        """Docker events wake the loop at once when a managed container dies."""
        delay = 1.0
        while not stop.is_set():
            # No container services, no open API connection (it would keep Podman's service up).
            if not self.wants_containers.is_set():
                try:
                    await asyncio.wait_for(self.wants_containers.wait(), 5.0)
                except asyncio.TimeoutError:
                    continue
            try:
                async for event in self.docker.events(self.node):
                    delay = 1.0
                    action = event.get("Action") or event.get("status") or ""
                    if action in ("die", "oom", "destroy", "stop"):
                        log("debug", "container_event", action=action, container=str(event.get("id", ""))[:12])
                        self.wake.set()
                        # Docker sends "die" a moment before its container list says "exited".
                        asyncio.get_running_loop().call_later(0.5, self.wake.set)
            except DockerError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in sorted(self.replicas.values(), key=lambda r: r.key)]
