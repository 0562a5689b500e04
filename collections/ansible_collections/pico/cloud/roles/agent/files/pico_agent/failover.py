"""Decentralized failover: no controller, no leader, no messages.

Every agent holds the same plan (written by deploy.yml to every node) and sees the same Serf
membership, so every agent computes the same answer to "which surviving node takes each slot of a
failed node". The chosen node runs the replica; the others do nothing.

- Only a *failed* member is failed over. A node that *left* (drained, powered down on purpose)
  is not a failure: deploy.yml places its replicas elsewhere.
- The choice: for each slot of each failed node (failed nodes, services and slots in a fixed
  order), the eligible alive node ranked first by rendezvous hashing of (service, slot, node)
  that still has room for the service's requests. "Eligible" is what the planner found eligible
  when it placed the service (constraints, architecture, image). Room is the node's capacity
  minus what the plan and the takeovers before this one ask of it: a takeover never overcommits
  a node, and no node takes more than MAX_TAKEOVERS slots. A slot that fits nowhere waits, and
  says so.
- While views differ during gossip, two nodes may both run a slot for a moment: a duplicate, never
  a gap. A takeover is given up only when someone else covers its slot: the owner, alive again
  and publishing its planned instances healthy, or the node the rule now picks, publishing the
  takeover healthy, in either case for hold_down seconds without a break. It is then drained
  (out of discovery) for drain_time seconds before it stops. After a partition heals, every
  owner is back, so every extra copy converges away and the plan wins.
- Time is each node's own monotonic clock; no decision compares clocks across nodes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The plan document and the service file: the collection's module_utils, linked in (one copy).
from ._plan_document import NodeRoom, Plan, PlanError, ServicePlan, parse_plan
from ._service_spec import FAILOVER_TAG, MAX_TAKEOVERS
from .catalog import Catalog, Instance
from .config import FailoverConfig
from .files import FileProblem, loads_json, read_small_file, write_atomically
from .log import log
from .spec import ServiceSpec, SpecError, parse_spec

__all__ = ["FAILOVER_TAG", "NodeRoom", "Plan", "PlanError", "ServicePlan", "parse_plan", "assign", "rank",
           "Failover", "PlanSource", "Slot", "Takeover"]

MAX_PLAN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Slot:
    service: str
    index: int
    owner: str

    @property
    def tag(self) -> str:
        return f"{FAILOVER_TAG}{self.owner}:{self.index}"


def rank(service: str, index: int, node: str) -> bytes:
    """Rendezvous order: the same on every node, and a node's absence moves only its own slots."""
    return hashlib.sha256(f"{service}\0{index}\0{node}".encode()).digest()[:8]


def assign(plan: Plan, failed: set[str], alive: set[str]) -> tuple[dict[Slot, str], list[Slot]]:
    """Who takes each slot of each failed node, and the slots that fit nowhere."""
    chosen, waiting, _free = _assign(plan, failed, alive)
    return chosen, waiting


def _ranked(plan: Plan, slot: Slot, failed: set[str], alive: set[str]) -> list[str]:
    service = plan.services[slot.service]
    return sorted((c for c in service.candidates if c in alive and c not in failed and plan.nodes[c].arch in service.specs),
                  key=lambda c: rank(slot.service, slot.index, c), reverse=True)


def _fits(room: list | None, service: ServicePlan) -> bool:
    return bool(room) and room[0] >= service.memory and room[1] >= service.cpu - 1e-9 and room[2] > 0


def _assign(plan: Plan, failed: set[str], alive: set[str]) -> tuple[dict[Slot, str], list[Slot], dict[str, list]]:
    """assign(), and the room each node has left after it: [memory, cpu, takeovers]."""
    free = {name: [n.memory - n.memory_requested, n.cpus - n.cpu_requested, MAX_TAKEOVERS]
            for name, n in plan.nodes.items()}
    chosen: dict[Slot, str] = {}
    waiting: list[Slot] = []
    for owner in sorted(failed):
        for name in sorted(plan.services):
            service = plan.services[name]
            if not all(spec.get("image") for spec in service.specs.values()):
                continue  # a service the node itself runs cannot be started elsewhere
            for index, node in enumerate(service.slots):
                if node != owner:
                    continue
                slot = Slot(name, index, owner)
                for candidate in _ranked(plan, slot, failed, alive):
                    room = free.get(candidate)
                    if _fits(room, service):
                        _take(room, service)
                        chosen[slot] = candidate
                        break
                else:
                    waiting.append(slot)
    return chosen, waiting, free


def _take(room: list, service: ServicePlan) -> None:
    room[0] -= service.memory
    room[1] -= service.cpu
    room[2] -= 1


@dataclass
class Takeover:
    slot: Slot
    spec: ServiceSpec
    # The replica number on this node: past every slot of the service, so the node's own replicas
    # (0 .. slots - 1 at most) never take it, even when deploy.yml folds this slot into them.
    # Replica i listens on port + i: the takeover keeps one container and one port throughout.
    index: int
    covered_since: float | None = None
    draining_since: float | None = None


@dataclass
class Failover:
    """This node's takeovers, recomputed from the plan and the membership on every look."""

    node: str
    plan: Plan | None = None
    hold_down: float = FailoverConfig.hold_down
    drain_time: float = FailoverConfig.drain_time
    # A slot its taker does not serve this long is taken by the next candidate too (then the
    # one after it, and so on): nodes whose plans differ (one missed a deploy) can each leave a
    # slot to the other, and a duplicate is better than a gap.
    escalate_after: float = FailoverConfig.escalate_after
    held: dict[Slot, Takeover] = field(default_factory=dict)
    waiting: list[Slot] = field(default_factory=list)
    # Slots of failed nodes nobody serves yet, since when this node saw them so (its own clock).
    uncovered: dict[Slot, float] = field(default_factory=dict)
    _now: float = 0.0
    # Slots this node was picked for but cannot take, with why: logged when that first happens,
    # not on every pass (a port past 65535 once wrote 572 lines in 30 s).
    refused: dict[Slot, str] = field(default_factory=dict)

    def update(self, catalog: Catalog, now: float) -> bool:
        """Recompute; True when the set of takeovers (or their drained state) changed."""
        if self.plan is None:
            changed = bool(self.held)
            self.held, self.waiting = {}, []
            return changed
        statuses = {name: m.status for name, m in catalog.members.items()}
        failed = {name for name, status in statuses.items() if status == "failed" and name in self.plan.nodes}
        alive = {name for name, status in statuses.items() if status == "alive"}
        self._now = now
        chosen, self.waiting, free = _assign(self.plan, failed, alive)
        instances = catalog.instances()
        served = {t for i in instances for t in i.tags if t.startswith(FAILOVER_TAG)}
        self.uncovered = {slot: self.uncovered.get(slot, now) for slot in [*chosen, *self.waiting]
                          if slot.tag not in served and slot not in self.held}
        changed = False
        refused: dict[Slot, str] = {}
        for slot, node in chosen.items():
            if node != self.node and slot in self.uncovered and slot not in self.held:
                if self._escalates(slot, node, failed, alive, now - self.uncovered[slot], free):
                    log("warning", "failover_slot_uncovered_taken", service=slot.service, slot=slot.index,
                        owner=slot.owner, taker_by_this_plan=node, seconds=round(now - self.uncovered[slot], 1))
                    node = self.node
            if node == self.node and slot not in self.held:
                try:
                    self.held[slot] = Takeover(slot, *self._spec(slot))
                except SpecError as err:  # a port past 65535, say: it waits, and says why
                    self.waiting.append(slot)
                    refused[slot] = str(err)[:200]
                    if self.refused.get(slot) != refused[slot]:
                        log("error", "failover_spec_refused", service=slot.service, slot=slot.index,
                            error=refused[slot])
                    continue
                changed = True
        self.refused = refused
        for slot in sorted(self.held):
            takeover = self.held[slot]
            if takeover.draining_since is not None:
                if chosen.get(slot) == self.node and not self._covered(slot, self.node, statuses, instances):
                    # Its owner failed again while this copy drained: serve on with the same
                    # container, rather than stop it and start another (the slot had no copy
                    # for up to 4.5 s).
                    takeover.draining_since = takeover.covered_since = None
                    log("info", "failover_takeover_revived", service=slot.service, slot=slot.index, owner=slot.owner)
                    changed = True
                elif now - takeover.draining_since >= self.drain_time:
                    del self.held[slot]
                    changed = True
                continue
            if self._covered(slot, chosen.get(slot), statuses, instances):
                takeover.covered_since = takeover.covered_since if takeover.covered_since is not None else now
                if now - takeover.covered_since >= self.hold_down:
                    takeover.draining_since = now
                    changed = True
            else:
                takeover.covered_since = None
        return changed

    def _escalates(self, slot: Slot, taker: str, failed: set[str], alive: set[str], seconds: float,
                   free: dict[str, list]) -> bool:
        """This node takes a slot left uncovered: the k-th candidate after its taker once it has
        been uncovered k x escalate_after, if the node has room (its plan's, after its takeovers)."""
        assert self.plan is not None
        ranked = _ranked(self.plan, slot, failed, alive)
        if self.node not in ranked or taker not in ranked:
            return False
        after = [c for c in ranked if c != taker]
        position = after.index(self.node) + 1
        service = self.plan.services[slot.service]
        if seconds < position * self.escalate_after or not _fits(free.get(self.node), service):
            return False
        _take(free[self.node], service)
        return True

    def _spec(self, slot: Slot) -> tuple[ServiceSpec, int]:
        """The takeover's service spec and its replica number on this node."""
        assert self.plan is not None
        service = self.plan.services[slot.service]
        raw = dict(service.specs[self.plan.nodes[self.node].arch])
        raw["tags"] = [*raw.get("tags", []), slot.tag]
        raw["replicas"] = 1
        spec, index = parse_spec(raw, expected_name=slot.service), len(service.slots) + slot.index
        if spec.port is not None and spec.port + index > 65535:
            raise SpecError(f"port {spec.port} + replica {index} runs past 65535 (a takeover listens past the "
                            "service's planned replicas): give the service a lower port")
        return spec, index

    def _covered(self, slot: Slot, assignee: str | None, statuses: dict[str, str],
                 instances: list[Instance]) -> bool:
        """Someone other than this node serves the slot, healthy in discovery."""
        assert self.plan is not None
        service = self.plan.services.get(slot.service)
        planned = [i for i in instances if i.service == slot.service and not any(
            t.startswith(FAILOVER_TAG) for t in i.tags)]
        if service is None:
            return True  # the service is gone from the plan
        if slot.index >= len(service.slots) or service.slots[slot.index] != slot.owner:
            # A newer plan moved the slot: covered once the planned instances on alive nodes serve.
            needed = sum(1 for n in service.slots if statuses.get(n) == "alive")
            return len(planned) >= needed
        if statuses.get(slot.owner) == "alive":
            needed = sum(1 for n in service.slots if n == slot.owner)
            return sum(1 for i in planned if i.node == slot.owner) >= needed
        if assignee is not None and assignee != self.node:
            return any(i.node == assignee and slot.tag in i.tags for i in instances)
        return False

    def takeovers(self) -> list[tuple[ServiceSpec, bool, int]]:
        """(spec, drained, replica number) of every takeover this node runs, in a fixed order."""
        return [(t.spec, t.draining_since is not None, t.index) for _slot, t in sorted(self.held.items())]

    def status(self) -> dict[str, Any]:
        return {
            "plan_generation": self.plan.generation if self.plan else None,
            "takeovers": [{"service": s.service, "slot": s.index, "owner": s.owner,
                           "draining": t.draining_since is not None} for s, t in sorted(self.held.items())],
            "waiting": [{"service": s.service, "slot": s.index, "owner": s.owner} for s in self.waiting],
            "uncovered": [{"service": s.service, "slot": s.index, "owner": s.owner,
                           "for_s": round(self._now - t, 1)} for s, t in sorted(self.uncovered.items())],
        }


class PlanSource:
    """The plan file deploy.yml writes, checked before use. A plan that is corrupt, from another
    cluster or older than the newest this node accepted is refused and logged; the agent keeps the
    last good plan (a copy in its state directory, so a restart keeps it too)."""

    def __init__(self, path: Path, kept: Path, cluster_id: str | None, node: str):
        self.path, self.kept, self.cluster_id, self.node = path, kept, cluster_id, node
        self.plan: Plan | None = None
        self.problem: str | None = None
        self._stamp: tuple[int, int] | None = None
        try:
            self.plan = self._read(kept)[0]
        except (FileNotFoundError, PlanError):
            pass  # nothing kept yet, or unusable: the plan file decides

    def _read(self, path: Path) -> tuple[Plan, bytes]:
        """The plan in the file, and the file's bytes (kept as they are)."""
        try:
            raw, _status = read_small_file(path, MAX_PLAN_BYTES)
            plan = parse_plan(loads_json(raw))
        except FileNotFoundError:
            raise
        except (FileProblem, ValueError) as err:
            raise PlanError(str(err)) from None
        except OSError as err:
            raise PlanError(f"cannot read: {err.strerror}") from None
        if self.cluster_id and plan.cluster != self.cluster_id:
            raise PlanError(f"from another cluster (cluster id {plan.cluster[:16]}, this node's is {self.cluster_id})")
        if self.node not in plan.nodes:
            raise PlanError(f"does not list this node ({self.node})")
        return plan, raw

    def poll(self) -> bool:
        """Read the plan file if it changed; True when a new plan was taken."""
        try:
            status = self.path.stat()
            stamp = (status.st_size, status.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            return False  # no plan file: failover needs deploy.yml to have run
        try:
            plan, raw = self._read(self.path)
            if self.plan is not None and plan.generation < self.plan.generation:
                raise PlanError(f"generation {plan.generation} is older than the one this node holds "
                                f"({self.plan.generation})")
        except (PlanError, FileNotFoundError) as err:
            problem = f"plan file {self.path} refused: {err}; keeping generation " \
                      f"{self.plan.generation if self.plan else 'none'}"
            if problem != self.problem:
                log("error", "plan_refused", path=str(self.path), error=str(err)[:300])
            self.problem = problem
            return False
        self.problem = None
        if self.plan is not None and plan == self.plan:
            return False
        self.plan = plan
        self._keep(raw)
        log("info", "plan_taken", generation=plan.generation, services=sorted(plan.services))
        return True

    def _keep(self, raw: bytes) -> None:
        try:
            write_atomically(self.kept, raw, 0o600)  # specs may hold secrets
        except OSError as err:
            log("warning", "plan_keep_failed", path=str(self.kept), error=str(err)[:200])
