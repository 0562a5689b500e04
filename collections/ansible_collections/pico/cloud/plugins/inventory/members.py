# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: members
short_description: The live Pico-Cloud cluster as an inventory, from its gossip membership
version_added: "0.5.0"
description:
  - Asks a node's pico-agent for the cluster's members (Serf gossip, as every agent sees it) and
    makes each member a host, so a site can target the live cluster instead of a hand-kept list.
  - Only members in O(status) (default only C(alive)) become hosts; failed and departed ones
    are left out.
  - How the controller reaches an agent. Agents listen on loopback and the WireGuard mesh only,
    so the plugin asks a seed node over SSH (O(seeds)), running C(curl) on it against its own
    agent. A controller that is on the mesh can set O(agent_url) instead. Seeds are tried in
    order until one answers.
  - The SSH is the system's C(ssh) with Ansible's own settings for the user, the key and extra
    options (O(ssh_user), O(ssh_private_key_file), O(ssh_args) fall back to C(remote_user),
    C(private_key_file) and C(ssh_common_args) of ansible.cfg and their environment variables,
    which AWX and ansible-navigator set from a machine credential; a key in ssh-agent works as it
    does for Ansible). Not Ansible's connection plugin itself, since an inventory is read before
    any host exists to connect to.
  - Each host gets C(ansible_host) (the member's LAN address, the C(lan) tag the agent role
    sets, else its mesh address), C(ansible_user) when O(ssh_user) is known, C(pico_board) and
    C(pico_member) (name, address, status, tags), and joins O(group). O(keyed_groups), O(groups)
    and O(compose) work as in the C(constructed) plugin, for example grouping by
    C(pico_member.tags.board).
  - Membership changes in seconds; the cache is off by default.
  - Remote data is marked unsafe, so a member's tags cannot inject templates.
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Token that marks this file as a source for this plugin.
    type: str
    required: true
    choices: [pico.cloud.members]
  seeds:
    description: Nodes to ask, as C(host) or C(user@host), over SSH with the options below.
    type: list
    elements: str
    default: []
  agent_url:
    description: The agent's HTTP API, for a controller on the mesh (instead of O(seeds)).
    type: str
  agent_port:
    description: The agents' HTTP port on the seeds.
    type: int
    default: 8500
  ssh_user:
    description:
      - SSH user for the seeds (a seed written C(user@host) says its own), and C(ansible_user) of
        every host.
      - Unset, Ansible's remote user; unset there too, ssh's own choice (C(~/.ssh/config), else
        the local user), and no C(ansible_user) is set.
    type: str
    env:
      - name: ANSIBLE_REMOTE_USER
    ini:
      - section: defaults
        key: remote_user
  ssh_private_key_file:
    description: SSH key for the seeds; unset, Ansible's C(private_key_file), else ssh-agent and ssh's defaults.
    type: path
    env:
      - name: ANSIBLE_PRIVATE_KEY_FILE
    ini:
      - section: defaults
        key: private_key_file
  ssh_args:
    description:
      - Extra ssh options for the seeds, for example C(-o UserKnownHostsFile=...).
      - Unset, Ansible's C(ssh_common_args), split as a shell would.
    type: list
    elements: str
    env:
      - name: ANSIBLE_SSH_COMMON_ARGS
    ini:
      - section: ssh_connection
        key: ssh_common_args
  status:
    description: Which members become hosts.
    type: list
    elements: str
    default: [alive]
  tags:
    description:
      - "Only members whose Serf tags hold these values become hosts, for example C({board: pizero2})."
      - A list of values accepts any of them.
    type: dict
    default: {}
  group:
    description: The group every member joins (the one the playbooks target).
    type: str
    default: pico_nodes
  timeout:
    description: Seconds to wait for a seed.
    type: int
    default: 15
"""

EXAMPLES = r"""
# inventories/live.members.yml
plugin: pico.cloud.members
seeds: [pizero-1.local, pizero-2.local]
ssh_user: pi
tags:
  board: [pizero, pizero2]
keyed_groups:
  - key: pico_member.tags.board
    prefix: board
groups:
  zero2: pico_board == 'pizero2'
"""

import json
import shlex
import subprocess

from ansible.errors import AnsibleParserError
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var


def _unsafe(value):
    """Remote data cannot carry templates: strings with template characters are marked unsafe
    (as community.general's inventory plugins do); the rest stays plain for ansible-inventory."""
    if isinstance(value, dict):
        return dict((_unsafe(k), _unsafe(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    if isinstance(value, str) and ("{" in value or "}" in value):
        return wrap_var(value)
    return value


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "pico.cloud.members"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ("members.yml", "members.yaml"))

    def _ask_seed(self, seed):
        command = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % self.get_option("timeout")]
        if self.get_option("ssh_private_key_file"):
            command += ["-i", self.get_option("ssh_private_key_file")]
        command += self._ssh_args()
        user = self.get_option("ssh_user")
        target = seed if "@" in seed or not user else "%s@%s" % (user, seed)
        command += [target, "curl -sf --max-time %d http://127.0.0.1:%d/v1/members" % (
            self.get_option("timeout"), self.get_option("agent_port"))]
        result = subprocess.run(command, capture_output=True, text=True, timeout=self.get_option("timeout") + 10,
                                check=False)
        if result.returncode != 0:
            raise OSError("%s: %s" % (seed, (result.stderr.strip().splitlines() or ["exit %d" % result.returncode])[-1]))
        return result.stdout

    def _ssh_args(self):
        """The list given, or Ansible's ssh_common_args (a string from ansible.cfg or the environment)."""
        args = self.get_option("ssh_args") or []
        if len(args) == 1 and " " in args[0].strip():
            return shlex.split(args[0])
        return list(args)

    def _wanted(self, tags):
        """Whether a member's tags hold every value O(tags) asks for."""
        for key, accepted in (self.get_option("tags") or {}).items():
            accepted = accepted if isinstance(accepted, list) else [accepted]
            if tags.get(key) not in [str(value) for value in accepted]:
                return False
        return True

    def _members(self):
        if self.get_option("agent_url"):
            sources = [("agent_url", lambda: open_url(self.get_option("agent_url").rstrip("/") + "/v1/members",
                                                      timeout=self.get_option("timeout")).read().decode())]
        else:
            sources = [(seed, lambda seed=seed: self._ask_seed(seed)) for seed in self.get_option("seeds")]
        if not sources:
            raise AnsibleParserError("pico.cloud.members needs seeds (nodes to ask over SSH) or agent_url")
        problems = []
        for name, fetch in sources:
            try:
                data = json.loads(fetch())
                members = data["members"]
                if not isinstance(members, list):
                    raise ValueError("members is not a list")
                return members
            except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as err:
                problems.append("%s: %s" % (name, err))
        raise AnsibleParserError("no seed answered with the cluster's members (%s). Check the seeds are "
                                 "reachable over SSH and run pico-agent." % "; ".join(problems))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        members = None
        if use_cache:
            try:
                members = self._cache[cache_key]
            except KeyError:
                members = None
        if members is None:
            members = self._members()
            if self.get_option("cache"):
                self._cache[cache_key] = members
        self._populate(members)

    def _populate(self, members):
        wanted = set(self.get_option("status"))
        group = self.inventory.add_group(self.get_option("group"))
        strict = self.get_option("strict")
        for member in members:
            if not isinstance(member, dict) or member.get("status") not in wanted or not member.get("name"):
                continue
            tags = member.get("tags") or {}
            if not isinstance(tags, dict) or not self._wanted(tags):
                continue
            name = self.inventory.add_host(_unsafe(str(member["name"])), group=group)
            self.inventory.set_variable(name, "ansible_host", _unsafe(tags.get("lan") or member.get("address")))
            if self.get_option("ssh_user"):
                self.inventory.set_variable(name, "ansible_user", self.get_option("ssh_user"))
            if tags.get("board"):
                self.inventory.set_variable(name, "pico_board", _unsafe(tags["board"]))
            self.inventory.set_variable(name, "pico_member", _unsafe(member))
            hostvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
