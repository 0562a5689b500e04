"""The node-container recipe (systemd as PID 1 without --privileged) is written where each tool
needs it: lab/cluster.py's docker run flags and each Molecule scenario's anchored platform
(Molecule has no include). This keeps the copies from drifting apart."""
from pathlib import Path

import yaml

from lab.cluster import NODE_RUN_FLAGS

REPO = Path(__file__).resolve().parents[2]


def lab_recipe():
    flags, recipe = list(NODE_RUN_FLAGS), {"capabilities": [], "security_opts": [], "volumes": [], "tmpfs": [],
                                           "devices": [], "env": {}}
    names = {"--cap-add": "capabilities", "--security-opt": "security_opts", "-v": "volumes", "--tmpfs": "tmpfs",
             "--device": "devices"}
    while flags:
        flag, value = flags.pop(0), flags.pop(0)
        if flag == "-e":
            key, _, val = value.partition("=")
            recipe["env"][key] = val
        elif flag == "--stop-signal":
            recipe["stop_signal"] = value
        elif flag == "--cgroupns":
            recipe["cgroupns_mode"] = value
        else:
            recipe[names[flag]].append(value)
    return recipe


def test_every_molecule_platform_runs_a_node_as_the_lab_does():
    lab = lab_recipe()
    for scenario in ("default", "containers"):
        for platform in yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())["platforms"]:
            seen = {key: platform.get(key) for key in ("capabilities", "security_opts", "volumes", "tmpfs", "devices",
                                                      "stop_signal")}
            assert seen == {key: lab[key] for key in seen}, (scenario, platform["name"])
            assert platform["env"]["container"] == lab["env"]["container"]
            assert platform["command"] == "/lib/systemd/systemd" and platform["override_command"] is True
