"""Every way of building or installing pico.cloud gives the same working agent role: a plain
`ansible-galaxy collection build` (scripts/build_collection.py is only that) and an install from
the git repository both carry the agent's source, and the zipapp the role builds from an installed
copy is the one a checkout builds. (Molecule's default scenario converges the emulated boards from
such an installed tarball.)"""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"
BUILD_BUNDLE = COLLECTION / "roles/agent/files/build_bundle.py"
PLAYBOOKS = ["site", "deploy", "drain", "energy", "status", "power_report", "rotate_wireguard_keys", "logs",
             "monitoring"]
GALAXY = str(Path(sys.executable).with_name("ansible-galaxy"))


def agent_zipapp(source: Path, into: Path) -> bytes:
    """The zipapp the agent role builds on the controller from a pico_agent package."""
    subprocess.run([sys.executable, str(BUILD_BUNDLE), str(source), str(into)], check=True, capture_output=True)
    return into.read_bytes()


def test_a_plain_build_ships_the_current_agent_and_installs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts/build_collection.py"), "--output-dir",
                             str(tmp_path / "dist"), "--install-to", str(tmp_path / "installed")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.splitlines()[0])
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"MANIFEST.json", "roles/agent/tasks/main.yml", "plugins/modules/service_plan.py"} <= names
    assert {f"playbooks/{name}.yml" for name in PLAYBOOKS} <= names
    assert {"roles/agent/files/pico_agent/__main__.py", "roles/agent/files/pico_agent/_service_spec.py"} <= names
    assert not any("__pycache__" in name or name.startswith("tests/output") or name.endswith(".pyz") for name in names)

    installed = tmp_path / "installed/ansible_collections/pico/cloud"
    from_checkout = agent_zipapp(REPO / "runtime/src/pico_agent", tmp_path / "checkout.pyz")
    assert agent_zipapp(installed / "roles/agent/files/pico_agent", tmp_path / "installed.pyz") == from_checkout, \
        "the installed collection's agent is not the one this checkout builds"
    assert not list(COLLECTION.rglob("*.pyz")), "the build wrote into the checkout"

    # The playbooks run from the installed copy with no file of this repository beside them and
    # Ansible's stock configuration: every one parses, and a run reaches the collection's roles
    # (here its check that the inventory names boards).
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ansible.cfg").write_text("")
    (outside / "hosts.yml").write_text("all:\n  hosts:\n    printer-1:\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(outside / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "installed"),
           "ANSIBLE_FORCE_COLOR": "0"}
    playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    parsed = subprocess.run([playbook, "--syntax-check", "-i", "hosts.yml", *(f"pico.cloud.{name}" for name in PLAYBOOKS)],
                            cwd=outside, env=env, capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    ran = subprocess.run([playbook, "-i", "hosts.yml", "pico.cloud.status"], cwd=outside, env=env, capture_output=True,
                         text=True)
    assert ran.returncode == 2 and "No boards to work on" in " ".join(ran.stdout.split()), ran.stdout + ran.stderr


def test_an_install_from_git_carries_the_same_agent(tmp_path):
    """`ansible-galaxy collection install git+<repository>#/collections/ansible_collections/pico/cloud`,
    as a user installs from the repository, from a clone of this one's committed tree."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True, capture_output=True)
    source = f"git+file://{clone}#/collections/ansible_collections/pico/cloud"
    result = subprocess.run([GALAXY, "collection", "install", source, "-p", str(tmp_path / "installed"), "--no-deps"],
                            capture_output=True, text=True, env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    installed = tmp_path / "installed/ansible_collections/pico/cloud"
    assert (installed / "roles/agent/files/pico_agent/_plan_document.py").is_file()
    assert agent_zipapp(installed / "roles/agent/files/pico_agent", tmp_path / "installed.pyz") == \
        agent_zipapp(clone / "runtime/src/pico_agent", tmp_path / "clone.pyz")


def test_the_readmes_offline_install_works_as_written(tmp_path):
    """The tarball install the README and the collection's README give, run as written in a fresh
    project with a home of its own and no ansible.cfg: the playbooks are then found by name."""
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, str(REPO / "scripts/build_collection.py"), "--output-dir", str(dist)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    shutil.copy(built.stdout.splitlines()[0], project)
    (project / "hosts.yml").write_text("all:\n  hosts:\n    printer-1:\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(HOME=str(home), ANSIBLE_FORCE_COLOR="0", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    for readme in (REPO / "README.md", COLLECTION / "README.md"):
        commands = [line.strip(" `").split("  #")[0].strip(" `") for line in readme.read_text().splitlines()
                    if "ansible-galaxy collection install --offline" in line]
        assert len(commands) == 1, f"{readme}: one offline install command expected, found {commands}"
        shutil.rmtree(home / ".ansible", ignore_errors=True)
        installed = subprocess.run(commands[0], shell=True, cwd=project, env=env, capture_output=True, text=True)
        assert installed.returncode == 0 and "WARNING" not in installed.stdout + installed.stderr, \
            f"{readme}: {commands[0]}\n{installed.stdout}{installed.stderr}"
        ran = subprocess.run(["ansible-playbook", "-i", "hosts.yml", "pico.cloud.status"], cwd=project, env=env,
                             capture_output=True, text=True)
        assert ran.returncode == 2 and "No boards to work on" in " ".join(ran.stdout.split()), \
            f"{readme}: {commands[0]}, then ansible-playbook pico.cloud.status:\n{ran.stdout}{ran.stderr}"
