"""wireguard_peers: the running interface is read with `wg show IF dump` and changed with one
`wg set`, naming only the peers that differ. `wg` here is a stand-in on PATH that prints a dump
and records every call (the lab's tests run the module against real wireguard-go)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os

import pytest

from ansible_collections.pico.cloud.plugins.module_utils._wireguard import config_peers, dump_peers, peer_changes


def key(seed):
    return base64.b64encode(bytes([seed]) * 32).decode()


PRIVATE = key(1)
NATIVE_2, PIZERO_1, GONE = key(2), key(3), key(4)
DUMP_HEAD = "%s\t%s\t51820\toff\n" % (PRIVATE, key(9))


def dump_line(public_key, endpoint, allowed, keepalive="25"):
    return "\t".join([public_key, "(none)", endpoint, allowed, "1796634297", "100", "200", keepalive]) + "\n"


def config(*peers):
    text = "[Interface]\nAddress = 10.99.0.1/16\nListenPort = 51820\nPostUp = wg set %i private-key /etc/wireguard/wg0.key\n"
    for name, public_key, address, endpoint in peers:
        text += ("\n[Peer]\n# %s (key made 1796630000)\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s\n"
                 "PersistentKeepalive = 25\n" % (name, public_key, address, endpoint))
    return text


@pytest.fixture
def wg(tmp_path, monkeypatch):
    """A `wg` that prints tmp_path/dump for `show`, logs each call to tmp_path/calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "wg"
    script.write_text('#!/bin/sh\necho "$@" >> %s/calls\n[ "$1" = show ] && cat %s/dump\nexit 0\n' % (tmp_path, tmp_path))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))

    def calls():
        path = tmp_path / "calls"
        return path.read_text().splitlines() if path.exists() else []
    return calls


def test_adding_a_peer_sets_that_peer_alone(run_module, wg, tmp_path):
    (tmp_path / "dump").write_text(DUMP_HEAD + dump_line(NATIVE_2, "172.28.60.12:51820", "10.99.0.2/32"))
    conf = tmp_path / "wg0.conf"
    conf.write_text(config(("native-2", NATIVE_2, "10.99.0.2", "172.28.60.12:51820"),
                           ("pizero-1", PIZERO_1, "10.99.0.3", "172.28.60.13:51820")))
    result = run_module("wireguard_peers", interface="wg0", config=str(conf))
    assert result["changed"] is True and result["added"] == ["pizero-1"], result
    assert result["updated"] == [] and result["removed"] == []
    assert wg()[-1] == ("set wg0 peer %s endpoint 172.28.60.13:51820 persistent-keepalive 25 allowed-ips 10.99.0.3/32"
                        % PIZERO_1)
    assert NATIVE_2 not in wg()[-1]  # the running tunnel is not touched
    assert PRIVATE not in result["_raw"]


def test_a_peer_as_declared_changes_nothing_and_runs_no_set(run_module, wg, tmp_path):
    (tmp_path / "dump").write_text(DUMP_HEAD + dump_line(NATIVE_2, "172.28.60.12:51820", "10.99.0.2/32"))
    conf = tmp_path / "wg0.conf"
    conf.write_text(config(("native-2", NATIVE_2, "10.99.0.2", "172.28.60.12:51820")))
    result = run_module("wireguard_peers", interface="wg0", config=str(conf))
    assert result["changed"] is False, result
    assert [call for call in wg() if call.startswith("set")] == []


def test_check_mode_reports_the_change_and_sets_nothing(run_module, wg, tmp_path):
    (tmp_path / "dump").write_text(DUMP_HEAD + dump_line(GONE, "172.28.60.19:51820", "10.99.0.9/32"))
    conf = tmp_path / "wg0.conf"
    conf.write_text(config())
    result = run_module("wireguard_peers", check=True, diff=True, interface="wg0", config=str(conf))
    assert result["changed"] is True and result["removed"] == [GONE], result
    assert GONE in result["diff"]["before"] and result["diff"]["after"] == ""
    assert [call for call in wg() if call.startswith("set")] == []


def test_a_preshared_key_is_refused_before_anything_changes(run_module, wg, tmp_path):
    (tmp_path / "dump").write_text(DUMP_HEAD)
    conf = tmp_path / "wg0.conf"
    conf.write_text(config(("native-2", NATIVE_2, "10.99.0.2", "172.28.60.12:51820")) + "PresharedKey = %s\n" % key(7))
    result = run_module("wireguard_peers", interface="wg0", config=str(conf))
    assert result["failed"] is True
    assert "line 12: PresharedKey in a [Peer] section is not applied by this module" in result["msg"], result["msg"]
    assert "nothing was changed" in result["msg"] and key(7) not in result["_raw"]
    assert wg() == []


def test_a_rotated_key_is_added_before_the_old_one_is_removed():
    """The address moves to the new key in the same `wg set`, which applies peers in order."""
    running = dump_peers(DUMP_HEAD + dump_line(PIZERO_1, "172.28.60.13:51820", "10.99.0.3/32"))
    wanted = config_peers(config(("pizero-1", GONE, "10.99.0.3", "172.28.60.13:51820")))
    args, report = peer_changes(wanted, running)
    assert args == ["peer", GONE, "endpoint", "172.28.60.13:51820", "persistent-keepalive", "25",
                    "allowed-ips", "10.99.0.3/32", "peer", PIZERO_1, "remove"]
    assert report == {"added": ["pizero-1"], "updated": [], "removed": [PIZERO_1]}


def test_only_what_differs_of_a_peer_is_set():
    running = dump_peers(DUMP_HEAD + dump_line(NATIVE_2, "172.28.60.99:51820", "10.99.0.2/32", keepalive="off"))
    wanted = config_peers(config(("native-2", NATIVE_2, "10.99.0.2", "172.28.60.12:51820")))
    args, report = peer_changes(wanted, running)
    assert args == ["peer", NATIVE_2, "endpoint", "172.28.60.12:51820", "persistent-keepalive", "25"]
    assert report["updated"] == ["native-2"]
    # A DNS name in the file matches the address it runs at: nothing to set.
    named = config_peers(config(("native-2", NATIVE_2, "10.99.0.2", "native-2.lan:51820")))
    running = dump_peers(DUMP_HEAD + dump_line(NATIVE_2, "172.28.60.12:51820", "10.99.0.2/32"))
    assert peer_changes(named, running, lambda endpoint: [endpoint, "172.28.60.12:51820"]) == (
        [], {"added": [], "updated": [], "removed": []})


@pytest.mark.parametrize(("text", "message"), [
    ("[Peer]\nAllowedIPs = 10.99.0.2/32\n", "the [Peer] section at line 1 has no PublicKey"),
    ("[Peer]\nPublicKey = nope\n", "line 2: PublicKey is not a WireGuard key"),
    ("[Peer]\nPublicKey = %s\nAllowedIPs = 10.99.0.300/32\n" % NATIVE_2, "line 3: '10.99.0.300/32' is not an IP network"),
    ("[Peer]\nPublicKey = %s\nPersistentKeepalive = soon\n" % NATIVE_2, "line 3: PersistentKeepalive 'soon' is not a number"),
])
def test_a_file_that_cannot_be_applied_names_the_line(text, message):
    with pytest.raises(ValueError) as error:
        config_peers(text)
    assert message in str(error.value)
