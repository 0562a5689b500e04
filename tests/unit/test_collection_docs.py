"""Every module, filter, inventory plugin and role of pico.cloud renders in ansible-doc, with
examples (sanity's ansible-doc test checks that docs load, not that they show how to use them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"


def shipped():
    """(type, name) of every documented thing, from the collection's files."""
    found = {("role", f"pico.cloud.{role.name}") for role in (COLLECTION / "roles").iterdir() if role.is_dir()}
    for kind, folder in (("module", "modules"), ("filter", "filter"), ("inventory", "inventory")):
        found |= {(kind, f"pico.cloud.{path.stem}") for path in (COLLECTION / "plugins" / folder).glob("*.py")
                  if not path.name.startswith("_")}
    return found


def test_every_plugin_and_role_renders_with_examples():
    result = subprocess.run([str(Path(sys.executable).with_name("ansible-doc")), "--metadata-dump", "pico.cloud"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")})
    assert result.returncode == 0, result.stderr
    dump = json.loads(result.stdout)["all"]
    missing, without_examples = [], []
    for kind, name in sorted(shipped()):
        doc = dump.get(kind, {}).get(name)
        if not doc:
            missing.append((kind, name))
        elif kind == "role":
            if not all((entry or {}).get("examples") for entry in doc["entry_points"].values()):
                without_examples.append(name)
        elif not (doc.get("examples") or "").strip():
            without_examples.append(name)
    assert not missing and not without_examples, (missing, without_examples)


def test_the_action_group_lists_every_module():
    """module_defaults for group/pico.cloud.all reaches every module of the collection."""
    import yaml
    group = yaml.safe_load((COLLECTION / "meta/runtime.yml").read_text())["action_groups"]["all"]
    modules = sorted(path.stem for path in (COLLECTION / "plugins/modules").glob("*.py") if not path.name.startswith("_"))
    assert sorted(group) == modules
