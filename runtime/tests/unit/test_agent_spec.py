import json

import pytest
from pico_agent.spec import SpecError, load_desired, load_spec_file, parse_memory, parse_spec


def test_a_container_service():
    spec = parse_spec({"name": "web", "image": "pico/demo:1.0.0", "port": 8080, "replicas": 2, "memory": "64m",
                       "env": {"MODE": "prod", "WORKERS": 2}, "health": {"type": "http", "path": "/healthz"}})
    assert not spec.external
    assert spec.memory == 64 * 1024 * 1024
    assert spec.env == (("MODE", "prod"), ("WORKERS", "2"))
    assert [spec.replica_port(i) for i in range(2)] == [8080, 8081]
    assert spec.health.retries == 3


def test_a_service_without_image_is_published_only():
    spec = parse_spec({"name": "ssh", "port": 22, "health": {"type": "tcp"}})
    assert spec.external and spec.replicas == 1


def test_the_digest_follows_every_field_that_shapes_the_container():
    base = {"name": "web", "image": "pico/demo:1.0.0", "port": 8080}
    digests = {parse_spec(base).digest, parse_spec({**base, "image": "pico/demo:2.0.0"}).digest,
               parse_spec({**base, "env": {"A": "1"}}).digest, parse_spec({**base, "memory": "32m"}).digest}
    assert len(digests) == 4
    assert parse_spec(dict(base)).digest == parse_spec(dict(base)).digest


@pytest.mark.parametrize("data, message", [
    ({"name": "Web"}, "name = 'Web'"),
    ({"name": "web", "image": "a b"}, "image = 'a b'"),
    ({"name": "web", "image": "x", "replicas": 17}, "replicas = 17"),
    ({"name": "web", "image": "x", "port": 0}, "port = 0"),
    ({"name": "web", "image": "x", "port": 65535, "replicas": 2}, "runs past 65535"),
    ({"name": "web", "image": "x", "env": {"1BAD": "x"}}, "env.1BAD"),
    ({"name": "web", "image": "x", "port": 80, "env": {"PORT": "81"}}, "env.PORT is set by the agent"),
    ({"name": "web", "image": "x", "memory": "1k"}, "under 6 MiB"),
    ({"name": "web", "image": "x", "memory": "lots"}, "memory = 'lots'"),
    ({"name": "web", "image": "x", "network": "overlay"}, "network = 'overlay'"),
    ({"name": "web", "image": "x", "port": 80, "container_port": 80}, "container_port applies to network bridge"),
    ({"name": "web", "image": "x", "health": {"type": "http"}}, "needs port"),
    ({"name": "web", "image": "x", "health": {"type": "command"}}, "needs health.command"),
    ({"name": "web", "image": "x", "port": 1, "health": {"type": "tcp", "interval": 1, "timeout": 5}},
     "must not exceed health.interval"),
    ({"name": "web", "image": "x", "health": {"kind": "tcp"}}, "unknown key health.kind"),
    ({"name": "ssh", "port": 22, "env": {"A": "1"}}, "without image is run by the node itself"),
    ({"name": "ssh", "port": 22, "replicas": 2}, "one instance per node"),
    ({"name": "web", "imgae": "x"}, "unknown key imgae"),
])
def test_bad_specs_are_refused_with_the_reason(data, message):
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert message in str(err.value)


def test_memory_sizes():
    assert parse_memory("128M") == 128 * 1024**2
    assert parse_memory("1g") == 1024**3
    assert parse_memory(8 * 1024**2) == 8 * 1024**2


def test_the_file_name_must_match_the_service(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"name": "api", "image": "x"}))
    with pytest.raises(SpecError, match="file is named web.json"):
        load_spec_file(path)


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps({"name": "good", "image": "x"}))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "huge.json").write_text(" " * 70000)
    (tmp_path / "notes.txt").write_text("ignored")
    state = load_desired(tmp_path)
    assert list(state.services) == ["good"]
    assert "not valid JSON" in state.errors["bad"]
    assert "larger than" in state.errors["huge"]
    assert [name for name, _, _ in state.stamp] == ["bad.json", "good.json", "huge.json"]


def test_a_missing_directory_is_an_empty_desired_state(tmp_path):
    state = load_desired(tmp_path / "nope")
    assert state.services == {} and state.errors == {}
