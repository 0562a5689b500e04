"""pico-agent: run the node agent, or check a configuration or service file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Every MB counts on a 512 MB board. The agent speaks TLS to nothing (the mesh is WireGuard), yet
# asyncio imports ssl, and hashlib and hmac load OpenSSL's libcrypto: together ~7 MB of RSS.
# Without them hashlib uses Python's own SHA-256 and hmac its own compare_digest.
for _unused in ("ssl", "_hashlib"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    from .config import DEFAULT_CONFIG_PATH, ConfigError, load_config

    parser = argparse.ArgumentParser(prog="pico-agent", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="agent TOML file (%(default)s)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the agent (the default)")
    sub.add_parser("check-config", help="validate the configuration file and exit")
    check = sub.add_parser("check-service", help="validate service files and exit")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument("--name", help="the service name the file will be stored under (for a temp file)")
    plan = sub.add_parser("check-plan", help="validate what deploy.yml would write (a plan and service files) and exit")
    plan.add_argument("file", help='JSON {"plan": ..., "node_files": {node: {service: spec}}}, or - for stdin')
    args = parser.parse_args(argv)

    if args.command == "check-plan":
        problems = _plan_problems(sys.stdin.read() if args.file == "-" else Path(args.file).read_text())
        for problem in problems:
            print(problem)
        return 2 if problems else 0

    if args.command == "check-service":
        from .spec import SpecError, load_spec_file, parse_spec
        import json
        status = 0
        for path in args.files:
            try:
                if args.name:
                    parse_spec(json.loads(path.read_text()), expected_name=args.name)
                else:
                    load_spec_file(path)
            except (SpecError, ValueError, OSError) as err:
                print(f"pico-agent: {path}: {err}", file=sys.stderr)
                status = 2
        return status
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"pico-agent: {err}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{args.config}: ok (node {config.node_name})")
        return 0

    import asyncio
    from .agent import Agent, TokenError
    from .log import log, set_level

    set_level(config.log_level)
    _raise_open_file_limit()
    try:
        return asyncio.run(Agent(config).run())
    except TokenError as err:
        print(f"pico-agent: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        log("error", "agent_failed", error=str(err))
        return 1


def _plan_problems(text: str) -> list[str]:
    """What an agent would refuse in a rollout's plan and service files, each named by where it is:
    the controller asks before it drains anything (the messages never quote a value of a spec)."""
    import json
    from .failover import PlanError, parse_plan
    from .spec import SpecError, parse_spec

    try:
        document = json.loads(text)
    except ValueError as err:
        return [f"not JSON: {err}"]
    if not isinstance(document, dict) or not isinstance(document.get("node_files", {}), dict):
        return ['expected {"plan": ..., "node_files": {node: {service: spec}}}']
    problems = []
    try:
        parse_plan(document.get("plan"))
    except PlanError as err:
        problems.append(f"the plan: {err}")
    for node, files in sorted(document.get("node_files", {}).items()):
        for name, spec in sorted((files or {}).items()):
            try:
                parse_spec(spec, expected_name=name)
            except SpecError as err:
                problems.append(f"{node}: service {name}: {err}")
    return problems


def _raise_open_file_limit() -> None:
    """The soft limit up to the hard one (systemd's LimitNOFILE): connection floods need descriptors
    long before they need memory, and the agent caps its own use."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    sys.exit(main())
