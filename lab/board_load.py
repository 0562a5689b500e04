"""Load on a lab service while something changes it, from this machine: lab/load_client.py runs
on a board (a node container) and counts what the service answers.

    with BoardLoad("pico-lab-pizero2-1", "web", 8090) as load:
        ...                      # a rollout
    load.result                  # {"ok", "failed", "errors", "versions"}
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

CLIENT_SCRIPT = Path(__file__).with_name("load_client.py")
ON_BOARD = "/root/load_client.py"
RESULT, STOP = "/root/load.json", "/root/load.stop"


class BoardLoad:
    def __init__(self, container: str, service: str, port: int):
        self.container, self.service, self.port = container, service, port
        self.result: dict = {}

    def _exec(self, *cmd: str, **kwargs) -> str:
        return subprocess.run(["docker", "exec", *kwargs.pop("flags", ()), self.container, *cmd],
                              capture_output=True, text=True, check=True, **kwargs).stdout

    def __enter__(self) -> "BoardLoad":
        self._exec("rm", "-f", STOP, RESULT)
        self._exec("sh", "-c", f"cat > {ON_BOARD}", input=CLIENT_SCRIPT.read_text(), flags=("-i",))
        self.proc = subprocess.Popen(["docker", "exec", self.container, "python3", ON_BOARD,
                                      self.service, str(self.port), RESULT, STOP])
        time.sleep(3)  # the client's first requests are under way before the change starts
        return self

    def __exit__(self, *exc) -> bool:
        self._exec("touch", STOP)
        self.proc.wait(timeout=60)
        self.result = json.loads(self._exec("cat", RESULT))
        return False
