"""Run modules as Ansible runs them: a separate Python process given its arguments as JSON."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[5]


@pytest.fixture
def run_module(tmp_path):
    def run(name, check=False, diff=False, **args):
        args_file = tmp_path / f"{name}-args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}}))
        env = {**os.environ, "PYTHONPATH": str(COLLECTIONS)}
        proc = subprocess.run([sys.executable, "-m", f"ansible_collections.pico.cloud.plugins.modules.{name}", str(args_file)],
                              capture_output=True, text=True, env=env, check=False)
        result = json.loads(proc.stdout)
        result["_raw"] = proc.stdout + proc.stderr
        return result

    return run
