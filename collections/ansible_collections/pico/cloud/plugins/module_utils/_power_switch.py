# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""Power switches that cut or restore a board's supply, one small driver per kind of switch.

A driver answers two questions, is the board powered, and switch it on or off, by running the
switch's own command-line tool on the host wired to it:

- clusterctrl: a ClusterHAT or ClusterCTRL board (8086 Consultancy); `clusterctrl on|off pN`,
  and `clusterctrl status`, which prints a `pN:0|1` line per port.
- uhubctl: a USB hub with per-port power switching (the Debian package uhubctl);
  `uhubctl -l LOCATION -p PORT [-a on|off]`, whose port line says `off` or `power`.
- lab: the project's emulated lab, where a board is a container; `docker start|stop`.

`run(argv)` is injected (AnsibleModule.run_command in the module, a fake in unit tests) and
returns (rc, stdout, stderr).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class SwitchError(Exception):
    """The switch cannot be read or set; the message names the switch and the fix."""


class Driver(object):
    tool = ""
    required = ()

    def __init__(self, run, options):
        self.run = run
        self.options = options
        missing = [key for key in self.required if options.get(key) in (None, "")]
        if missing:
            raise SwitchError("the %s driver needs %s (pico_power_switch)" % (self.name(), " and ".join(missing)))

    @classmethod
    def name(cls):
        return cls.__name__.lower()

    def command(self):
        return self.options.get("command") or self.tool

    def call(self, *args):
        argv = [self.command()] + [str(a) for a in args]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise SwitchError("%s failed (exit %s): %s" % (" ".join(argv), rc, (err or out).strip()[-400:] or "no output"))
        return out

    def is_on(self):
        raise NotImplementedError

    def switch(self, on):
        raise NotImplementedError


class ClusterCtrl(Driver):
    tool = "clusterctrl"
    required = ("port",)

    def _port(self):
        port = int(self.options["port"])
        if port < 1:
            raise SwitchError("clusterctrl port %r: the slot number, 1 for p1" % (self.options["port"],))
        return "p%d" % port

    def is_on(self):
        port = self._port()
        out = self.call("status")
        found = re.search(r"^%s:([01])\s*$" % port, out, re.MULTILINE)
        if not found:
            raise SwitchError("clusterctrl status lists no %s: is this host the ClusterHAT/CTRL controller "
                              "(/etc/default/clusterctrl TYPE=c or cnat), and is the port right?" % port)
        return found.group(1) == "1"

    def switch(self, on):
        self.call("on" if on else "off", self._port())


class Uhubctl(Driver):
    tool = "uhubctl"
    required = ("location", "port")

    def _select(self):
        return ["-l", self.options["location"], "-p", int(self.options["port"])]

    def is_on(self):
        out = self.call(*self._select())
        port = int(self.options["port"])
        found = re.search(r"^\s*Port %d: [0-9a-fA-F]{4}(.*)$" % port, out, re.MULTILINE)
        if not found:
            raise SwitchError("uhubctl shows no port %d on hub %s: check location and port (uhubctl lists "
                              "the hubs that can switch power)" % (port, self.options["location"]))
        flags = found.group(1).split()
        return "off" not in flags and "power" in flags

    def switch(self, on):
        self.call(*(self._select() + ["-a", "on" if on else "off"]))


class Lab(Driver):
    tool = "docker"
    required = ("container",)

    def is_on(self):
        return self.call("inspect", "--format", "{{.State.Running}}", self.options["container"]).strip() == "true"

    def switch(self, on):
        if on:
            self.call("start", self.options["container"])
        else:  # the lab's containers stop with SIGRTMIN+3: systemd's halt, as a board's own shutdown
            self.call("stop", "--time", "30", self.options["container"])


DRIVERS = dict((cls.name(), cls) for cls in (ClusterCtrl, Uhubctl, Lab))


def driver(run, options):
    kind = (options or {}).get("driver")
    if kind not in DRIVERS:
        raise SwitchError("power switch driver %r: choose one of %s" % (kind, ", ".join(sorted(DRIVERS))))
    return DRIVERS[kind](run, options)
