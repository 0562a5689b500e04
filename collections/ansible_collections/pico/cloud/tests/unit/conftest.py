"""Run modules as Ansible runs them: a separate Python process given its arguments as JSON."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[5]


@pytest.fixture
def run_module(tmp_path):
    def run(module, /, check=False, diff=False, _prefix=(), **args):  # positional-only: modules may take `name`
        """_prefix: a command the module runs under (e.g. in a mount namespace)."""
        args_file = tmp_path / f"{module}-args-{uuid.uuid4().hex}.json"  # one per run: runs may overlap
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}}))
        # Beside whatever the runner put there (ansible-test units puts ansible-core's path).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([*_prefix, sys.executable, "-m", f"ansible_collections.pico.cloud.plugins.modules.{module}", str(args_file)],
                              capture_output=True, text=True, env=env, check=False)
        result = json.loads(proc.stdout)
        result["_raw"] = proc.stdout + proc.stderr
        return result

    return run


def build_image_archive(path, name, payload=b"hello\n", oci=False, created="2024-01-01T00:00:00Z"):
    """Write a one-layer image archive (docker save format, or an OCI layout) and return its image ID.

    The image holds one file and no program: enough to load, tag, list and prune, which is what
    the image modules do; running containers is tested on lab nodes with the demo service.
    """
    import hashlib
    import io
    import tarfile

    def add(tar, member_name, data):
        info = tarfile.TarInfo(member_name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w") as layer:
        add(layer, "payload", payload)
    layer_bytes = layer_buffer.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                         "config": {"Cmd": ["/payload"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    with tarfile.open(path, mode="w") as archive:
        if oci:
            manifest = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + image_id, "size": len(config)},
                                   "layers": [{"digest": "sha256:" + diff_id, "size": len(layer_bytes)}]}).encode()
            manifest_digest = hashlib.sha256(manifest).hexdigest()
            index = json.dumps({"schemaVersion": 2, "manifests": [{
                "digest": "sha256:" + manifest_digest, "size": len(manifest),
                "annotations": {"io.containerd.image.name": name}}]}).encode()
            for blob in (layer_bytes, config, manifest):
                add(archive, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
            add(archive, "index.json", index)
            add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        else:
            add(archive, diff_id + "/layer.tar", layer_bytes)
            add(archive, image_id + ".json", config)
            manifest = [{"Config": image_id + ".json", "RepoTags": [name], "Layers": [diff_id + "/layer.tar"]}]
            add(archive, "manifest.json", json.dumps(manifest).encode())
    return "sha256:" + image_id


@pytest.fixture
def image_archive(tmp_path):
    """image_archive(name, payload=..., **kwargs) -> (path, image_id) of a new one-layer image
    archive. A test's images are its own: the payload carries a token of the test, since tests
    run side by side (xdist workers, the suite's lanes) on one dockerd, and one whose image had
    the same ID as another's found it present, or lost it to the other's cleanup."""
    counter = [0]
    token = uuid.uuid4().hex.encode()

    def make(name, payload=b"hello\n", **kwargs):
        counter[0] += 1
        path = tmp_path / ("image-%d.tar" % counter[0])
        return path, build_image_archive(path, name, payload=payload + b"\n" + token, **kwargs)

    return make
