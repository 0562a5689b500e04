# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
"""Action plugin for pico.cloud.service_plan: runs the placement planner on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.pico.cloud.plugins.module_utils._placement import (
    UPDATE_DEFAULTS, PlacementError, consolidate, failover_entries, moves, node_specs, parse_memory,
    plan_waking, rollout_steps, validate_services)

ARGS = {"services", "nodes", "current", "node_services", "only", "drain", "undrain", "cluster_id", "consolidate",
        "standby"}


def _node(raw):
    if isinstance(raw, str) and raw:  # a member that is down: it takes nothing
        return {"name": raw, "arch": "", "board": "", "labels": {}, "memory": 0, "cpus": 0.0, "images": None,
                "alive": False}
    if not isinstance(raw, dict) or not raw.get("name"):
        raise PlacementError("a node entry needs at least a name, got %r" % (raw,))
    where = "node %s" % raw["name"]
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict):
        raise PlacementError("%s: labels = %r: a mapping of label to value (pico_node_labels)" % (where, labels))
    images = raw.get("images")
    return {"name": raw["name"], "arch": raw.get("arch") or "", "board": raw.get("board") or "",
            "labels": dict((str(k), str(v)) for k, v in labels.items()),
            "memory": parse_memory(raw.get("memory", 0) or "0", where + ": memory") if raw.get("memory") else 0,
            "cpus": float(raw.get("cpus") or 0), "images": list(images) if images is not None else None,
            "alive": str(raw.get("alive", True)).lower() in ("true", "1", "yes")}


def _slots_text(result):
    lines = []
    for name, entry in sorted(result.get("services", {}).items()):
        lines.append("%s: %s" % (name, ", ".join(n or "-" for n in entry["slots"]) or "(no replicas)"))
    return "\n".join(lines) + "\n" if lines else ""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGS)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        unknown = sorted(set(args) - ARGS)
        if unknown:
            raise AnsibleActionFail("unknown argument%s %s (known: %s)" % (
                "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(ARGS))))
        current = args.get("current") or {}
        node_services = args.get("node_services") or {}
        only = args.get("only") or None
        try:
            services = validate_services(args.get("services") or [])
            nodes = [_node(n) for n in args.get("nodes") or []]
            # Drained nodes stay drained, plan after plan, until undrained.
            drained = (set(current.get("drained") or []) | set(_names(args.get("drain")))) - set(_names(args.get("undrain")))
            unknown = sorted(drained - set(n["name"] for n in nodes))
            if unknown and set(_names(args.get("drain"))) & set(unknown):
                raise PlacementError("cannot drain %s: not a node of this cluster" % ", ".join(unknown))
            for node in nodes:
                if node["name"] in drained:
                    node["alive"] = False
            declared = dict((s["name"], s) for s in services)
            if only and only not in declared and only not in current.get("services", {}):
                raise PlacementError("service %s is neither declared nor placed: declared are %s" % (
                    only, ", ".join(sorted(declared)) or "none"))
            # Boards powered down on purpose (energy.yml) keep what they were, to be woken for room.
            answering = set(n["name"] for n in nodes if n["alive"])
            powered_off = dict((name, entry) for name, entry in (current.get("powered_off") or {}).items()
                               if name not in answering and isinstance(entry, dict))
            # A powered-down board is what it was when it went down, only not alive: the failover
            # candidates and the plan's nodes stay the same while it sleeps.
            nodes = [dict(_node(dict(powered_off[n["name"]], name=n["name"])), alive=False) if n["name"] in powered_off else n
                     for n in nodes]
            standby = [dict(_node(dict(powered_off[name], name=name)), alive=True) for name in sorted(powered_off)
                       if name in set(_names(args.get("standby"))) and name not in drained]
            if args.get("consolidate"):
                new, wake = consolidate(services, nodes, current.get("services")), []
            else:
                new, wake = plan_waking(services, nodes, current.get("services"), standby)
        except PlacementError as err:
            raise AnsibleActionFail(str(err))
        if wake:
            nodes = [n for n in nodes if n["name"] not in wake] + [n for n in standby if n["name"] in wake]
            for name in wake:
                powered_off.pop(name)
        if only:
            # Only that service changes; every other keeps the placement the nodes hold.
            kept = dict((n, e) for n, e in (current.get("services") or {}).items() if n != only)
            new["services"] = dict(kept, **dict((n, e) for n, e in new["services"].items() if n == only))
            services = [s for s in services if s["name"] == only]
        arch_of = dict((n["name"], n["arch"]) for n in nodes)
        files = dict((n["name"], {}) for n in nodes)
        rollouts = []
        failover = failover_entries(services, nodes)
        for service in services:
            slots = new["services"][service["name"]]["slots"]
            new["services"][service["name"]]["failover"] = failover[service["name"]]
            specs = node_specs(service, slots, arch_of)
            for node_name, spec in specs.items():
                files[node_name][service["name"]] = spec
            old = dict((node_name, held[service["name"]]) for node_name, held in node_services.items()
                       if isinstance(held, dict) and held.get(service["name"]))
            batches = rollout_steps(service, old, specs)
            if batches:
                rollouts.append({"service": service["name"], "policy": service["update"], "batches": batches})
        removed = sorted(n for n in (current.get("services") or {}) if n not in declared and (not only or n == only))
        for name in removed:
            new["services"].pop(name, None)
            old = dict((node_name, held[name]) for node_name, held in node_services.items()
                       if isinstance(held, dict) and held.get(name))
            batches = rollout_steps({"name": name, "update": UPDATE_DEFAULTS}, old, {})
            if batches:
                rollouts.append({"service": name, "policy": dict(UPDATE_DEFAULTS), "batches": batches, "removed": True})
        new["drained"] = sorted(drained)
        new["powered_off"] = powered_off
        if args.get("cluster_id"):
            new["cluster"] = args["cluster_id"]
        placement_changed = (new["services"] != current.get("services") or new["drained"] != sorted(current.get("drained") or [])
                             or powered_off != (current.get("powered_off") or {}))
        new["generation"] = int(current.get("generation") or 0) + (1 if placement_changed else 0)
        new["version"] = _version(new["services"])
        changed = placement_changed or bool(rollouts)
        result.update(changed=changed, plan=new, node_files=files, rollouts=rollouts, removed=removed, wake=wake,
                      moves=[list(m) for m in moves(current, new)])
        if self._task.diff:
            result["diff"] = {"before": _slots_text(current), "after": _slots_text(new),
                              "before_header": "placement held by the nodes", "after_header": "new placement"}
        return result


def _names(value):
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _version(services):
    return hashlib.sha256(json.dumps(services, sort_keys=True).encode()).hexdigest()[:16]
