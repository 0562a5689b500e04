"""A member the run does not reach keeps the peer entry its peers' own configuration holds."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter import mesh_peers as peers_plugin

mesh_peers = peers_plugin.FilterModule().filters()["mesh_peers"]

KEY_A, KEY_B, KEY_C, KEY_B2 = ("A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "=", "D" * 43 + "=")


def fresh(address, endpoint, key, made=100):
    return {"address": address, "endpoint": endpoint, "port": "51820", "public_key": key, "key_time": made}


def record(name, key, address, endpoint, made=100):
    return f"peer {name} {made} {key} {address} {endpoint}:51820"


def test_every_member_in_the_play_is_taken_fresh():
    found = mesh_peers(["a", "b"], {"a": fresh("10.99.0.1", "172.28.10.11", KEY_A), "b": fresh("10.99.0.2", "172.28.10.12", KEY_B)},
                       {"a": [record("b", KEY_C, "10.99.0.9", "1.2.3.4")], "b": []})
    assert found == {"unknown": [], "peers": {
        "a": {"address": "10.99.0.1", "endpoint": "172.28.10.11", "port": 51820, "public_key": KEY_A, "key_time": 100},
        "b": {"address": "10.99.0.2", "endpoint": "172.28.10.12", "port": 51820, "public_key": KEY_B, "key_time": 100}}}


def test_a_member_away_keeps_the_entry_its_peers_hold():
    found = mesh_peers(["a", "b", "c"], {"a": fresh("10.99.0.1", "172.28.10.11", KEY_A), "c": fresh("10.99.0.3", "172.28.10.13", KEY_C)},
                       {"a": ["lan 172.28.10.11/24", record("b", KEY_B, "10.99.0.2", "172.28.10.12", made=50)],
                        "c": [record("b", KEY_B, "10.99.0.2", "172.28.10.12", made=50)]})
    assert found["peers"]["b"] == {"address": "10.99.0.2", "endpoint": "172.28.10.12", "port": 51820, "public_key": KEY_B,
                                   "key_time": 50, "last_known": True}
    assert found["unknown"] == []


def test_of_differing_records_the_newest_key_wins_then_the_most_held():
    """A peer that was away during b's rotation holds b's older key: the newer one wins, however few hold it."""
    older, newer = record("b", KEY_B, "10.99.0.2", "172.28.10.12", made=50), record("b", KEY_B2, "10.99.0.2", "172.28.10.12", made=90)
    found = mesh_peers(["a", "b", "c", "d"], {}, {"a": [older], "c": [older], "d": [newer]})
    assert found["peers"]["b"]["public_key"] == KEY_B2
    same_age = record("b", KEY_B2, "10.99.0.2", "172.28.10.12", made=50)
    assert mesh_peers(["a", "b", "c", "d"], {}, {"a": [older], "c": [older], "d": [same_age]})["peers"]["b"]["public_key"] == KEY_B
    # A tie in both is decided the same way whatever order the records come in.
    tie = [mesh_peers(["a", "b", "c"], {}, records)["peers"]["b"]["public_key"]
           for records in ({"a": [older], "c": [same_age]}, {"c": [same_age], "a": [older]})]
    assert tie == [KEY_B, KEY_B]


def test_a_member_no_one_holds_is_unknown_and_a_node_never_vouches_for_itself():
    found = mesh_peers(["a", "new"], {"a": fresh("10.99.0.1", "172.28.10.11", KEY_A)},
                       {"a": [], "new": [record("new", KEY_B, "10.99.0.5", "172.28.10.15")]})
    assert found == {"peers": {"a": found["peers"]["a"]}, "unknown": ["new"]}


def test_a_member_in_the_play_without_a_key_yet_is_taken_from_records_or_unknown():
    """A dry run of a first run: the key check found no key to report."""
    found = mesh_peers(["a", "b"], {"a": fresh("10.99.0.1", "172.28.10.11", None), "b": fresh("10.99.0.2", "172.28.10.12", KEY_B)},
                       {"a": [], "b": []})
    assert sorted(found["peers"]) == ["b"] and found["unknown"] == ["a"]


@pytest.mark.parametrize("line", [
    "peer b 50 not-a-key 10.99.0.2 172.28.10.12:51820",
    "peer b 50 " + KEY_B + " 10.99.0.2 172.28.10.12",
    "peer b 50 " + KEY_B + " 10.99.0.2",
    "unreachable 172.28.10.12",
])
def test_lines_that_are_not_a_whole_peer_record_are_ignored(line):
    assert mesh_peers(["a", "b"], {}, {"a": [line]}) == {"peers": {}, "unknown": ["a", "b"]}


def test_an_ipv6_endpoint_is_read_without_brackets():
    found = mesh_peers(["a", "b"], {}, {"a": [f"peer b 0 {KEY_B} fd00::2 [2001:db8::12]:51820"]})
    assert found["peers"]["b"]["endpoint"] == "2001:db8::12" and found["peers"]["b"]["port"] == 51820


def test_bad_input_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="a lacks endpoint, port"):
        mesh_peers(["a"], {"a": {"address": "10.99.0.1"}}, {})
    with pytest.raises(AnsibleFilterError, match="needs the members"):
        mesh_peers("a", {}, {})
