"""A run limited to some mesh members (--limit) is refused where the members outside it would
need to learn something from it; otherwise it keeps their entries as last known."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter import mesh_limit_problems as limit_plugin

mesh_limit_problems = limit_plugin.FilterModule().filters()["mesh_limit_problems"]

KEY_A, KEY_B, KEY_C, KEY_B2 = ("A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "=", "D" * 43 + "=")
MEMBERS = ["a", "b", "c"]


def fresh(address, key=KEY_A, applied="applied 10.99.0.1 51820", port=51820, shook_hands=(KEY_B, KEY_C)):
    return {"address": address, "endpoint": "172.28.10.11", "port": port, "public_key": key, "key_time": 100,
            "applied": applied, "shook_hands": list(shook_hands)}


def record(name, key, address):
    return f"peer {name} 100 {key} {address} 172.28.10.20:51820"


A_HOLDS_B_AND_C = {"a": [record("b", KEY_B, "10.99.0.2"), record("c", KEY_C, "10.99.0.3")]}


def test_a_run_that_is_not_limited_has_none():
    """Members away (unreachable now) are in the play: they are not outside it, whatever is known of them."""
    assert mesh_limit_problems(MEMBERS, MEMBERS, {"a": fresh("10.99.0.1", key=None, applied="")}, {"a": []}) == []


def test_a_member_in_the_mesh_already_may_run_alone():
    assert mesh_limit_problems(MEMBERS, ["a"], {"a": fresh("10.99.0.1")}, A_HOLDS_B_AND_C) == []


def test_an_outside_member_another_member_in_the_run_holds_is_known():
    records = {"a": [record("b", KEY_B, "10.99.0.2")], "c": [record("b", KEY_B, "10.99.0.2")]}
    both = {"a": fresh("10.99.0.1", shook_hands=[]),
            "c": fresh("10.99.0.3", key=KEY_C, applied="applied 10.99.0.3 51820", shook_hands=[KEY_B])}
    assert mesh_limit_problems(MEMBERS, ["a", "c"], both, records) == []


def test_a_member_without_a_key_yet_is_refused():
    problems = mesh_limit_problems(MEMBERS, ["a"], {"a": fresh("10.99.0.1", key=None)}, A_HOLDS_B_AND_C)
    assert problems == ["a has no WireGuard key yet: run without --limit, so b, c learn it"]


def test_a_member_that_never_ran_the_mesh_is_refused():
    problems = mesh_limit_problems(MEMBERS, ["a"], {"a": fresh("10.99.0.1", applied="")}, A_HOLDS_B_AND_C)
    assert problems == ["a has not joined the mesh yet: run without --limit, so b, c learn it"]


@pytest.mark.parametrize("address, port", [("10.99.0.7", 51820), ("10.99.0.1", 51900)])
def test_a_member_whose_address_or_port_changes_is_refused(address, port):
    problems = mesh_limit_problems(MEMBERS, ["a", "b"], {"a": fresh(address, port=port)}, A_HOLDS_B_AND_C)
    assert problems == [f"a would change its mesh address or port, from 10.99.0.1 port 51820 to {address} port {port}: "
                        "run without --limit, so c learns it"]


def test_an_outside_member_no_member_in_the_run_holds_is_refused():
    problems = mesh_limit_problems(MEMBERS, ["a"], {"a": fresh("10.99.0.1")}, {"a": [record("b", KEY_B, "10.99.0.2")]})
    assert problems == ["no member in this run holds a WireGuard peer entry for c, outside --limit (the members in it "
                        "never joined the mesh with it): run without --limit"]


def test_bad_input_is_named():
    with pytest.raises(AnsibleFilterError, match="needs the members"):
        mesh_limit_problems("a,b", ["a"], {}, {})


def test_an_outside_member_no_member_in_the_run_shook_hands_with_is_refused():
    """b's key may have changed while a was away (a holds the older one), or b is down: a handshake
    at the key held proves it current."""
    problems = mesh_limit_problems(MEMBERS, ["a"], {"a": fresh("10.99.0.1", shook_hands=[KEY_C])}, A_HOLDS_B_AND_C)
    assert problems == ["no member in this run has shaken hands with b (outside --limit) over the mesh in the last 3 "
                        "minutes, so the entry they hold is not known to be current (down, or a key changed while they "
                        "were away): run without --limit"]


def test_the_newest_key_held_is_the_one_that_must_have_shaken_hands():
    """a holds b's older key, c its newer one (a was away during b's rotation): c's handshake at the
    newer key is what counts, and a is given that key."""
    records = {"a": [record("b", KEY_B, "10.99.0.2").replace(" 100 ", " 50 ")], "c": [record("b", KEY_B2, "10.99.0.2")]}
    run = {"a": fresh("10.99.0.1", shook_hands=[]),
           "c": fresh("10.99.0.3", key=KEY_C, applied="applied 10.99.0.3 51820", shook_hands=[KEY_B2])}
    assert mesh_limit_problems(MEMBERS, ["a", "c"], run, records) == []
    run["c"]["shook_hands"] = [KEY_B]
    assert "has shaken hands with b " in mesh_limit_problems(MEMBERS, ["a", "c"], run, records)[0]
