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
    node's slot) and per node (memory and CPU requested
    against its capacity, architecture, board, power profile). Used by playbooks/status.yml.
positional: nodes, instances
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
"""

EXAMPLES = r"""
status: "{{ plan | pico.cloud.cluster_status(nodes, instances) }}"
"""

RETURN = r"""
_value:
  description: C(services), C(nodes) (lists of mappings) and C(text), a table for a terminal.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.pico.cloud.plugins.module_utils._placement import FAILOVER_TAG, SPEC_TAG, parse_memory


def _mib(value):
    return int(value) // (1024 * 1024)


def _cluster_status(plan, nodes, instances):
    if not isinstance(plan, dict) or not isinstance(nodes, list) or not isinstance(instances, dict):
        raise AnsibleFilterError("cluster_status expects a plan (mapping), nodes (list) and instances (mapping)")
    plan_services = plan.get("services") or {}
    drained = set(plan.get("drained") or [])
    services = []
    for name in sorted(set(plan_services) | set(instances)):
        entry = plan_services.get(name) or {}
        slots = entry.get("slots") or []
        healthy = instances.get(name) or []
        tag = SPEC_TAG + entry["digest"] if entry.get("digest") else None
        images = sorted(set(n["services"][name]["image"] for n in nodes
                            if name in (n.get("services") or {}) and n["services"][name].get("image")))
        planned = {}
        for node_name in slots:
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
            "failed_over": failed_over,
        })
    rows = []
    for node in sorted(nodes, key=lambda n: n["name"]):
        requested = (plan.get("nodes") or {}).get(node["name"]) or {}
        power = node.get("power") or {}
        rows.append({
            "name": node["name"], "arch": node.get("arch", ""), "board": node.get("board", ""),
            "power_profile": power.get("profile", "-") if isinstance(power, dict) else "-",
            "memory_requested_mib": _mib(requested.get("memory_requested", 0)),
            "memory_capacity_mib": _mib(parse_memory(node["memory"], "memory")) if node.get("memory") else 0,
            "cpu_requested": requested.get("cpu_requested", 0), "cpus": node.get("cpus", 0),
            "replicas": requested.get("replicas", {}), "drained": node["name"] in drained,
        })
    return {"services": services, "nodes": rows, "generation": plan.get("generation", 0),
            "plan_version": plan.get("version", "-"), "text": _text(services, rows, plan)}


def _table(header, rows):
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]
    return "\n".join(lines)


def _text(services, nodes, plan):
    service_rows = [[s["name"], "%d/%d" % (s["healthy"], s["desired"]), s["version"],
                     " ".join("%s:%d" % (n, c) for n, c in sorted(s["planned"].items())) or "-",
                     " ".join("%s(for %s)" % (f["node"], f["owner"]) for f in s["failed_over"]) or "-"]
                    for s in services]
    node_rows = [[n["name"], n["arch"], n["board"], n["power_profile"],
                  "%d/%d MiB" % (n["memory_requested_mib"], n["memory_capacity_mib"]),
                  "%g/%g" % (n["cpu_requested"], n["cpus"]),
                  " ".join("%s:%d" % kv for kv in sorted(n["replicas"].items())) + (" (drained)" if n["drained"] else "")]
                 for n in nodes]
    return "plan generation %s (%s)\n\n%s\n\n%s" % (
        plan.get("generation", 0), plan.get("version", "none yet"),
        _table(["SERVICE", "HEALTHY/DESIRED", "VERSION", "NODES", "FAILED OVER"], service_rows) if service_rows else "no services",
        _table(["NODE", "ARCH", "BOARD", "POWER", "MEMORY", "CPU", "REPLICAS"], node_rows))


class FilterModule(object):
    def filters(self):
        return {"cluster_status": _cluster_status}
