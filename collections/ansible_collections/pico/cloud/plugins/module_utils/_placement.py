# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""Leaderless, deterministic placement of service replicas on nodes. Pure: no I/O, no clock, no
randomness, so the controller, and later every agent, computes the same plan from the same input.

    plan(services, nodes, current) -> {"version", "services": {name: {"digest", "slots"}}, "nodes": ...}

- services: validated declarations (see validate_services); each asks for `replicas` slots.
- nodes: {"name", "arch", "board", "labels", "memory", "cpus", "images", "alive"} per node.
- current: the plan the nodes hold now ({name: {"slots": [node, ...]}}), or {}.

How a slot finds a node:
1. Eligible nodes: alive, matching the service's constraints (architecture, board, labels), with
   the service's image for their architecture, and room for its requests (memory, CPU).
2. Stability first: a slot stays where it is while its node is eligible and has room, unless the
   spread rule now allows fewer replicas on that node (or label group) than it holds: then only
   the excess moves. Slots are kept before any new slot is placed, for every service.
3. A new slot goes, with `spread` (default), to the eligible node holding the fewest replicas of
   the service (and of its spread group), ties broken by the service's order of the nodes,
   clockwise on a hash ring from its own point: the same order on every machine, and removing
   a node moves only its own slots. With `pack`, to the first node in a fixed order (the node's
   `pack_order` label, then its name) that fits: as few nodes as the declarations allow, the
   rest left empty; `min_nodes` (default 1) caps a node at ceil(replicas / min_nodes) of them
   and keeps enough replicas for the other nodes it asks for.
4. When keeping a service's slots makes the plan fail, that service is placed afresh (then, if
   need be, every service): a declaration that fits is never refused for where it runs now.
A declaration that cannot be placed in full raises PlacementError naming the service and why;
there is never a partial plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import hashlib
import heapq
import itertools
import json
import math
import re

from ansible_collections.pico.cloud.plugins.module_utils._plan_document import version as plan_version
from ansible_collections.pico.cloud.plugins.module_utils._service_spec import (
    MAX_DECLARED_TAGS, NAME_RE, SPEC_TAG, SpecError, parse_spec)

MEMORY_RE = re.compile(r"^([0-9]+)([kmg]?)b?$", re.IGNORECASE)
UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
MAX_REPLICAS = 1000
# Up to this many powered-down boards that could help, plan_waking tries every combination.
EXACT_WAKE = 8

SERVICE_KEYS = {"name", "image", "replicas", "port", "resources", "constraints", "spread", "strategy",
                "update", "health", "env", "command", "tags", "network", "container_port", "min_nodes"}
RESOURCE_KEYS = {"memory", "cpu"}
CONSTRAINT_KEYS = {"arch", "board", "labels"}
UPDATE_DEFAULTS = {
    "batch_size": 1,            # nodes changed at a time (Nomad max_parallel, Swarm parallelism)
    "order": "stop-first",      # one port per node: the old instance is drained and stopped first
    "min_healthy_time": 5,      # seconds healthy in discovery before the next batch
    "healthy_deadline": 180,    # seconds for a new instance to become healthy, else roll back
    "canary": 0,                # slots updated first, alone, before the rest
    "auto_rollback": True,
    "drain_time": 3,            # seconds out of discovery before an old instance stops
}
DEFAULT_RESOURCES = {"memory": 32 * 1024 ** 2, "cpu": 0.1}


class PlacementError(ValueError):
    """A declaration that is wrong or cannot be placed; the message names the service and the fix."""

    def __init__(self, message, service=None):
        super(PlacementError, self).__init__(message)
        self.service = service  # the service that could not be placed, when one is to blame


# -- declarations --------------------------------------------------------------------------------

def parse_memory(value, where):
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = MEMORY_RE.match(str(value).strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise PlacementError("%s = %r: give bytes or a size such as 64m" % (where, value))
    return int(match.group(1)) * UNITS[match.group(2).lower()]


def _number(value, where, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise PlacementError("%s = %r: must be a number" % (where, value))
    if value < low or (high is not None and value > high):
        raise PlacementError("%s = %r: must be between %s and %s" % (where, value, low, high if high is not None else "any"))
    return value


def _unknown(data, allowed, where):
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PlacementError("%s: unknown field%s %s (known: %s)" % (
            where, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(allowed))))


def _string_list(value, where):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PlacementError("%s = %r: give a name or a list of names" % (where, value))
    return sorted(set(value))


def validate_service(raw):
    """One declaration -> a normalised dict; PlacementError names the field and the value."""
    if not isinstance(raw, dict):
        raise PlacementError("a service declaration must be a mapping, got %r" % (raw,))
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PlacementError("service name %r: use lower-case letters, digits and '-' (a DNS label)" % (name,))
    where = "service %s" % name
    _unknown(raw, SERVICE_KEYS, where)
    image = raw.get("image")
    if isinstance(image, dict):
        if not image or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in image.items()):
            raise PlacementError("%s: image = %r: a name, or a mapping of architecture to name" % (where, image))
    elif not isinstance(image, str) or not image:
        raise PlacementError("%s: image is required (an image name with its tag, as the nodes load it)" % where)
    replicas = raw.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise PlacementError("%s: replicas = %r: a whole number from 0 to %d" % (where, replicas, MAX_REPLICAS))
    resources = raw.get("resources") or {}
    if not isinstance(resources, dict):
        raise PlacementError("%s: resources = %r: a mapping with memory and cpu" % (where, resources))
    _unknown(resources, RESOURCE_KEYS, where + ": resources")
    memory = parse_memory(resources.get("memory", DEFAULT_RESOURCES["memory"]), where + ": resources.memory")
    cpu = float(_number(resources.get("cpu", DEFAULT_RESOURCES["cpu"]), where + ": resources.cpu", 0.001, 64))
    constraints = raw.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise PlacementError("%s: constraints = %r: a mapping of arch, board and labels" % (where, constraints))
    _unknown(constraints, CONSTRAINT_KEYS, where + ": constraints")
    labels = constraints.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise PlacementError("%s: constraints.labels = %r: a mapping of label to value" % (where, labels))
    spread = raw.get("spread", "node")
    if not isinstance(spread, str) or not (spread == "node" or re.match(r"^label:[A-Za-z0-9_.-]+$", spread)):
        raise PlacementError("%s: spread = %r: 'node', or 'label:<name>' to spread over a node label such as a site"
                             % (where, spread))
    strategy = raw.get("strategy", "spread")
    if strategy not in ("spread", "pack"):
        raise PlacementError("%s: strategy = %r: 'spread' (default) or 'pack' (fewest nodes)" % (where, strategy))
    update = dict(UPDATE_DEFAULTS)
    given = raw.get("update") or {}
    if not isinstance(given, dict):
        raise PlacementError("%s: update = %r: a mapping (batch_size, order, min_healthy_time, ...)" % (where, given))
    _unknown(given, set(UPDATE_DEFAULTS), where + ": update")
    update.update(given)
    update["batch_size"] = int(_number(update["batch_size"], where + ": update.batch_size", 1))
    update["canary"] = int(_number(update["canary"], where + ": update.canary", 0, max(replicas, 0)))
    for key in ("min_healthy_time", "healthy_deadline", "drain_time"):
        update[key] = float(_number(update[key], where + ": update." + key, 0, 86400))
    if update["order"] == "start-first":
        raise PlacementError("%s: update.order = 'start-first' cannot be kept on one node: a node's old and new "
                             "instance would need the same port. Use stop-first (the default): the node's old "
                             "instance leaves discovery first and the other nodes serve meanwhile; replicas that "
                             "move between nodes always start before the old ones stop." % where)
    if update["order"] != "stop-first":
        raise PlacementError("%s: update.order = %r: 'stop-first'" % (where, update["order"]))
    if not isinstance(update["auto_rollback"], bool):
        raise PlacementError("%s: update.auto_rollback = %r: true or false" % (where, update["auto_rollback"]))
    min_nodes = raw.get("min_nodes", 1)
    if isinstance(min_nodes, bool) or not isinstance(min_nodes, int) or min_nodes < 1:
        raise PlacementError("%s: min_nodes = %r: a whole number from 1 (the fewest nodes its replicas use)" % (where, min_nodes))
    if replicas and min_nodes > replicas:
        raise PlacementError("%s: min_nodes = %d but replicas = %d: a node holds at least one replica, so raise "
                             "replicas to %d or lower min_nodes" % (where, min_nodes, replicas, min_nodes))
    port = raw.get("port")
    if port is not None:
        _number(port, where + ": port", 1, 65535)
    # The planner adds its spec tag to these; what else the agent checks in a service file, an
    # agent checks before a rollout drains anything (deploy role, check-plan).
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PlacementError("%s: tags = %r: a list of strings, published with the service in discovery" % (where, tags))
    if len(tags) > MAX_DECLARED_TAGS:
        raise PlacementError("%s: tags: at most %d (the planner adds its spec tag, and an agent that takes a replica "
                             "over adds one more)" % (where, MAX_DECLARED_TAGS))
    service = dict(raw)
    service.update({
        "replicas": replicas, "resources": {"memory": memory, "cpu": cpu},
        "constraints": {"arch": _string_list(constraints["arch"], where + ": constraints.arch") if "arch" in constraints else [],
                        "board": _string_list(constraints["board"], where + ": constraints.board") if "board" in constraints else [],
                        "labels": dict(labels)},
        "spread": spread, "strategy": strategy, "update": update, "min_nodes": min_nodes,
    })
    _check_as_agent(service, where)
    return service


def _check_as_agent(service, where):
    """The agents' own rule (module_utils/_service_spec.py) over the service file each would be
    given, one per image: what an agent would refuse is refused here, before anything changes."""
    images = service["image"] if isinstance(service["image"], dict) else {"": service["image"]}
    for arch in sorted(images):
        try:
            parse_spec(agent_spec(service, arch, 1), expected_name=service["name"])
        except SpecError as err:
            raise PlacementError("%s: %s (the agents refuse such a service file)" % (where, err))


def validate_services(raw_list):
    if not isinstance(raw_list, list):
        raise PlacementError("the service declarations must be a list, got %r" % (type(raw_list).__name__,))
    services = [validate_service(raw) for raw in raw_list]
    names = [s["name"] for s in services]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise PlacementError("services declared twice: %s" % ", ".join(duplicates))
    return services


def spec_digest(service):
    """What the agents run, without the placement-only fields: a change means new containers."""
    shaped = dict((k, v) for k, v in service.items()
                  if k not in ("replicas", "constraints", "spread", "strategy", "update", "min_nodes"))
    return hashlib.sha256(json.dumps(shaped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def image_for(service, arch):
    image = service["image"]
    return image.get(arch) if isinstance(image, dict) else image


# -- placement -----------------------------------------------------------------------------------

def _group(service, node):
    if service["spread"] == "node":
        return node["name"]
    return node["labels"].get(service["spread"][len("label:"):], "")


def _why_not(service, node, capacity=True):
    """Why a node can never take this service (room taken by others aside), or None. Without
    capacity, the node's size against the requests is not looked at either."""
    c = service["constraints"]
    if not node.get("alive", True):
        return "not alive"
    if node.get("only") is not None and service["name"] not in node["only"]:
        return "powered up for other services"
    if c["arch"] and node["arch"] not in c["arch"]:
        return "architecture %s not in %s" % (node["arch"], ", ".join(c["arch"]))
    if c["board"] and node["board"] not in c["board"]:
        return "board %s not in %s" % (node["board"], ", ".join(c["board"]))
    for key, value in sorted(c["labels"].items()):
        if node["labels"].get(key) != value:
            return "no label %s=%s" % (key, value)
    image = image_for(service, node["arch"])
    if not image:
        return "no image declared for %s" % node["arch"]
    if node.get("images") is not None and image not in node["images"]:
        return "image %s is not among its images (pico_container_runtime_images)" % image
    if capacity and (service["resources"]["memory"] > node["memory"] or service["resources"]["cpu"] > node["cpus"]):
        return "requests %s memory / %g CPU, it has %s / %g" % (
            _size(service["resources"]["memory"]), service["resources"]["cpu"], _size(node["memory"]), node["cpus"])
    return None


def _size(value):
    return "%d MiB" % (value // 1024 ** 2) if value >= 1024 ** 2 else "%d bytes" % value


def _unplaceable(service, nodes, placed, wanted):
    reasons = {}
    for node in nodes:
        reasons.setdefault(_why_not(service, node) or "no room left", []).append(node["name"])
    detail = "; ".join("%s: %s" % (why, ", ".join(sorted(names)[:6]) + (" and %d more" % (len(names) - 6) if len(names) > 6 else ""))
                       for why, names in sorted(reasons.items()))
    fixes = []
    if any("image" in why for why in reasons):
        fixes.append("load the image on those nodes (pico_container_runtime_images, site.yml)")
    if any(why.startswith(("requests", "no room")) for why in reasons):
        fixes.append("lower its requests or replicas")
    if any(why.startswith(("architecture", "board", "no label")) for why in reasons):
        fixes.append("relax its constraints")
    fixes.append("add nodes that match")
    return PlacementError("service %s: %d of %d replicas fit (%s). Nothing was changed: %s." % (
        service["name"], placed, wanted, detail or "no nodes", ", or ".join(fixes)), service=service["name"])


def plan(services, nodes, current=None, strict=False):
    """The placement of every slot of every service; PlacementError if any cannot be placed.

    Slots in `current` stay where they are while that still fits. When keeping a service's slots
    is what makes the plan fail (its min_nodes, fragmented room), that service is placed afresh
    and the others keep theirs; only if that fails too is the whole plan fresh. A declaration
    that fits is never refused because of where its replicas run now. With strict, no fall-back:
    PlacementError when the slots held cannot all stay (plan_waking tries that first)."""
    current = dict(current or {})
    if strict:
        return _plan(services, nodes, current)
    while True:
        try:
            return _plan(services, nodes, current)
        except PlacementError as err:
            if not current:
                raise
            # The failing service's own slots first; then every service's.
            if err.service in current:
                current.pop(err.service)
            else:
                current = {}


def _plan(services, nodes, current):
    services = sorted(services, key=lambda s: (-s["resources"]["memory"], -s["resources"]["cpu"], s["name"]))
    nodes = sorted(nodes, key=lambda n: n["name"])
    by_name = dict((n["name"], n) for n in nodes)
    free = dict((n["name"], [n["memory"], n["cpus"]]) for n in nodes)
    current = current or {}
    # Services asking the same of a node share one pass over the nodes: a full one per set of
    # constraints and image (asks), then, only where a service needs the list, the sizes against
    # its requests. Cost grows with the distinct asks, not with services x nodes.
    asks_of, by_asks, biggest, by_profile = {}, {}, {}, {}
    # Boards powered up for some services only (plan_waking) tell services with one profile apart.
    restricted = any(n.get("only") is not None for n in nodes)
    for service in services:
        asks = _profile(service, requests=False) + (service["name"] if restricted else "")
        if asks not in by_asks:
            base = [n for n in nodes if _why_not(service, n, capacity=False) is None]
            by_asks[asks] = (base, set(n["name"] for n in base))
            biggest[asks] = (max([n["memory"] for n in base] or [0]), max([n["cpus"] for n in base] or [0]))
        asks_of[service["name"]] = asks
        memory, cpu = service["resources"]["memory"], service["resources"]["cpu"]
        if service["replicas"] and (memory > biggest[asks][0] or cpu > biggest[asks][1]):
            raise _unplaceable(service, nodes, 0, service["replicas"])

    def eligible(service):
        """The nodes that can take this service (alive, constraints, image, size)."""
        asks, memory, cpu = asks_of[service["name"]], service["resources"]["memory"], service["resources"]["cpu"]
        if (asks, memory, cpu) not in by_profile:
            by_profile[asks, memory, cpu] = [n for n in by_asks[asks][0] if memory <= n["memory"] and cpu <= n["cpus"]]
        return by_profile[asks, memory, cpu]

    encoded = dict((n["name"], n["name"].encode()) for n in nodes)
    rings, pack_orders = {}, {}  # hash rings per asks; pack order per eligible list

    slots = dict((s["name"], [None] * s["replicas"]) for s in services)
    counts = dict((s["name"], {}) for s in services)
    group_counts = dict((s["name"], {}) for s in services)

    def take(service, index, node_name):
        memory, cpu = service["resources"]["memory"], service["resources"]["cpu"]
        free[node_name][0] -= memory
        free[node_name][1] -= cpu
        slots[service["name"]][index] = node_name
        counts[service["name"]][node_name] = counts[service["name"]].get(node_name, 0) + 1
        group = _group(service, by_name[node_name])
        group_counts[service["name"]][group] = group_counts[service["name"]].get(group, 0) + 1

    def fits(service, node_name):
        return free[node_name][0] >= service["resources"]["memory"] and free[node_name][1] >= service["resources"]["cpu"] - 1e-9

    # 1. Keep what stays valid, every service before any new slot.
    for service in services:
        previous = (current.get(service["name"]) or {}).get("slots") or []
        if not previous:
            continue
        names = by_asks[asks_of[service["name"]]][1]
        memory, cpu = service["resources"]["memory"], service["resources"]["cpu"]
        limit = None
        for index, node_name in enumerate(previous[:service["replicas"]]):
            node = by_name.get(node_name)
            if node_name not in names or memory > node["memory"] or cpu > node["cpus"] or not fits(service, node_name):
                continue
            if service["strategy"] == "spread":
                if limit is None:
                    limit = _spread_limit(service, by_asks[asks_of[service["name"]]][0], fits)
                group = _group(service, node)
                if group_counts[service["name"]].get(group, 0) >= limit:
                    continue  # spread now allows fewer here: this one moves
            elif counts[service["name"]].get(node_name, 0) >= _pack_limit(service):
                continue  # min_nodes now asks for more nodes: this one moves
            take(service, index, node_name)

    # 2. Place the missing slots.
    for service in services:
        missing = [i for i, n in enumerate(slots[service["name"]]) if n is None]
        if not missing:
            continue
        if service["strategy"] == "pack":
            listed = eligible(service)
            if id(listed) not in pack_orders:
                pack_orders[id(listed)] = sorted(listed, key=lambda n: (_pack_order(n), n["name"]))
            _pack(service, pack_orders[id(listed)], missing, fits, take, counts[service["name"]])
        else:
            # Nodes are ranked by hash rings from the service's own point (one ring per label
            # value for label spread): a service with nothing placed takes the first nodes that
            # fit (log n per replica, where ranking every node costs n); one with replicas placed
            # ranks every node the same way, so both make the same choices.
            key = (asks_of[service["name"]], service["spread"])
            if key not in rings:
                grouped = {}
                for node in by_asks[key[0]][0]:
                    grouped.setdefault("" if service["spread"] == "node" else _group(service, node), []).append(node)
                rings[key] = dict((group, _ring(members, encoded)) for group, members in grouped.items())
            if counts[service["name"]]:
                rank = {}
                for ring in rings[key].values():
                    rank.update(_ring_distances(service, ring))
                _spread(service, eligible(service), missing, fits, take, counts, group_counts, by_name, rank.get)
            elif service["spread"] == "node":
                _spread_ring(service, rings[key][""], missing, fits, take)
            else:
                _spread_groups(service, rings[key], missing, fits, take)
        placed = sum(1 for n in slots[service["name"]] if n is not None)
        if placed < service["replicas"]:
            raise _unplaceable(service, nodes, placed, service["replicas"])
    for service in services:
        used = len(set(slots[service["name"]]))
        if used < min(service["min_nodes"], service["replicas"]):
            raise PlacementError("service %s: its replicas fit on %d node%s, and min_nodes asks for %d. Nothing was "
                                 "changed: add eligible nodes with room, or lower min_nodes." % (
                                     service["name"], used, "" if used == 1 else "s", service["min_nodes"]),
                                 service=service["name"])

    result = {"services": {}, "nodes": {}}
    for service in sorted(services, key=lambda s: s["name"]):
        result["services"][service["name"]] = {"digest": spec_digest(service), "slots": slots[service["name"]]}
    held = dict((n["name"], {}) for n in nodes)  # each node's replicas, by service, in name order
    for service_name in sorted(counts):
        for node_name, count in counts[service_name].items():
            held[node_name][service_name] = count
    for node in nodes:
        result["nodes"][node["name"]] = {
            "arch": node["arch"], "memory": node["memory"], "cpus": node["cpus"],
            "memory_requested": node["memory"] - free[node["name"]][0],
            "cpu_requested": round(node["cpus"] - free[node["name"]][1], 6),
            "replicas": held[node["name"]],
        }
    # What consolidation leaves empty: live nodes with no replica, candidates to power down.
    result["empty"] = [n["name"] for n in nodes if n.get("alive", True) and not result["nodes"][n["name"]]["replicas"]]
    result["version"] = plan_version(result["services"])
    return result


def consolidate(services, nodes, current=None):
    """plan() on as few nodes as the declarations allow, for powering the rest down. A fresh plan
    (nothing kept) finds the fewest nodes; the slots then stay where they are if that node is
    among those, so only the replicas on nodes to be emptied move. If keeping them would need
    more nodes than the fresh plan (capacity is fragmented), the fresh plan is the answer."""
    fresh = plan(services, nodes)
    keep = set(name for name, node in fresh["nodes"].items() if node["replicas"])
    try:
        kept = plan(services, [n if n["name"] in keep else dict(n, alive=False) for n in nodes], current)
    except PlacementError:
        return fresh
    # By name, as plan() lists them: the same answer whatever order the nodes come in.
    kept["empty"] = sorted(n["name"] for n in nodes if n.get("alive", True) and not kept["nodes"][n["name"]]["replicas"])
    return kept if len(kept["empty"]) >= len(fresh["empty"]) else fresh


def plan_waking(services, nodes, current=None, standby=()):
    """plan(), and if the live nodes have too little room, the fewest powered-down nodes (standby)
    that make it fit: (plan, [names to power up]). Waking boards comes before moving replicas
    that run: the fall-back of plan() is tried only when no number of boards keeps them where
    they are.

    Boards are woken for the services that need room (a replica not running on a live node now),
    and only those services are placed on them: a service running well is never moved onto a
    board woken for another. Only boards that such a service could use are candidates; among
    up to EXACT_WAKE of them every combination is tried, fewest first (pack order breaks ties),
    beyond that the first ones in pack order. Raises the live nodes' PlacementError when even all
    of them would not do."""
    current = current or {}
    alive = set(n["name"] for n in nodes if n.get("alive", True))
    wanting = set(s["name"] for s in services if sum(
        1 for name in ((current.get(s["name"]) or {}).get("slots") or [])[:s["replicas"]] if name in alive) < s["replicas"])
    order = sorted(standby, key=lambda n: (_pack_order(n), n["name"]))
    attempts = []
    if wanting:
        useful = [n for n in order if any(_why_not(s, dict(n, alive=True)) is None for s in services if s["name"] in wanting)]
        attempts.append((useful, sorted(wanting)))
    attempts.append((order, None))  # room freed only by moving what runs: any service may use them
    error = None
    # What runs stays where it runs if waking boards allows that (strict); only if no number of
    # boards does are running replicas moved to make room (plan's fall-back), live boards first.
    for strict in (True, False):
        try:
            return plan(services, nodes, current, strict=strict), []
        except PlacementError as live_error:
            error = error or live_error
        for candidates, only in attempts:
            for count in range(1, len(candidates) + 1):
                if len(candidates) <= EXACT_WAKE:
                    choices = itertools.combinations(candidates, count)
                else:
                    choices = [candidates[:count]]
                for chosen in choices:
                    woken = [dict(n, alive=True, only=only) for n in chosen]
                    names = set(n["name"] for n in woken)
                    try:
                        found = plan(services, [n for n in nodes if n["name"] not in names] + woken, current, strict=strict)
                    except PlacementError:
                        continue
                    return found, [n["name"] for n in woken if found["nodes"][n["name"]]["replicas"]]
    if order:
        raise PlacementError("%s Powering up every powered-down node (%s) would not make it fit either." % (
            error, ", ".join(n["name"] for n in order)), service=error.service)
    raise error


def _spread_limit(service, candidates, fits):
    """Most replicas one node (or label group) may keep under spread: replicas over the groups
    that have room for one now, rounded up (candidates: the nodes it may use, room aside). Groups
    that are full do not count: a replica moved for them would come back where it was."""
    groups = set()
    for node in candidates:
        if fits(service, node["name"]):
            groups.add(_group(service, node))
            if len(groups) >= service["replicas"]:
                return 1  # one each, whatever the rest
    return -(-service["replicas"] // (len(groups) or 1))


RING_POINTS = 16  # points per node on the hash ring: evens out how much of it each node owns
RING_SPAN = 1 << 48  # _point's range


def _point(data):
    """A place on the ring. SHA-1, not CRC-32: CRC is linear, so names that differ in a digit
    (svc-0001, svc-0002) land close together and crowd the same nodes."""
    return int(hashlib.sha1(data).hexdigest()[:12], 16)


def _ring(nodes, encoded):
    """(sorted points, node name at each point): every node at RING_POINTS places."""
    points = sorted((_point(encoded[n["name"]] + b"\0" + bytes([point])), n["name"])
                    for n in nodes for point in range(RING_POINTS))
    return [p for p, dummy in points], [name for dummy, name in points]


def _ring_walk(service, ring, start=None):
    """(distance, node) for the ring's nodes clockwise from the service's own point, each once at
    its first point: the service's rank of them."""
    positions, names = ring
    point = _point(service["name"].encode()) if start is None else start
    first = bisect.bisect_left(positions, point)
    seen = set()
    for step in range(len(names)):
        index = (first + step) % len(names)
        if names[index] not in seen:
            seen.add(names[index])
            yield (positions[index] - point) % RING_SPAN, names[index]


def _ring_order(service, ring):
    return (node_name for dummy, node_name in _ring_walk(service, ring))


def _ring_distances(service, ring):
    return dict((node_name, distance) for distance, node_name in _ring_walk(service, ring))


def _spread_groups(service, rings, missing, fits, take):
    """Spread over a label with nothing placed yet, making _spread's choices with the rings' rank:
    the group with fewest replicas, then its node with fewest, then the nearest. Each group walks
    its own ring; a heap over the groups (few) picks the next, so a replica costs log n."""
    point = _point(service["name"].encode())
    heap = []  # (group's replicas, its walk's cycle, distance of its next node, group, walk state)
    for group, ring in rings.items():
        state = {"ring": ring, "point": point, "walk": _ring_walk(service, ring, point), "cycle": 0, "fitted": 0}
        found = _next_in_group(service, state, fits)
        if found:
            heapq.heappush(heap, (0, state["cycle"], found[0], group, found[1], state))
    missing = list(missing)
    while missing and heap:
        count, cycle, distance, group, node_name, state = heapq.heappop(heap)
        take(service, missing.pop(0), node_name)
        found = _next_in_group(service, state, fits)
        if found:
            heapq.heappush(heap, (count + 1, state["cycle"], found[0], group, found[1], state))


def _next_in_group(service, state, fits):
    """The next node of a group's walk that fits, starting a new cycle (each node once more) at
    the walk's end; None when no node of the group fits any more."""
    while True:
        for distance, node_name in state["walk"]:
            if fits(service, node_name):
                state["fitted"] += 1
                return distance, node_name
        if not state["fitted"]:
            return None
        state["walk"], state["cycle"], state["fitted"] = _ring_walk(service, state["ring"], state["point"]), state["cycle"] + 1, 0


def _spread_ring(service, ring, missing, fits, take):
    """Spread a service none of whose replicas is placed: in each round, the nodes in ring order
    from the service's point each take one replica if it fits, so no node holds two more than
    another, and the choice is the one _spread makes with the same rank."""
    missing = list(missing)
    while missing:
        placed = False
        for node_name in _ring_order(service, ring):
            if fits(service, node_name):
                take(service, missing.pop(0), node_name)
                placed = True
                if not missing:
                    return
        if not placed:
            return


def _spread(service, eligible, missing, fits, take, counts, group_counts, by_name, rank_of):
    """Fewest replicas of this service in the node's group, then on the node, then rank_of (its
    distance on the service's rings)."""
    name = service["name"]
    node_counts, groups = counts[name], group_counts[name]
    if service["spread"] == "node":
        heap = [(node_counts.get(n["name"], 0), node_counts.get(n["name"], 0), rank_of(n["name"]), n["name"]) for n in eligible]
    else:
        heap = [(groups.get(_group(service, n), 0), node_counts.get(n["name"], 0), rank_of(n["name"]), n["name"])
                for n in eligible]
    heapq.heapify(heap)
    for index in missing:
        while heap:
            group_count, count, rank, node_name = heapq.heappop(heap)
            group = _group(service, by_name[node_name])
            actual = (group_counts[name].get(group, 0), counts[name].get(node_name, 0))
            if actual != (group_count, count):  # a stale entry: the group filled meanwhile
                heapq.heappush(heap, actual + (rank, node_name))
                continue
            if not fits(service, node_name):
                continue  # full for this service's requests, now and for its later slots
            take(service, index, node_name)
            heapq.heappush(heap, (group_counts[name][group], counts[name][node_name], rank, node_name))
            break


def _pack(service, order, missing, fits, take, counts):
    """First fit in pack order (the node's pack_order label, numeric, then its name); at most
    _pack_limit replicas of the service on one node, and never so many on the nodes already used
    that the replicas left could not reach min_nodes nodes."""
    limit = _pack_limit(service)
    wanted = min(service["min_nodes"], service["replicas"])
    used = sum(1 for count in counts.values() if count)
    position, left = 0, len(missing)
    for index in missing:
        while position < len(order):
            name = order[position]["name"]
            held = counts.get(name, 0)
            # Nodes min_nodes still needs once this replica is here, one replica each at least.
            needed = wanted - used - (0 if held else 1)
            if fits(service, name) and held < limit and left - 1 >= needed:
                break
            position += 1
        if position == len(order):
            return
        name = order[position]["name"]
        used += 0 if counts.get(name, 0) else 1
        take(service, index, name)
        left -= 1


def _pack_limit(service):
    """Most replicas of a packed service on one node: min_nodes nodes share them."""
    return -(-service["replicas"] // service["min_nodes"]) if service["replicas"] else 0


def _pack_order(node):
    try:
        return int(node["labels"].get("pack_order", 1000000))
    except (TypeError, ValueError):
        return 1000000


def moves(before, after):
    """[(service, slot, from, to)] between two plans: what a rollout has to change."""
    found = []
    for name in sorted(set(before.get("services", {})) | set(after.get("services", {}))):
        old = (before.get("services", {}).get(name) or {}).get("slots") or []
        new = (after.get("services", {}).get(name) or {}).get("slots") or []
        for index in range(max(len(old), len(new))):
            a = old[index] if index < len(old) else None
            b = new[index] if index < len(new) else None
            if a != b:
                found.append((name, index, a, b))
    return found


# -- what the nodes run, and the order a rollout changes it -----------------------------------------

AGENT_KEYS = ("command", "env", "port", "network", "container_port", "health")


def agent_spec(service, arch, replicas):
    """The service file an agent on `arch` runs, tagged with the spec so discovery tells versions apart."""
    spec = {"name": service["name"], "image": image_for(service, arch), "replicas": replicas}
    spec.update((key, service[key]) for key in AGENT_KEYS if service.get(key) is not None)
    spec["tags"] = [t for t in service.get("tags") or [] if not t.startswith(SPEC_TAG)] + [SPEC_TAG + spec_digest(service)]
    return spec


def node_specs(service, slots, arch_of):
    """{node: the service file its agent runs} for one service's slots: one file per node, with
    as many replicas as the node holds slots."""
    counts = {}
    for node_name in slots:
        counts[node_name] = counts.get(node_name, 0) + 1
    return dict((node_name, agent_spec(service, arch_of[node_name], count)) for node_name, count in sorted(counts.items()))


def failover_entries(services, nodes):
    """{service name: what every agent needs to fail its slots over with no controller}: the nodes
    that could take one (eligible, room aside, whether up now or not), its requests, and one
    replica's service file per architecture among them."""
    as_if_up = [dict(n, alive=True) for n in nodes]
    by_profile = {}
    entries = {}
    for service in services:
        profile = _profile(service)
        if profile not in by_profile:  # as in plan(): one pass over the nodes per profile
            by_profile[profile] = [n for n in as_if_up if _why_not(service, n) is None]
        entries[service["name"]] = _failover_entry(service, by_profile[profile])
    return entries


def _profile(service, requests=True):
    """What a service asks of a node: services with the same profile fit the same nodes."""
    return json.dumps([service["constraints"], service["image"]] + ([service["resources"]] if requests else []),
                      sort_keys=True)


def _failover_entry(service, candidates):
    return {
        "candidates": sorted(n["name"] for n in candidates),
        "requests": dict(service["resources"]),
        "specs": dict((arch, agent_spec(service, arch, 1)) for arch in sorted(set(n["arch"] for n in candidates))),
    }


def spec_tag(spec):
    return next((t for t in (spec or {}).get("tags") or [] if t.startswith(SPEC_TAG)), None)


def rollout_steps(service, old_specs, new_specs):
    """Batches of per-node steps that keep the service answering, for deploy.yml: first every
    node that gains instances, in one batch (start, or scale up: nothing running is touched),
    then the nodes whose instances change (replace: drain, stop, start the new spec), then the
    nodes that lose instances (drain, then stop all or some). The first `canary` replacements go
    alone, before the rest; the others go `batch_size` nodes at a time. Each step:
    {node, action, old, new} with old/new the node's service files."""
    update = service["update"]
    gain, replace, lose = [], [], []
    for node_name in sorted(set(old_specs) | set(new_specs)):
        old, new = old_specs.get(node_name), new_specs.get(node_name)
        if old == new:
            continue
        step = {"node": node_name, "old": old, "new": new}
        if old is None:
            gain.append(dict(step, action="start"))
        elif new is None:
            lose.append(dict(step, action="stop"))
        elif spec_tag(old) == spec_tag(new) and _same_but_count(old, new):
            if new["replicas"] > old["replicas"]:
                gain.append(dict(step, action="scale-up"))
            else:  # only the replicas that go are drained; the others keep serving
                lose.append(dict(step, action="scale-down", drain=list(range(new["replicas"], old["replicas"]))))
        else:
            replace.append(dict(step, action="replace"))
    # New instances replace nothing: they start together, first, so moves have their target up.
    batches = [{"canary": False, "steps": gain}] if gain else []
    for step in replace[:update["canary"]]:
        batches.append({"canary": True, "steps": [step]})
    rest = replace[update["canary"]:] + lose
    size = update["batch_size"]
    for start in range(0, len(rest), size):
        batches.append({"canary": False, "steps": rest[start:start + size]})
    return batches


def _same_but_count(old, new):
    a, b = dict(old), dict(new)
    a.pop("replicas", None)
    b.pop("replicas", None)
    return a == b
