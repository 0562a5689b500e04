# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
"""Action plugin for pico.cloud.packages_present: the installed list is read from the node once per
run and kept as a fact; a call whose packages are all in it runs nothing on the node."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

FACT = "pico_packages_installed"
# A read, run as a plain command so that a dry run (check mode) reads the node too.
QUERY = "dpkg-query -W -f='${db:Status-Status} ${Package}\\n'"


def _this_run():
    """The ansible-playbook process this task worker was forked from, and when it started: a list
    kept by an earlier run (in a persistent fact cache) is never taken for this run's."""
    parent = os.getppid()
    try:
        with open("/proc/%d/stat" % parent) as handle:
            started = handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "?"
    return "%d:%s" % (parent, started)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("name",))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        wanted = self._task.args.get("name")
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list) or not wanted or not all(isinstance(n, str) and n for n in wanted):
            raise AnsibleActionFail("name must be a list of Debian package names, got %r" % (wanted,))
        kept = (task_vars.get("ansible_facts") or {}).get(FACT) or {}
        run = _this_run()
        installed = kept.get("packages") if isinstance(kept, dict) and kept.get("run") == run else None
        if installed is None:
            query = self._low_level_execute_command(QUERY, sudoable=True)
            if query.get("rc") != 0:
                result.update(failed=True, msg="listing the installed packages failed (dpkg-query, exit %s): %s"
                              % (query.get("rc"), (query.get("stderr") or query.get("stdout") or "no output").strip()[-300:]))
                return result
            installed = [line.split(" ", 1)[1] for line in query.get("stdout", "").splitlines()
                         if line.startswith("installed ")]
        missing = sorted(set(wanted) - set(installed))
        result.update(changed=bool(missing), missing=missing)
        if missing and not self._task.check_mode:
            apt = self._execute_module(module_name="ansible.builtin.apt", task_vars=task_vars, module_args={
                "name": missing, "state": "present", "install_recommends": False, "update_cache": True,
                "cache_valid_time": 3600})
            if apt.get("failed"):
                result.update(failed=True, msg="installing %s failed: %s" % (", ".join(missing), apt.get("msg")))
                return result
        if not self._task.check_mode:  # a dry run installs nothing: the node has only what it had
            installed = sorted(set(installed) | set(wanted))
        result["ansible_facts"] = {FACT: {"run": run, "packages": sorted(installed)}}
        return result
