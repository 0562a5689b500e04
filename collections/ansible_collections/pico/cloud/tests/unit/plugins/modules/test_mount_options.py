"""mount_options, run as Ansible runs it: a separate Python process given its arguments as JSON."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess

import pytest

from ansible_collections.pico.cloud.plugins.modules.mount_options import edit_fstab

FSTAB = """\
# /etc/fstab: static file system information.
proc            /proc           proc    defaults          0       0
PARTUUID=0b2a-01  /boot/firmware  vfat    defaults          0       2
PARTUUID=0b2a-02  /               ext4    defaults,noatime  0       1
/dev/sda1 /mnt/usb\\040disk ext4 nofail 0 2
"""


@pytest.fixture
def fstab(tmp_path):
    path = tmp_path / "fstab"
    path.write_text(FSTAB)
    return path


def test_adds_noatime_and_keeps_everything_else(run_module, fstab):
    result = run_module("mount_options", path=str(fstab), mountpoints=["/", "/boot/firmware", "/boot"], options=["noatime"])
    assert result["changed"] is True
    assert result["changed_mountpoints"] == ["/boot/firmware"]
    assert result["missing"] == ["/boot"]
    lines = fstab.read_text().splitlines()
    assert lines[2] == "PARTUUID=0b2a-01  /boot/firmware  vfat    defaults,noatime          0       2"
    assert [line for i, line in enumerate(lines) if i != 2] == [line for i, line in enumerate(FSTAB.splitlines()) if i != 2]


def test_second_run_changes_nothing(run_module, fstab):
    run_module("mount_options", path=str(fstab), mountpoints=["/boot/firmware"], options=["noatime"])
    before = fstab.stat().st_mtime_ns
    result = run_module("mount_options", path=str(fstab), mountpoints=["/boot/firmware"], options=["noatime"])
    assert result["changed"] is False
    assert fstab.stat().st_mtime_ns == before


def test_check_mode_reports_but_does_not_write(run_module, fstab):
    result = run_module("mount_options", check=True, diff=True, path=str(fstab), mountpoints=["/boot/firmware"], options=["noatime"])
    assert result["changed"] is True
    assert "defaults,noatime          0       2" in result["diff"]["after"]
    assert result["diff"]["before"] == FSTAB
    assert fstab.read_text() == FSTAB


def test_escaped_mountpoint_and_absent_state(run_module, fstab):
    result = run_module("mount_options", path=str(fstab), mountpoints=["/mnt/usb disk", "/"], options=["nofail", "noatime"], state="absent")
    assert sorted(result["changed_mountpoints"]) == ["/", "/mnt/usb disk"]
    text = fstab.read_text()
    assert "/dev/sda1 /mnt/usb\\040disk ext4 defaults 0 2" in text
    assert "PARTUUID=0b2a-02  /               ext4    defaults  0       1" in text


def test_bad_option_fails_before_writing(run_module, fstab):
    result = run_module("mount_options", path=str(fstab), mountpoints=["/"], options=["noatime,sync"])
    assert result["failed"] is True
    assert "single words without commas" in result["msg"]
    assert fstab.read_text() == FSTAB


def test_missing_file_is_a_clear_error(run_module, tmp_path):
    result = run_module("mount_options", path=str(tmp_path / "nope"), mountpoints=["/"], options=["noatime"])
    assert result["failed"] is True
    assert "does not exist" in result["msg"]


def test_read_only_file_system_fails_and_keeps_the_file(run_module, tmp_path):
    """A real read-only mount (a tmpfs remounted ro), as an SD card that the kernel set read-only."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs root with mount rights")
    try:
        (mnt / "fstab").write_text(FSTAB)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        result = run_module("mount_options", path=str(mnt / "fstab"), mountpoints=["/boot/firmware"], options=["noatime"])
        assert result["failed"] is True
        assert f"{mnt} is on a read-only file system" in result["msg"]
        assert f"mount -o remount,rw {mnt}" in result["msg"] and "the file is unchanged" in result["msg"]
        assert (mnt / "fstab").read_text() == FSTAB
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_edit_keeps_a_file_without_final_newline():
    text, changed, missing = edit_fstab("/dev/a / ext4 defaults 0 1", ["/"], ["noatime"], True)
    assert text == "/dev/a / ext4 defaults,noatime 0 1"
    assert changed == ["/"] and missing == []
