"""The status page every agent serves (GET /, no token): one self-contained HTML page that asks
GET /v1/status every few seconds and draws the cluster as this agent holds it: boards, services,
takeovers and recent events. Any board shows the whole cluster, since every agent holds the plan,
the catalog and the members. Nothing here is a secret: no env value, no token, no key."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import __version__
from ._service_spec import FAILOVER_TAG

if TYPE_CHECKING:
    from ._plan_document import Plan
    from .catalog import Catalog

SHOWN_EVENTS = 50


def cluster_status(node: str, catalog: Catalog, plan: Plan | None, failover: dict[str, Any],
                   events: list[dict[str, Any]]) -> dict[str, Any]:
    """GET /v1/status: every board the gossip or the plan names, every service, newest events first."""
    held: dict[str, list[str]] = {}
    for name, service in sorted(plan.services.items()) if plan else ():
        for index, owner in enumerate(service.slots):
            if owner:
                held.setdefault(owner, []).append(f"{name}:{index}")
    powered_off = plan.powered_off if plan else {}
    names = sorted(set(catalog.members) | set(plan.nodes if plan else ()) | set(powered_off))
    boards = []
    for name in names:
        member = catalog.members.get(name)
        room = plan.nodes.get(name) if plan else None
        tags = member.tags if member else {}
        if name in powered_off and (member is None or member.status != "alive"):
            state, since = "powered down", powered_off[name]
        else:
            state = member.status if member else "not in the gossip"
            since = catalog.member_since.get(name)
        boards.append({
            "name": name, "state": state, "since": int(since) if since else None,
            "board": tags.get("board", ""), "arch": tags.get("arch", "") or (room.arch if room else ""),
            "power": tags.get("power", ""),
            "memory_requested": room.memory_requested if room else None, "memory": room.memory if room else None,
            "cpu_requested": room.cpu_requested if room else None, "cpus": room.cpus if room else None,
            "holds": held.get(name, []),
        })
    services = []
    planned = plan.services if plan else {}
    for name in sorted(set(planned) | set(catalog.services())):
        instances = catalog.instances(name)
        service = planned.get(name)
        services.append({
            "name": name, "desired": len(service.slots) if service else None, "healthy": len(instances),
            # The image only: a spec's env may hold secrets.
            "images": sorted({str(spec.get("image")) for spec in service.specs.values()}) if service else [],
            "instances": [{"node": i.node, "id": i.id, "takeover_of": _takeover_of(i.tags)}
                          for i in sorted(instances, key=lambda i: i.id)],
        })
    return {
        "node": node, "version": __version__, "generated": int(time.time()),
        "plan_generation": plan.generation if plan else None, "boards": boards, "services": services,
        "takeovers": failover.get("takeovers", []), "waiting": failover.get("waiting", []),
        "uncovered": failover.get("uncovered", []), "events": events[-SHOWN_EVENTS:][::-1],
    }


def _takeover_of(tags: tuple[str, ...]) -> str | None:
    """'<owner> slot <n>' for a copy run for a failed board (its tag pico.failover:<owner>:<n>)."""
    for tag in tags:
        if tag.startswith(FAILOVER_TAG):
            owner, _sep, slot = tag[len(FAILOVER_TAG):].rpartition(":")
            return f"{owner} slot {slot}"
    return None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Pico-Cloud</title>
<style>
body{font:14px system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.alive,.ok{color:#176b2c}.failed,.short,.down{color:#b00020;font-weight:bold}
.left,.powered{color:#666}#note{color:#b00020}small{color:#666}
</style></head><body>
<h1>Pico-Cloud <small id="seen"></small></h1><p id="note"></p>
<h2>Boards</h2><table id="boards"><tr><th>board</th><th>state</th><th>since</th><th>kind</th><th>CPU</th>
<th>power</th><th>memory requested</th><th>holds</th></tr></table>
<h2>Services</h2><table id="services"><tr><th>service</th><th>healthy / desired</th><th>image</th>
<th>instances</th></tr></table>
<h2>Takeovers</h2><table id="takeovers"><tr><th>service</th><th>slot</th><th>of</th><th>state</th></tr></table>
<h2>Recent events</h2><table id="events"><tr><th>when</th><th>event</th><th>what</th></tr></table>
<script>
"use strict";
const MiB = 1048576;
function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : ""; }
function fill(id, rows) {
  const table = document.getElementById(id);
  while (table.rows.length > 1) table.deleteRow(1);
  for (const row of rows) {
    const tr = table.insertRow();
    for (const [text, cls] of row) { const td = tr.insertCell(); td.textContent = text; if (cls) td.className = cls; }
  }
}
function draw(s) {
  document.getElementById("seen").textContent = "as " + s.node + " sees it, " + when(s.generated) +
    (s.plan_generation === null ? ", no plan yet" : ", plan " + s.plan_generation);
  fill("boards", s.boards.map(b => [[b.name], [b.state, b.state.split(" ")[0]], [when(b.since)], [b.board], [b.arch],
    [b.power], [b.memory === null ? "" : Math.round(b.memory_requested / MiB) + " / " + Math.round(b.memory / MiB) + " MiB"],
    [b.holds.join(" ")]]));
  fill("services", s.services.map(v => [[v.name],
    [v.healthy + " / " + (v.desired === null ? "-" : v.desired), v.desired !== null && v.healthy < v.desired ? "short" : "ok"],
    [v.images.join(" ")],
    [v.instances.map(i => i.node + (i.takeover_of ? " (for " + i.takeover_of + ")" : "")).join(", ")]]));
  fill("takeovers", [].concat(
    s.takeovers.map(t => [[t.service], [String(t.slot)], [t.owner], [t.draining ? "handing back" : "running here"]]),
    s.waiting.map(t => [[t.service], [String(t.slot)], [t.owner], ["waits for room", "short"]]),
    s.uncovered.map(t => [[t.service], [String(t.slot)], [t.owner], ["not served for " + t.for_s + " s", "short"]])));
  fill("events", s.events.map(e => [[when(e.ts)], [e.event],
    [Object.keys(e).filter(k => k !== "ts" && k !== "event").map(k => k + "=" + e[k]).join(" ")]]));
  document.getElementById("note").textContent = "";
}
async function refresh() {
  try {
    const answer = await fetch("/v1/status", {cache: "no-store"});
    draw(await answer.json());
  } catch (err) {
    document.getElementById("note").textContent = "This board's agent does not answer (" + err + "); retrying.";
  }
}
refresh();
setInterval(refresh, 5000);
</script></body></html>
"""
