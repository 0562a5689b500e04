# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
"""The plan document every node keeps (/etc/pico-agent/plan.json): made, checked and read here
only. The planner (pico.cloud.service_plan), energy.yml's record of the boards it powers down
(the plan_powered_off filter) and status.yml (the newest_plan filter) go through these
functions, and every agent reads its plan with parse_plan below (runtime/src/pico_agent/
_plan_document.py is a link to this file, carried in the agent bundle).

The controller reads what the nodes hold more leniently (check_held) than an agent (parse_plan):
a plan from an older deploy.yml, without what failover needs, is one the controller must be able
to replace, while an agent keeps its last good plan instead.

Standard library only, and Python 3.8 or later: it runs on the controller and on the nodes."""

from __future__ import absolute_import, division, print_function
from __future__ import annotations

__metaclass__ = type

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Relative: the agent carries this file and _service_spec.py side by side (pico_agent/).
from ._service_spec import NAME_RE, PLAN_FILE, SpecError, parse_spec
# Generations count deploys that changed something: one a second would take 68 years to pass this.
# A plan above it is made up, and an agent that took it would refuse every real plan after it as older.
MAX_GENERATION = 2**31 - 1
BROKEN_FIX = ("Remove that file on the node (the next deploy.yml writes the plan there again from the "
              "others) or restore it, then run the playbook again. Nothing was changed.")


class PlanDocumentError(ValueError):
    """A plan file a node holds that cannot be read; the message names the node, file and fix."""


def check_held(plan, where, fix=BROKEN_FIX):
    """A plan a node holds, checked for what the controller reads of it (an agent refuses the same
    file and keeps its last good plan). None (no file) is the empty plan."""
    if plan is None:
        return {}

    def bad(what):
        return PlanDocumentError("%s: %s. %s" % (where, what, fix))

    if not isinstance(plan, dict):
        raise bad("not a plan (a JSON object)")
    generation = plan.get("generation", 0)
    if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation <= MAX_GENERATION:
        raise bad("generation = %r is not a whole number from 0 to %d" % (generation, MAX_GENERATION))
    services = plan.get("services", {})
    if not isinstance(services, dict):
        raise bad("services is not a mapping of service name to its slots")
    for name, entry in services.items():
        slots = entry.get("slots") if isinstance(entry, dict) else None
        if not isinstance(slots, list) or not all(s is None or isinstance(s, str) for s in slots):
            raise bad("services.%s.slots is not a list of node names" % (name,))
    drained = plan.get("drained", [])
    if not isinstance(drained, list) or not all(isinstance(n, str) for n in drained):
        raise bad("drained is not a list of node names")
    powered_off = plan.get("powered_off", {})
    if not isinstance(powered_off, dict) or not all(isinstance(v, dict) for v in powered_off.values()):
        raise bad("powered_off is not a mapping of node name to what the node was")
    return plan


def newest(held, plan_file=PLAN_FILE, skip_broken=False):
    """The newest of the plans the nodes hold (`held`: node name to its plan, None where it has
    none): the highest generation, the first node by name among equals. A broken file is named
    with its node (PlanDocumentError), or left out with skip_broken (a status report)."""
    if not isinstance(held, dict):
        raise PlanDocumentError("held = %r: a mapping of node name to the plan it holds" % (held,))
    plans = []
    for node, plan in sorted(held.items()):
        try:
            plans.append(check_held(plan, "%s: %s" % (node, plan_file)))
        except PlanDocumentError:
            if not skip_broken:
                raise
    return max((p for p in plans if p), key=lambda p: p.get("generation", 0), default={})


def version(services):
    """What the placement is, in 16 hex digits: the same services and slots, the same version."""
    return hashlib.sha256(json.dumps(services, sort_keys=True).encode()).hexdigest()[:16]


def document(current, planned, drained, powered_off, cluster=None):
    """The plan to write after `current`, from the planner's placement (`planned`: its services,
    and what else it reports, such as its nodes and the boards it leaves empty). The generation
    goes up when anything the agents act on (slots, drained or powered-down boards) changes, so an
    agent takes the newest it is given. Returns the plan and whether the placement changed."""
    services = planned.get("services") or {}
    new = dict(planned, services=services, drained=sorted(drained), powered_off=powered_off)
    if cluster:
        new["cluster"] = cluster
    changed = (services != current.get("services") or new["drained"] != sorted(current.get("drained") or [])
               or powered_off != (current.get("powered_off") or {}))
    new["generation"] = int(current.get("generation") or 0) + (1 if changed else 0)
    if new["generation"] > MAX_GENERATION:
        raise PlanDocumentError("the plan's generation would pass %d, which no agent takes: a node holds a "
                                "made-up plan. %s" % (MAX_GENERATION, BROKEN_FIX))
    new["version"] = version(services)
    return new, changed


def with_powered_off(plan, boards, since):
    """`plan` with `boards` (node name to its planner node entry) recorded as powered down on
    purpose since `since` (Unix seconds): a deploy then wakes them for room, and no agent fails
    them over."""
    if not isinstance(boards, dict) or not all(isinstance(v, dict) for v in boards.values()):
        raise PlanDocumentError("boards = %r: a mapping of board name to its node entry" % (boards,))
    current = check_held(plan, "the plan to record powered-down boards in")
    recorded = dict(current.get("powered_off") or {})
    recorded.update((name, dict(entry, since=int(since))) for name, entry in boards.items())
    new, dummy = document(current, current, current.get("drained") or [], recorded)
    return new


# An agent's reading: what failover needs, each part checked; never a value from a spec.

class PlanError(ValueError):
    """A plan file the agent will not use; it keeps the last good one."""


@dataclass(frozen=True)
class NodeRoom:
    arch: str
    memory: int  # bytes the node has for services
    cpus: float
    memory_requested: int  # by its planned slots
    cpu_requested: float


@dataclass(frozen=True)
class ServicePlan:
    slots: tuple[str | None, ...]
    candidates: tuple[str, ...]
    memory: int
    cpu: float
    specs: dict[str, dict[str, Any]]  # architecture -> the service file for one replica


@dataclass(frozen=True)
class Plan:
    generation: int
    cluster: str
    services: dict[str, ServicePlan]
    nodes: dict[str, NodeRoom]
    # Boards energy.yml powered down on purpose, and since when (Unix seconds; None if unknown).
    powered_off: dict[str, int | None] = field(default_factory=dict)


def _number(value: Any, what: str, kind=(int, float), top: int = 2**53) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) or not 0 <= value < top:
        raise PlanError(f"{what} is not a number of the right kind")
    return value


def _node_names(value: Any, nodes: dict, none_ok: bool) -> bool:
    """A list of names of the plan's nodes (None allowed for an empty slot), of any JSON shape."""
    return isinstance(value, list) and all((none_ok and v is None) or (isinstance(v, str) and v in nodes)
                                           for v in value)


def parse_plan(data: Any) -> Plan:
    """The plan as deploy.yml writes it; PlanError names what is wrong (never a value from a spec)."""
    if not isinstance(data, dict):
        raise PlanError("not a JSON object")
    generation = _number(data.get("generation"), "generation", int, MAX_GENERATION + 1)
    cluster = data.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise PlanError("no cluster id: written by a deploy.yml from before failover; run deploy.yml again")
    raw_nodes, raw_services = data.get("nodes"), data.get("services")
    if not isinstance(raw_nodes, dict) or not isinstance(raw_services, dict):
        raise PlanError("nodes and services must be objects")
    nodes = {}
    for name, node in raw_nodes.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(node, dict):
            raise PlanError(f"node {str(name)[:64]!r} is not a node entry")
        nodes[name] = NodeRoom(str(node.get("arch", "")), _number(node.get("memory", 0), f"nodes.{name}.memory", int),
                               float(_number(node.get("cpus", 0), f"nodes.{name}.cpus")),
                               _number(node.get("memory_requested", 0), f"nodes.{name}.memory_requested", int),
                               float(_number(node.get("cpu_requested", 0), f"nodes.{name}.cpu_requested")))
    services = {}
    for name, entry in raw_services.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(entry, dict):
            raise PlanError(f"service {str(name)[:64]!r} is not a service entry")
        slots, failover = entry.get("slots"), entry.get("failover")
        if not _node_names(slots, nodes, none_ok=True):
            raise PlanError(f"services.{name}.slots must name nodes of the plan")
        if not isinstance(failover, dict):
            raise PlanError(f"services.{name} has no failover entry: run deploy.yml again")
        candidates, specs = failover.get("candidates"), failover.get("specs")
        if not _node_names(candidates, nodes, none_ok=False) or not isinstance(specs, dict):
            raise PlanError(f"services.{name}.failover needs candidates (nodes of the plan) and specs")
        checked = {}
        for arch, spec in specs.items():
            try:
                parse_spec(spec, expected_name=name)
            except SpecError as err:
                raise PlanError(f"services.{name}.failover.specs.{str(arch)[:16]}: {err}") from None
            checked[str(arch)] = spec
        requests = failover.get("requests") or {}
        if not isinstance(requests, dict):
            raise PlanError(f"services.{name}.failover.requests must be an object (memory, cpu)")
        services[name] = ServicePlan(tuple(slots), tuple(candidates),
                                     _number(requests.get("memory", 0), f"services.{name} memory", int),
                                     float(_number(requests.get("cpu", 0), f"services.{name} cpu")), checked)
    raw_off = data.get("powered_off") or {}
    powered_off = {name: entry.get("since") if isinstance(entry, dict) and isinstance(entry.get("since"), int) else None
                   for name, entry in (raw_off.items() if isinstance(raw_off, dict) else ()) if isinstance(name, str)}
    return Plan(generation, cluster, services, nodes, powered_off)
