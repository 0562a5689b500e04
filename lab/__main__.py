"""The lab CLI: `python3 -m lab {images,up,status,down}` from the repository root."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from . import cluster, images, model, workloads
from .inventory import DEMO_SERVICE
from .shell import LabError

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_ROOT = REPO_ROOT / ".lab"
DEFAULT_INVENTORY = REPO_ROOT / "inventories/lab/hosts.yml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab", description="Emulated Pi Zero lab: node images and clusters.")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("images", help="build the node images and demo workload archives whose recipe changed (cached)")
    build.add_argument("--kind", action="append", choices=sorted(model.KINDS), help="only this kind (repeatable)")
    build.add_argument("--force", action="store_true", help="rebuild even when an image of the recipe exists")

    for name, text in (("up", "start a lab and write its inventory"), ("status", "show the lab's nodes and their services"),
                       ("ready", "wait until every node's services are healthy, then show how to look at them"),
                       ("down", "remove the lab's containers, network, inventory and state")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--name", default="pico", help="lab name; several labs may run side by side (default: pico)")
        cmd.add_argument("--inventory", type=Path, help=f"inventory file to write (default: {DEFAULT_INVENTORY.relative_to(REPO_ROOT)} for the lab 'pico')")
        if name == "up":
            cmd.add_argument("--mix", default=model.DEFAULT_MIX, help=f"nodes per kind (default: {model.DEFAULT_MIX}); kinds: {', '.join(model.KINDS)}")
            cmd.add_argument("--subnet", default=model.DEFAULT_SUBNET, help=f"lab network (default: {model.DEFAULT_SUBNET})")
            cmd.add_argument("--ssh-port-base", type=int, default=cluster.DEFAULT_SSH_PORT_BASE,
                             help="node i's SSH is published on 127.0.0.1:BASE+i (default: %(default)s)")
        if name == "ready":
            cmd.add_argument("--timeout", type=float, default=300, help="seconds to wait (default: %(default)s)")

    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so a killed build still cleans up after itself
    try:
        if args.command == "images":
            kinds = [model.get_kind(k) for k in (args.kind or model.KINDS)]
            for ref in images.ensure_images(kinds, STATE_ROOT / "logs", force=args.force):
                print(f"lab: image {ref} ready")
            built = {w for ws in workloads.ensure_workloads(kinds).values() for w in ws}
            for workload in sorted(built, key=lambda w: (w.arch, w.version)):
                print(f"lab: workload {workload.name} ({workload.arch}) ready: {workload.archive}")
            return 0
        inventory = args.inventory or (DEFAULT_INVENTORY if args.name == "pico" else STATE_ROOT / args.name / "hosts.yml")
        lab = cluster.Lab(args.name, STATE_ROOT, inventory.resolve())
        if args.command == "up":
            print(f"lab: {lab.up(model.plan(args.name, args.mix, args.subnet, args.ssh_port_base))}")
            _print_status(lab)
        elif args.command == "status":
            _print_status(lab)
        elif args.command == "ready":
            rows = lab.wait_for_services(args.timeout)
            _print_table(rows)
            _print_hints(lab, rows)
        else:
            print(f"lab: {lab.down()}")
        return 0
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab: interrupted; nothing half-built is kept", file=sys.stderr)
        return 130


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _print_status(lab: cluster.Lab) -> None:
    rows = lab.status()
    if not rows:
        print(f"lab: no lab named {lab.name!r} is running")
        return
    _print_table(rows)


def _print_hints(lab: cluster.Lab, rows: list[dict[str, str]]) -> None:
    """What to try next, with this lab's own names and addresses."""
    if not any(DEMO_SERVICE["name"] + ":" in row["services"] for row in rows):
        return
    first, last = rows[0], rows[-1]
    shell = f"docker exec {lab.name}-lab-{first['node']}"
    port = DEMO_SERVICE["port"]
    print(f"\nlab: every node runs the {DEMO_SERVICE['name']} service, kept up by its agent. From any board:")
    print(f"  {shell} dig @127.0.0.1 -p 8600 {DEMO_SERVICE['name']}.service.pico    # every board's instance")
    if last["mesh"]:
        print(f"  {shell} curl -s http://{last['mesh']}:{port}/version    # {last['node']}'s, over the WireGuard mesh")
    print(f"  docker exec -it {lab.name}-lab-{first['node']} bash    # a shell on {first['node']}")
    print("  make lab-status    # nodes and their services")


def _print_table(rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


if __name__ == "__main__":
    sys.exit(main())
