"""Roles talk to each other and to the playbooks only through what they declare: a role's
private names (`_pico_<role>...`, facts and variables alike) appear nowhere outside it. Shared
state goes through documented public facts (pico_mesh, pico_deploy_node, pico_deploy_held,
pico_deploy_newest_plan, pico_wireguard_rotated) or a role's entry points with argument specs
(docs/layout.md)."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"
ROLES = sorted(p.name for p in (COLLECTION / "roles").iterdir() if p.is_dir())
PRIVATE = re.compile(r"\b_pico_(%s)(?:_\w+)?\b" % "|".join(ROLES))


def sources():
    """Every file a private name could leak into: the collection's playbooks, roles and plugins,
    and the repository's own playbooks."""
    for root in (COLLECTION / "playbooks", COLLECTION / "roles", COLLECTION / "plugins", REPO / "playbooks"):
        yield from (p for p in root.rglob("*") if p.suffix in (".yml", ".yaml", ".py", ".j2"))
    yield REPO / "site.yml"


def test_no_role_or_playbook_reads_another_roles_private_names():
    leaks = []
    for path in sources():
        owner = path.relative_to(COLLECTION).parts[1] if path.is_relative_to(COLLECTION / "roles") else None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for found in PRIVATE.finditer(line):
                if found.group(1) != owner and not found.group(0).startswith(f"_pico_{owner}_"):
                    leaks.append(f"{path.relative_to(REPO)}:{number}: {found.group(0)}")
    assert leaks == []


def test_every_entry_point_another_playbook_uses_is_declared():
    """include_role/import_role with tasks_from: the role declares that entry point."""
    used = set()
    for path in sources():
        if path.suffix not in (".yml", ".yaml"):
            continue
        for found in re.finditer(r"name: pico\.cloud\.(\w+)\s*\n\s*tasks_from: (\w+)(?:\.yml)?", path.read_text()):
            used.add(found.groups())
    assert len(used) >= 5, used
    for role, entry in sorted(used):
        specs = yaml.safe_load((COLLECTION / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
        assert entry in specs, f"{role} does not declare the entry point {entry} that a playbook uses"
