"""A board away during a key rotation is found by the keys it holds, before a deploy uses it."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter import mesh_keys_missing as plugin

mesh_keys_missing = plugin.FilterModule().filters()["mesh_keys_missing"]

KEY_A, KEY_B, KEY_C, KEY_B_OLD = ("A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "=", "D" * 43 + "=")
CURRENT = {"a": KEY_A, "b": KEY_B, "c": KEY_C}


def test_a_board_holding_every_current_key_misses_none():
    assert mesh_keys_missing(f"{KEY_B}\n{KEY_C}\n", CURRENT, skip="a") == []


def test_a_board_away_during_a_rotation_misses_the_rotated_node():
    # `wg show wg0 peers` as the probe joins it: one line, keys separated by spaces.
    assert mesh_keys_missing(f"{KEY_B_OLD} {KEY_C}", CURRENT, skip="a") == ["b"]


def test_a_woken_board_is_checked_against_every_node_of_the_play():
    assert mesh_keys_missing([KEY_A], CURRENT) == ["b", "c"]


def test_the_board_itself_is_skipped_and_nodes_without_a_mesh_never_count():
    assert mesh_keys_missing(KEY_B, {"a": KEY_A, "b": KEY_B, "c": ""}, skip=["a"]) == []
    assert mesh_keys_missing(KEY_B, {"a": KEY_A, "b": KEY_B, "c": None}, skip=["a"]) == []


def test_a_board_that_holds_no_peers_misses_every_node_with_a_key():
    assert mesh_keys_missing("", CURRENT, skip="a") == ["b", "c"]


def test_bad_input_is_named():
    with pytest.raises(AnsibleFilterError, match="every node's current key"):
        mesh_keys_missing(KEY_B, [KEY_A])
