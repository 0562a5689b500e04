#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: boot_config
short_description: Manage settings in a Raspberry Pi's config.txt, section by section
version_added: "0.3.0"
description:
  - Sets or removes plain settings (C(gpu_mem=16)), device tree parameters (C(dtparam=audio=off))
    and device tree overlays (C(dtoverlay=disable-bt)) in one conditional section of config.txt,
    such as C([all]) or C([pi0]). Lines before the first section header count as C([all]).
  - Comments, blank lines, other sections and every line it does not manage stay as they are.
    A managed setting is changed where it stands; when the section has it more than once (only
    the last counts for the firmware) the earlier copies are removed. New lines go at the end of
    the section's last block; a missing section is added at the end of the file.
  - The file is written atomically (a power cut leaves the old or the new file) after a backup
    copy. A file the firmware would not understand (a line that is neither C(key=value), a
    section header, a comment nor an C(include)/C(initramfs) command) fails the module with the
    line number, and nothing is written.
  - "The firmware reads config.txt only at boot: RV(reboot_required) tells whether a reboot is needed."
options:
  path:
    description: The file. Default is the first that exists of /boot/firmware/config.txt (bookworm) and /boot/config.txt.
    type: path
  section:
    description: Section filter, without brackets (V(all), V(pi0), V(pi02), V(none) ...).
    type: str
    default: all
  settings:
    description: Plain settings to set; a null value removes the setting from the section.
    type: dict
    default: {}
  dtparams:
    description: Device tree parameters (C(dtparam=NAME=VALUE)) to set; null removes. A boolean becomes on/off.
    type: dict
    default: {}
  dtoverlays:
    description: Overlays that must be loaded (true) or not (false) in the section, by name.
    type: dict
    default: {}
  backup:
    description: Keep a time-stamped copy of the file before changing it.
    type: bool
    default: true
extends_documentation_fragment:
  - pico.cloud.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - Pico-Cloud developers (@pico-cloud)
"""

EXAMPLES = r"""
- name: Headless Pi Zero W with little GPU memory, no audio, no Bluetooth
  pico.cloud.boot_config:
    section: all
    settings:
      gpu_mem: 16
      camera_auto_detect: 0
    dtparams:
      audio: false
    dtoverlays:
      disable-bt: true
  register: boot_config

- name: Reboot when the firmware must read it
  ansible.builtin.reboot:
  when: boot_config.reboot_required
"""

RETURN = r"""
path:
  description: The file managed.
  type: str
  returned: always
reboot_required:
  description: The file changed; the firmware applies it at the next boot.
  type: bool
  returned: always
backup_file:
  description: The copy made before the change.
  type: str
  returned: when changed and O(backup=true)
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pico.cloud.plugins.module_utils._atomic_file import write_atomic

CANDIDATES = ("/boot/firmware/config.txt", "/boot/config.txt")
SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*=(.*)$")
COMMAND = re.compile(r"^\s*(include|initramfs)\s+\S")
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ConfigError(Exception):
    pass


def parse(text):
    """Lines with their section: [(section or None, kind, key, value, raw)]; raises ConfigError."""
    if "\0" in text:
        raise ConfigError("the file holds NUL bytes: it is not a config.txt")
    section, parsed = None, []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        header = SECTION.match(raw)
        if not stripped or stripped.startswith("#"):
            parsed.append((section, "comment", None, None, raw))
        elif header:
            section = header.group(1).strip()
            parsed.append((section, "section", None, None, raw))
        elif stripped.startswith("["):
            raise ConfigError("line %d: %r opens a section but does not close it with ]" % (number, raw))
        elif ASSIGNMENT.match(raw):
            key, value = ASSIGNMENT.match(raw).groups()
            parsed.append((section, "assign", key, value.strip(), raw))
        elif COMMAND.match(raw):
            parsed.append((section, "command", None, None, raw))
        else:
            raise ConfigError("line %d: %r is neither key=value, a [section], a comment nor include/initramfs"
                              % (number, raw))
    return parsed


def in_section(line_section, wanted):
    return line_section == wanted or (wanted == "all" and line_section is None)


def render_value(value, kind):
    if isinstance(value, bool):
        return ("on" if value else "off") if kind == "dtparam" else ("1" if value else "0")
    return str(value)


class ConfigTxt(object):
    def __init__(self, text, section):
        self.lines = parse(text)
        self.section = section
        self.trailing_newline = text.endswith("\n") or not text

    def _indexes(self):
        return [i for i, line in enumerate(self.lines) if in_section(line[0], self.section) and line[1] != "section"]

    def _replace(self, index, raw):
        section, _kind, _key, _value, _old = self.lines[index]
        key, value = ASSIGNMENT.match(raw).groups()
        self.lines[index] = (section, "assign", key, value.strip(), raw)

    def _drop(self, indexes):
        for index in sorted(indexes, reverse=True):
            del self.lines[index]

    def _append(self, raw):
        """After the last non-blank line of the section's last block; a new section at the end."""
        blocks = [i for i in self._indexes() if self.lines[i][1] != "comment" or self.lines[i][4].strip()]
        headers = [i for i, line in enumerate(self.lines) if line[1] == "section" and line[0] == self.section]
        if blocks or headers:
            position = max(blocks + headers) + 1
        elif self.section == "all" and not any(line[1] == "section" for line in self.lines):
            position = len(self.lines)
        else:
            if self.lines and self.lines[-1][4].strip():
                self.lines.append((None, "comment", None, None, ""))
            self.lines.append((self.section, "section", None, None, "[%s]" % self.section))
            position = len(self.lines)
        key, value = ASSIGNMENT.match(raw).groups()
        self.lines.insert(position, (self.section, "assign", key, value.strip(), raw))

    def set_setting(self, key, value):
        found = [i for i in self._indexes() if self.lines[i][1] == "assign" and self.lines[i][2] == key]
        if value is None:
            self._drop(found)
            return
        raw = "%s=%s" % (key, render_value(value, "setting"))
        if found:
            if self.lines[found[-1]][3] != render_value(value, "setting"):
                self._replace(found[-1], raw)
            self._drop(found[:-1])
        else:
            self._append(raw)

    def set_dtparam(self, name, value):
        wanted = None if value is None else render_value(value, "dtparam")
        holders = []
        for i in self._indexes():
            if self.lines[i][1] == "assign" and self.lines[i][2] == "dtparam":
                params = [p.strip() for p in self.lines[i][3].split(",") if p.strip()]
                if any(p.split("=", 1)[0] == name for p in params):
                    holders.append((i, params))
        for position, (index, params) in enumerate(holders):
            last = position == len(holders) - 1
            kept = []
            for param in params:
                if param.split("=", 1)[0] != name:
                    kept.append(param)
                elif last and wanted is not None:
                    kept.append("%s=%s" % (name, wanted))
            if kept != params:
                if kept:
                    self._replace(index, "dtparam=" + ",".join(kept))
                else:
                    self.lines[index] = None
        self.lines = [line for line in self.lines if line is not None]
        if not holders and wanted is not None:
            self._append("dtparam=%s=%s" % (name, wanted))

    def set_overlay(self, name, present):
        found = [i for i in self._indexes() if self.lines[i][1] == "assign" and self.lines[i][2] == "dtoverlay"
                 and self.lines[i][3].split(",", 1)[0].strip() == name]
        if present and not found:
            self._append("dtoverlay=%s" % name)
        elif not present:
            self._drop(found)

    def text(self):
        out = "\n".join(line[4] for line in self.lines)
        return out + "\n" if out and self.trailing_newline else out


def check_names(module, kind, names):
    bad = [n for n in names if not NAME.match(str(n))]
    if bad:
        module.fail_json(msg="%s name %s is not valid (letters, digits, '_', '-', '.'); nothing was written" % (kind, ", ".join(map(repr, bad))))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            section=dict(type="str", default="all"),
            settings=dict(type="dict", default={}),
            dtparams=dict(type="dict", default={}),
            dtoverlays=dict(type="dict", default={}),
            backup=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"] or next((c for c in CANDIDATES if os.path.exists(c)), None)
    if path is None:
        module.fail_json(msg="no config.txt at %s: is this a Raspberry Pi? Give `path` otherwise" % " or ".join(CANDIDATES))
    section = params["section"].strip().strip("[]").strip()
    for kind, names in (("setting", params["settings"]), ("dtparam", params["dtparams"]), ("dtoverlay", params["dtoverlays"])):
        check_names(module, kind, names)
    for kind, values in (("setting", params["settings"]), ("dtparam", params["dtparams"])):
        for name, value in values.items():
            if value is not None and ("\n" in str(value) or "," in str(value) and kind == "dtparam"):
                module.fail_json(msg="%s %s: value %r cannot be written on one line; nothing was written" % (kind, name, value))

    try:
        with open(path, "rb") as handle:
            before = handle.read().decode("utf-8")
    except (OSError, IOError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))
    except UnicodeDecodeError:
        module.fail_json(msg="%s is not a text file (not UTF-8); nothing was written" % path)
    try:
        config = ConfigTxt(before, section)
    except ConfigError as exc:
        module.fail_json(msg="%s is malformed, %s. Fix it by hand first; nothing was written" % (path, exc))
    for key, value in params["settings"].items():
        config.set_setting(key, value)
    for name, value in params["dtparams"].items():
        config.set_dtparam(name, value)
    for name, present in params["dtoverlays"].items():
        config.set_overlay(name, module.boolean(present))
    after = config.text()

    result = dict(changed=after != before, path=path, reboot_required=after != before,
                  diff=dict(before=before, after=after, before_header=path, after_header=path))
    if result["changed"] and not module.check_mode:
        directory = os.path.dirname(os.path.abspath(path))
        if os.statvfs(directory).f_flag & os.ST_RDONLY or not os.access(path, os.W_OK):
            module.fail_json(msg="%s is read-only (is %s mounted read-only? `mount -o remount,rw %s`); nothing was written"
                             % (path, directory, directory))
        if params["backup"]:
            result["backup_file"] = module.backup_local(path)
        write_atomic(module, path, after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
