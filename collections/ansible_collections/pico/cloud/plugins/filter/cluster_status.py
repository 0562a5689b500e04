# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: cluster_status
short_description: Services and nodes of the cluster, planned beside what discovery shows
version_added: "0.5.0"
description:
  - Puts the plan the nodes hold beside the healthy instances the agents publish, per service
    (desired and healthy replicas, version, which nodes, and which instances run for a failed
    node's slot; services pinned to nodes by the agent role, C(pico_agent_services), are listed
    too, marked pinned) and per node - its state (up, unreachable, failed or left in the gossip, powered
    down, with since when where known), memory and CPU requested against its capacity,
    architecture, board, power profile, and the replicas it holds, or held. Used by
    the playbook pico.cloud.status.
positional: nodes, instances, fleet, members
options:
  _input:
    description: The plan the nodes hold (from pico.cloud.service_plan), or an empty mapping.
    type: dict
    required: true
  nodes:
    description: Each node as the deploy role looks at it (name, arch, board, memory, cpus, power, services).
    type: list
    elements: dict
    required: true
  instances:
    description: Healthy instances in discovery, by service name (an agent's /v1/services/<name>).
    type: dict
    required: true
  fleet:
    description: >-
      The boards of the inventory as the run found them - the C(pico_fleet) fact (C(group),
      C(powered_down), C(reached)) with C(remaining), the boards still in the play, and C(boards),
      each board's C(pico_board), and C(pinned), the names of the services the inventory pins to
      each board (C(pico_agent_services)). Every board of the group then gets a row, those the
      run could not look at from what the plan, the gossip and the inventory know of them.
    type: dict
  members:
    description: The cluster's members as an agent lists them (C(/v1/members)), each with C(name), C(status) and C(since).
    type: list
    elements: dict
"""

EXAMPLES = r"""
status: "{{ plan | pico.cloud.cluster_status(nodes, instances) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(services), C(nodes) (lists of mappings, the nodes in natural order - native-2 before
    native-10) and C(text), a table for a terminal, where each service's nodes are written in the
    hostlist notation of Slurm and pdsh (C(native-[1-27]:1), one replica on each of 27 boards).
  type: dict
"""

import re
import time

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._placement import parse_memory
from ansible_collections.pico.cloud.plugins.module_utils._service_spec import FAILOVER_TAG, SPEC_TAG


_TRAILING_NUMBER = re.compile(r"^(.*?)(0|[1-9][0-9]*)$")


def _board_order(name):
    """native-2 before native-10: a board's trailing number sorts as a number (as `sort -V`)."""
    match = _TRAILING_NUMBER.match(name)
    return (match.group(1), int(match.group(2)), name) if match else (name, -1, name)


def _hostlist(counts):
    """Boards and how many each holds in the hostlist notation of Slurm and pdsh, so that a
    service on 30 boards fits a line: {native-1: 1, native-2: 1, native-3: 1, native-5: 1,
    pizero-1: 2} gives "native-[1-3,5]:1 pizero-1:2" (a zero-padded number's zeros stay in the
    prefix: n-01 and n-02 give n-0[1-2])."""
    groups = {}  # (prefix, count, numbered) -> trailing numbers, in the order of the boards
    for name in sorted(counts, key=_board_order):
        match = _TRAILING_NUMBER.match(name)
        key = (match.group(1), counts[name], True) if match else (name, counts[name], False)
        groups.setdefault(key, []).append(int(match.group(2)) if match else "")
    parts = []
    for (prefix, count, dummy), numbers in groups.items():
        if len(numbers) == 1:
            parts.append("%s%s:%d" % (prefix, numbers[0], count))
            continue
        ranges, start = [], 0
        for index in range(1, len(numbers) + 1):
            if index == len(numbers) or numbers[index] != numbers[index - 1] + 1:
                first, last = numbers[start], numbers[index - 1]
                ranges.append(str(first) if first == last else "%d-%d" % (first, last))
                start = index
        parts.append("%s[%s]:%d" % (prefix, ",".join(ranges), count))
    return " ".join(parts)


def _mib(value):
    return int(value) // (1024 * 1024)


def _when(epoch):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(epoch)))


def _state(name, fleet, gossip):
    """How a board is, as this run and the cluster's gossip see it, in a few words."""
    member = gossip.get(name) or {}
    status, since = member.get("status"), member.get("since")
    seen = ""
    if status and status != "alive":
        seen = ", %s in the gossip%s" % (status, " since " + _when(since) if since else "")
    if name in (fleet.get("powered_down") or []):
        recorded = ((fleet.get("_plan_off") or {}).get(name) or {}).get("since")
        when = recorded or (since if status == "left" else None)
        return "powered down" + (" since " + _when(when) if when else "")
    if name in (fleet.get("remaining") or []):
        return "up" + seen
    if status == "alive":
        seen = ", alive in the gossip"
    return "unreachable" + (seen or (", not in the gossip" if gossip else ""))


def _cluster_status(plan, nodes, instances, fleet=None, members=None):
    if not isinstance(plan, dict) or not isinstance(nodes, list) or not isinstance(instances, dict):
        raise AnsibleFilterError("cluster_status expects a plan (mapping), nodes (list) and instances (mapping)")
    if fleet is not None and not isinstance(fleet, dict):
        raise AnsibleFilterError("cluster_status: fleet must be the pico_fleet fact (a mapping)")
    if members is not None and not isinstance(members, list):
        raise AnsibleFilterError("cluster_status: members must be a list (an agent's /v1/members)")
    plan_services = plan.get("services") or {}
    drained = set(plan.get("drained") or [])
    # Service files a node holds outside the plan: pinned to it by the agent role
    # (pico_agent_services), which its agent runs as it runs the plan's.
    pinned = {}
    for node in nodes:
        for name, spec in sorted((node.get("services") or {}).items()):
            if name not in plan_services:
                replicas = spec.get("replicas", 1) if isinstance(spec, dict) else 1
                pinned.setdefault(name, {})[node["name"]] = replicas if isinstance(replicas, int) else 1
    # A board this run could not look at: as the inventory pins them to it.
    looked_at = set(node["name"] for node in nodes)
    for board, names in sorted(((fleet or {}).get("pinned") or {}).items()):
        if board not in looked_at:
            for name in names or []:
                if name not in plan_services:
                    pinned.setdefault(name, {})[board] = 1
    services = []
    for name in sorted(set(plan_services) | set(instances) | set(pinned)):
        entry = plan_services.get(name) or {}
        slots = entry.get("slots") or []
        if name in pinned:
            slots = [node for node, count in sorted(pinned[name].items()) for dummy in range(count)]
        healthy = instances.get(name) or []
        tag = SPEC_TAG + entry["digest"] if entry.get("digest") else None
        images = sorted(set(n["services"][name]["image"] for n in nodes
                            if name in (n.get("services") or {}) and n["services"][name].get("image")))
        planned = {}
        for node_name in slots:
            if node_name is not None:  # an empty slot: counted as desired, on no node
                planned[node_name] = planned.get(node_name, 0) + 1
        running = {}
        for instance in healthy:
            running[instance["node"]] = running.get(instance["node"], 0) + 1
        # Instances that agents run for a failed node's slot carry pico.failover:<owner>:<slot>.
        failed_over = []
        for instance in healthy:
            for item in instance.get("tags") or []:
                if item.startswith(FAILOVER_TAG):
                    owner, dummy, slot = item[len(FAILOVER_TAG):].rpartition(":")
                    failed_over.append({"node": instance["node"], "owner": owner, "slot": int(slot) if slot.isdigit() else slot})
        services.append({
            "name": name, "desired": len(slots), "healthy": len(healthy),
            "healthy_current_spec": sum(1 for i in healthy if tag and tag in (i.get("tags") or [])),
            "version": ", ".join(images) or "-", "planned": planned, "healthy_on": running,
            "failed_over": failed_over, "pinned": name in pinned,
        })
    gossip = dict((m.get("name"), m) for m in members or [] if isinstance(m, dict))
    fleet = dict(fleet or {}, _plan_off=plan.get("powered_off") or {})
    looked = dict((node["name"], node) for node in nodes)
    planned_nodes = plan.get("nodes") or {}
    names = sorted(set(looked) | set(fleet.get("group") or []), key=_board_order)
    rows = []
    for name in names:
        requested = planned_nodes.get(name) or {}
        node = looked.get(name)
        if node is None:  # not looked at in this run: what the plan knows of it
            known = dict(requested, **(fleet["_plan_off"].get(name) or {}))
            node = {"name": name, "arch": known.get("arch", ""), "board": (fleet.get("boards") or {}).get(name, ""),
                    "memory": known.get("memory"), "cpus": known.get("cpus", 0), "power": None}
        power = node.get("power") or {}
        memory = node.get("memory")
        rows.append({
            "name": name, "arch": node.get("arch", ""), "board": node.get("board", ""),
            "state": _state(name, fleet, gossip) if fleet.get("group") else "up",
            "power_profile": power.get("profile", "-") if isinstance(power, dict) else "-",
            "memory_requested_mib": _mib(requested.get("memory_requested", 0)),
            "memory_capacity_mib": _mib(memory if isinstance(memory, int) else parse_memory(memory, "memory")) if memory else 0,
            "cpu_requested": requested.get("cpu_requested", 0), "cpus": node.get("cpus", 0),
            "replicas": requested.get("replicas", {}), "drained": name in drained,
            "pinned": sorted(service for service, held_on in pinned.items() if name in held_on),
        })
    return {"services": services, "nodes": rows, "generation": plan.get("generation", 0),
            "plan_version": plan.get("version", "-"), "text": _text(services, rows, plan)}


def _table(header, rows):
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]
    return "\n".join(lines)


def _text(services, nodes, plan):
    service_rows = [[s["name"], "%d/%d" % (s["healthy"], s["desired"]), s["version"],
                     (_hostlist(s["planned"]) or "-")
                     + (" (pinned)" if s["pinned"] else ""),
                     " ".join("%s(for %s)" % (f["node"], f["owner"]) for f in s["failed_over"]) or "-"]
                    for s in services]
    node_rows = [[n["name"], n["state"], n["arch"] or "-", n["board"] or "-", n["power_profile"],
                  # A board never looked at and not in the plan has no known capacity: "-", not "0/0".
                  "%d/%d MiB" % (n["memory_requested_mib"], n["memory_capacity_mib"]) if n["memory_capacity_mib"] else "-",
                  "%g/%g" % (n["cpu_requested"], n["cpus"]) if n["cpus"] else "-",
                  " ".join(["%s:%d" % kv for kv in sorted(n["replicas"].items())] + ["%s(pinned)" % p for p in n["pinned"]])
                  + (" (drained)" if n["drained"] else "")]
                 for n in nodes]
    return "plan generation %s (%s)\n\n%s\n\n%s" % (
        plan.get("generation", 0), plan.get("version", "none yet"),
        _table(["SERVICE", "HEALTHY/DESIRED", "VERSION", "NODES", "FAILED OVER"], service_rows) if service_rows else "no services",
        _table(["NODE", "STATE", "ARCH", "BOARD", "POWER", "MEMORY", "CPU", "REPLICAS"], node_rows))


class FilterModule(object):
    def filters(self):
        return {"cluster_status": _cluster_status}
