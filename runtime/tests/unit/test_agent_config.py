from pathlib import Path

import pytest
from pico_agent.config import ConfigError, load_config, parse_config

PATH = Path("/etc/pico-agent/agent.toml")


def test_defaults_fill_what_the_file_leaves_out():
    config = parse_config({"node_name": "pz-1"}, PATH)
    assert config.bind_addresses == ("127.0.0.1",)
    assert (config.http_port, config.dns_port, config.domain) == (8500, 8600, "pico")
    assert config.serf.rpc_host_port == ("127.0.0.1", 7373)
    assert config.supervisor.docker_socket == Path("/run/docker.sock")
    # docs/agent.md: restarts back off from 1 s, doubling, at most 60 s, and reset after 60 s of health
    sup = config.supervisor
    assert (sup.backoff_initial, sup.backoff_max, sup.backoff_reset) == (1.0, 60.0, 60.0)


def test_a_full_file_loads(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('node_name = "pz-2"\nbind_addresses = ["127.0.0.1", "10.99.3.4"]\ndomain = "edge.example"\n'
                    '[serf]\nrpc_address = "127.0.0.1:7373"\nrpc_auth_file = "/etc/serf/rpc.json"\n'
                    "[supervisor]\ninterval = 5\nbackoff_max = 30\n")
    config = load_config(path)
    assert config.bind_addresses == ("127.0.0.1", "10.99.3.4")
    assert config.domain == "edge.example"
    assert config.serf.rpc_auth_file == Path("/etc/serf/rpc.json")
    assert config.supervisor.backoff_max == 30.0


@pytest.mark.parametrize("data, names", [
    ({"node_name": "Bad_Name"}, "node_name = 'Bad_Name'"),
    ({"bind_addresses": ["0.0.0.0.1"]}, "bind_addresses = '0.0.0.0.1'"),
    ({"http_port": 70000}, "http_port = 70000"),
    ({"http_port": "80"}, "http_port = '80'"),
    ({"dns_port": True}, "dns_port = True"),
    ({"serf": {"rpc_address": "localhost"}}, "serf.rpc_address = 'localhost'"),
    ({"supervisor": {"interval": 0}}, "supervisor.interval = 0"),
    ({"supervisor": {"backoff_initial": 10, "backoff_max": 5}}, "supervisor.backoff_max = 5"),
    ({"log_level": "loud"}, "log_level = 'loud'"),
    ({"colour": "blue"}, "unknown key colour"),
    ({"serf": {"encrypt": "x"}}, "unknown key serf.encrypt"),
])
def test_errors_name_the_file_the_key_and_the_value(data, names):
    with pytest.raises(ConfigError) as err:
        parse_config({"node_name": "pz-1", **data}, PATH)
    assert str(err.value).startswith(f"{PATH}: ")
    assert names in str(err.value)


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("node_name = \n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(broken)
