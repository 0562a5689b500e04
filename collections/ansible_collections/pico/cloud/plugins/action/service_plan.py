# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
"""Action plugin for pico.cloud.service_plan: runs the placement planner on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import (
    PlanDocumentError, check_held, document, newest)
from ansible_collections.pico.cloud.plugins.module_utils._placement import (
    UPDATE_DEFAULTS, PlacementError, consolidate, failover_entries, moves, node_specs, parse_memory,
    plan_waking, rollout_steps, validate_services)

ARGS = {"services", "nodes", "current", "held", "plan_file", "node_services", "only", "drain", "undrain", "cluster_id",
        "consolidate", "standby", "agent_check"}


def _node(raw):
    if isinstance(raw, str) and raw:  # a member that is down: it takes nothing
        return {"name": raw, "arch": "", "board": "", "labels": {}, "memory": 0, "cpus": 0.0, "images": None,
                "alive": False}
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise PlacementError("a node entry needs at least a name, got %r" % (raw,))
    where = "node %s" % raw["name"]
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict):
        raise PlacementError("%s: labels = %r: a mapping of label to value (pico_node_labels)" % (where, labels))
    try:
        cpus = float(raw.get("cpus") or 0)
    except (TypeError, ValueError):
        cpus = -1.0
    if not 0 <= cpus <= 1024:  # NaN too
        raise PlacementError("%s: cpus = %r: a number of cores such as 1 or 0.5 (pico_node_capacity.cpus)"
                             % (where, raw.get("cpus")))
    images = raw.get("images")
    if images is not None and (not isinstance(images, list) or not all(isinstance(i, str) for i in images)):
        raise PlacementError("%s: images = %r: a list of image names (pico_container_runtime_images), or none when unknown"
                             % (where, images))
    return {"name": raw["name"], "arch": raw.get("arch") or "", "board": raw.get("board") or "",
            "labels": dict((str(k), str(v)) for k, v in labels.items()),
            "memory": parse_memory(raw.get("memory", 0) or "0", where + ": memory (pico_node_capacity.memory)")
            if raw.get("memory") else 0,
            "cpus": cpus, "images": list(images) if images is not None else None,
            "alive": str(raw.get("alive", True)).lower() in ("true", "1", "yes")}


def _newest_held(args):
    """The plan to build on: `current`, or the newest of the plans the nodes hold (`held`, by node),
    each checked first so that a broken file is named with its node, never skipped."""
    if args.get("held") is None:
        return check_held(args.get("current") or {}, "the plan the nodes hold (current)")
    return newest(args["held"], args.get("plan_file") or "its plan")


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
        node_services = args.get("node_services") or {}
        only = args.get("only") or None
        try:
            current = _newest_held(args)
            if not isinstance(node_services, dict) or not all(isinstance(v, dict) for v in node_services.values() if v):
                raise PlacementError("node_services: a mapping of node name to its service files by service name")
            services = validate_services(args.get("services") or [])
            if not isinstance(args.get("nodes") or [], list):
                raise PlacementError("nodes = %r: a list of node entries (or names of nodes that are down)" % (args.get("nodes"),))
            nodes = [_node(n) for n in args.get("nodes") or []]
            # Drained nodes stay drained, plan after plan, until undrained.
            drained = (set(current.get("drained") or []) | set(_names(args.get("drain")))) - set(_names(args.get("undrain"), "undrain"))
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
                       if name in set(_names(args.get("standby"), "standby")) and name not in drained]
            if args.get("consolidate"):
                new, wake = consolidate(services, nodes, current.get("services")), []
            else:
                new, wake = plan_waking(services, nodes, current.get("services"), standby)
        except (PlacementError, PlanDocumentError) as err:
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
            # Nothing of a service no longer declared has to keep answering: every node drains it
            # in one batch and stops it after one wait (batch_size 1 took 30 batches on 30 boards).
            batches = rollout_steps({"name": name, "update": dict(UPDATE_DEFAULTS, batch_size=max(1, len(old)))}, old, {})
            if batches:
                rollouts.append({"service": name, "policy": dict(UPDATE_DEFAULTS), "batches": batches, "removed": True})
        new, placement_changed = document(current, new, drained, powered_off, args.get("cluster_id"))
        changed = placement_changed or bool(rollouts)
        if changed and args.get("agent_check"):
            self._agent_check(args["agent_check"], new, files)
        result.update(changed=changed, plan=new, node_files=files, rollouts=rollouts, removed=removed, wake=wake,
                      moves=[list(m) for m in moves(current, new)])
        if self._task.diff:
            result["diff"] = {"before": _slots_text(current), "after": _slots_text(new),
                              "before_header": "placement held by the nodes", "after_header": "new placement"}
        return result

    def _agent_check(self, bundle, plan, node_files):
        """The agent's own check of what a rollout would write (its parser, its messages), run on
        the task's node before anything is drained. The documents go over stdin: they carry env,
        which may hold secrets, and the agent's messages never quote a value."""
        document = json.dumps({"plan": plan, "node_files": node_files})
        command = "python3 %s check-plan -" % shlex.quote(bundle)
        answer = self._low_level_execute_command(command, sudoable=False, in_data=document.encode("utf-8"))
        problems = []  # "node: problem" lines, the same problem on many nodes said once
        for line in to_text(answer.get("stdout", "")).splitlines():
            node, dummy, problem = line.partition(": ")
            same = next((p for p in problems if node in node_files and p[1] == problem), None)
            if same:
                same[0].append(node)
            elif line.strip():
                problems.append(([node], problem) if node in node_files else ([], line))
        problems = ["%s: %s" % (", ".join(nodes), problem) if nodes else problem for nodes, problem in problems]
        if answer.get("rc") == 2 and problems:
            raise AnsibleActionFail("The agents would refuse what this run would write, so nothing was changed: %s. "
                                    "Fix the service declarations (pico_services) and run again." % "; ".join(problems))
        if answer.get("rc") != 0:
            raise AnsibleActionFail("The agent's check of the plan (%s check-plan) did not run on %s: %s. Is the "
                                    "agent role applied there (site.yml)?" % (
                                        bundle, self._task.delegate_to or self._play_context.remote_addr,
                                        to_text(answer.get("stderr", "")).strip()[-500:] or "exit %s" % answer.get("rc")))


def _names(value, what="drain"):
    if not value:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PlacementError("%s = %r: a node name or a list of node names" % (what, value))
    return list(names)
