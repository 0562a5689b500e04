# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""A run's view of the fleet: which boards it worked on, and what it tells the operator of the rest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _names(value, what):
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise TypeError("%s must be a list of board names, got %r" % (what, value))
    return list(value)


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def summary_lines(fleet, remaining, playbook, missed="", notes=None, run_failed=False, limit_rerun=False):
    """Sentences naming the boards of the group a run did not converge, in the group's order.

    run_failed: the run also failed on boards it reached (a rollout that failed and rolled back),
    so running it again does more than converge the boards named.
    limit_rerun: the playbook takes --limit, so the boards named can be converged alone.
    """
    if not isinstance(fleet, dict):
        raise TypeError("the fleet must be the pico_fleet fact (a dict), got %r" % (fleet,))
    group = _names(fleet.get("group", []), "group")
    powered_down = set(_names(fleet.get("powered_down", []), "powered_down"))
    reached = set(_names(fleet.get("reached", []), "reached"))
    remaining = set(_names(remaining, "remaining"))
    notes = notes or {}
    if not isinstance(run_failed, bool):
        raise TypeError("run_failed must be true or false, got %r" % (run_failed,))
    if not isinstance(limit_rerun, bool):
        raise TypeError("limit_rerun must be true or false, got %r" % (limit_rerun,))
    not_reached = [b for b in group if b not in powered_down and b not in reached]
    lost = [b for b in group if b in reached and b not in remaining]
    lines = []
    if not_reached:
        lines.append("Not reached: %s did not answer when the run started; nothing of %s was done there%s." % (
            _join(not_reached), playbook, (": " + missed) if missed else ""))
    if lost:
        lines.append("Lost during the run: %s became unreachable or failed (see above); %s is incomplete there." % (
            _join(lost), playbook))
    for board in not_reached + lost:
        if notes.get(board):
            lines.append("%s: %s" % (board, notes[board]))
    missing = [board for board in not_reached + lost if not notes.get(board)]  # a note says what to do
    if missing:
        one = len(missing) == 1
        # A board lost during the run may have failed rather than gone away: then coming back is not enough.
        fixed = ""
        if run_failed:
            fixed = " and the failure above is fixed"
        elif any(board in lost for board in missing):
            fixed = ", or the failure above is fixed" if one else ", or the failures above are fixed"
        # On a large fleet a run over every board costs minutes where one over the boards named
        # costs seconds; the full run stays first, as it is the one that works whatever changed.
        alone = ""
        if limit_rerun and not run_failed:
            alone = "; ansible-playbook %s --limit %s converges %s alone, quicker on a large fleet" % (
                playbook, ",".join(missing), "it" if one else "them")
        lines.append("When %s back%s, run %s again: it converges %s and %s%s." % (
            "it is" if one else "they are", fixed, playbook, "that board" if one else "those boards",
            "retries what failed on the others" if run_failed else "changes nothing on the others", alone))
    off = [b for b in group if b in powered_down]
    if off:
        lines.append("Powered down, left out on purpose: %s (energy.yml; deploy.yml powers boards up when it needs "
                     "their room)." % _join(off))
        # What a run left undone on a board that is off counts too (a key rotation it missed).
        lines.extend("%s: %s" % (board, notes[board]) for board in off if notes.get(board))
    for board in sorted(fleet.get("switch_problems") or {}):
        lines.append("The power switch of %s could not be read (%s); it was tried over SSH." % (
            board, fleet["switch_problems"][board]))
    return lines
