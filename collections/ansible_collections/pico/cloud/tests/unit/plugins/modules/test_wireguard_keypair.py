"""wireguard_keypair with the real `wg` tool: the private key is made on the node and never leaves it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import subprocess

import pytest

pytestmark = pytest.mark.skipif(subprocess.run(["which", "wg"], capture_output=True, check=False).returncode != 0,
                                reason="needs wireguard-tools (make bootstrap installs it)")


def public_of(private):
    return subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True).stdout.strip()


def test_creates_a_private_key_0600_and_returns_only_the_public_half(run_module, tmp_path):
    key = tmp_path / "wg" / "wg0.key"
    result = run_module("wireguard_keypair", path=str(key))
    assert result["changed"] is True
    private = key.read_text().strip()
    assert len(base64.b64decode(private)) == 32
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct(key.parent.stat().st_mode & 0o777) == "0o700"
    assert result["public_key"] == public_of(private)
    assert (tmp_path / "wg" / "wg0.key.pub").read_text().strip() == result["public_key"]
    assert result["fingerprint"].startswith("SHA256:")
    assert private not in result["_raw"]


def test_second_run_keeps_the_key_and_changes_nothing(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    first = run_module("wireguard_keypair", path=str(key))
    private = key.read_text()
    second = run_module("wireguard_keypair", path=str(key))
    assert second["changed"] is False
    assert second["public_key"] == first["public_key"]
    assert key.read_text() == private
    # When the key was made, on the node's clock: peers keep it to tell an older key from a newer one.
    assert second["created"] == first["created"] == int(key.stat().st_mtime)


def test_check_mode_creates_nothing(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    result = run_module("wireguard_keypair", check=True, diff=True, path=str(key))
    assert result["changed"] is True
    assert result["public_key"] is None and result["created"] is None
    assert result["diff"] == {"before": {"public_key": None}, "after": {"public_key": None}}
    assert not key.exists()


def test_check_mode_reports_a_stale_public_key_file_and_leaves_it(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    first = run_module("wireguard_keypair", path=str(key))
    pub = tmp_path / "wg0.key.pub"
    pub.write_text("stale\n")
    dry = run_module("wireguard_keypair", check=True, path=str(key))
    assert dry["changed"] is True and dry["public_key"] == first["public_key"]
    assert pub.read_text() == "stale\n"
    repaired = run_module("wireguard_keypair", path=str(key))
    assert repaired["changed"] is True and pub.read_text().strip() == first["public_key"]
    assert run_module("wireguard_keypair", check=True, path=str(key))["changed"] is False


def test_regenerate_always_makes_a_new_key_and_diff_shows_public_keys_only(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    first = run_module("wireguard_keypair", path=str(key))
    old_private = key.read_text().strip()
    rotated = run_module("wireguard_keypair", diff=True, path=str(key), regenerate="always")
    assert rotated["changed"] is True
    assert rotated["public_key"] != first["public_key"]
    assert rotated["diff"] == {"before": {"public_key": first["public_key"]}, "after": {"public_key": rotated["public_key"]}}
    assert key.read_text().strip() != old_private
    assert old_private not in rotated["_raw"] and key.read_text().strip() not in rotated["_raw"]


def test_invalid_key_file_fails_and_is_kept(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    key.write_text("not a key\n")
    result = run_module("wireguard_keypair", path=str(key))
    assert result["failed"] is True
    assert f"{key} does not hold a valid WireGuard private key" in result["msg"]
    assert "regenerate=always" in result["msg"]
    assert key.read_text() == "not a key\n"


def test_invalid_key_file_is_replaced_when_asked(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    key.write_text("not a key\n")
    result = run_module("wireguard_keypair", path=str(key), regenerate="always")
    assert result["changed"] is True
    assert result["public_key"] == public_of(key.read_text())


def test_loose_mode_is_tightened(run_module, tmp_path):
    key = tmp_path / "wg0.key"
    run_module("wireguard_keypair", path=str(key))
    os.chmod(key, 0o644)
    result = run_module("wireguard_keypair", path=str(key))
    assert result["changed"] is True
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_a_directory_in_the_way_is_a_clear_error(run_module, tmp_path):
    (tmp_path / "wg0.key").mkdir()
    result = run_module("wireguard_keypair", path=str(tmp_path / "wg0.key"))
    assert result["failed"] is True
    assert "is not a file" in result["msg"]
