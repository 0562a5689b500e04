"""pico.cloud.service_logs against this machine's real dockerd: the last lines of each container
the agent runs for a service, named as the agent names them (replicas and takeovers), with the
service's env values masked."""
import json
import subprocess
import uuid

import pytest
from agentlab import DOCKER_SOCKET, load_demo_image
from ansible_collections.pico.cloud.plugins.module_utils._docker_api import DockerAPI
from ansible_collections.pico.cloud.plugins.modules.service_logs import MASK, as_text, env_values, read

SECRET = "hunter2-on-stdout"


@pytest.fixture
def containers(tmp_path):
    """Two containers of a service as an agent runs them on one node: its replica 0, and slot 1 of
    a failed board it took over (replica number 2); each prints lines, one of them the secret."""
    image = load_demo_image()
    service = f"logs{uuid.uuid4().hex[:8]}"  # this dockerd is shared: a service name of its own
    started = []
    for name, replica in ((f"pico-{service}-0", 0), (f"pico-{service}-for-pizero-2-1", 2)):
        # The secret last, on stderr, once the engine has taken stdout's lines (it reads the two
        # pipes apart: lines written within the same instant may come in either order).
        script = (f"import sys, time\nfor i in range(60): print('{name} line', i)\n"
                  f"time.sleep(0.5)\nprint('token', '{SECRET}', file=sys.stderr)")
        subprocess.run(["docker", "run", "-d", "--name", name, "--label", f"pico.service={service}",
                        "--label", f"pico.replica={replica}", "--entrypoint", "python3", image, "-u", "-c", script],
                       check=True, capture_output=True)
        started.append(name)
    subprocess.run(["docker", "wait", *started], check=True, capture_output=True)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / f"{service}.json").write_text(json.dumps({"name": service,
                                                                       "env": {"TOKEN": SECRET, "DEBUG": "1"}}))
    (tmp_path / "plan.json").write_text(json.dumps({"services": {service: {"specs": {"amd64": {"env": {"K": "other-secret"}}}}}}))
    yield tmp_path, service
    subprocess.run(["docker", "rm", "-f", *started], check=False, capture_output=True)


def test_each_containers_last_lines_come_named_as_replica_or_takeover_and_secrets_masked(containers):
    files, service = containers
    secrets = env_values(service, str(files / "services"), str(files / "plan.json"))
    assert secrets == [SECRET, "other-secret"]  # values of 4 characters or more, the longest first
    api = DockerAPI(DOCKER_SOCKET, timeout=30)
    found = read(api, service, 5, secrets)
    assert [(i["replica"], i["takeover_of"], i["slot"], i["state"]) for i in found] == [
        (0, None, None, "exited"), (2, "pizero-2", 1, "exited")]
    for instance in found:
        # The newest 5 of stdout and stderr together, oldest first, each after its timestamp.
        endings = [line.split("Z ", 1)[1].split(" ", 1)[1] for line in instance["lines"]]
        assert endings == ["line 56", "line 57", "line 58", "line 59", MASK], instance["lines"]
        assert all(SECRET not in line for line in instance["lines"])
    text = as_text(service, "pizero2-1", found)
    assert text.startswith(f"== {service} replica 0 on pizero2-1 (exited, container pico-{service}-0) ==\n")
    assert f"== {service} for pizero-2 slot 1 on pizero2-1 (exited, container pico-{service}-for-pizero-2-1) ==" in text
    assert SECRET not in text
