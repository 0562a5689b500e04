"""boot_config against config.txt files: Raspberry Pi OS's own, sections, duplicates, bad and read-only files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest

# Raspberry Pi OS Lite (bookworm) ships this /boot/firmware/config.txt.
RPI_OS = """\
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
otg_mode=1

[all]
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "firmware" / "config.txt"
    path.parent.mkdir()
    path.write_text(RPI_OS)
    return path


def test_headless_settings_keep_everything_else(run_module, config):
    result = run_module("boot_config", path=str(config), settings={"gpu_mem": 16},
                        dtparams={"audio": False, "act_led_trigger": "none"}, dtoverlays={"disable-bt": True})
    assert (result["changed"], result["reboot_required"]) == (True, True)
    text = config.read_text()
    # changed where it stood
    assert "# Enable audio (loads snd_bcm2835)\ndtparam=audio=off\n" in text
    # new lines at the end of the last [all] block
    assert text.endswith("[all]\ngpu_mem=16\ndtparam=act_led_trigger=none\ndtoverlay=disable-bt\n")
    # comments, other sections and unmanaged lines untouched
    for line in ("#dtparam=spi=on", "camera_auto_detect=1", "[cm4]", "otg_mode=1", "dtoverlay=vc4-kms-v3d"):
        assert line in text.splitlines()
    assert open(result["backup_file"]).read() == RPI_OS
    again = run_module("boot_config", path=str(config), settings={"gpu_mem": 16},
                       dtparams={"audio": False, "act_led_trigger": "none"}, dtoverlays={"disable-bt": True})
    assert (again["changed"], again["reboot_required"]) == (False, False)


def test_check_mode_and_diff_write_nothing(run_module, config):
    result = run_module("boot_config", check=True, diff=True, path=str(config), settings={"gpu_mem": 16})
    assert result["changed"] is True
    assert "gpu_mem=16" in result["diff"]["after"] and "gpu_mem" not in result["diff"]["before"]
    assert config.read_text() == RPI_OS
    assert not [p for p in os.listdir(config.parent) if p != "config.txt"]  # no backup either


def test_board_section_is_created_at_the_end(run_module, config):
    run_module("boot_config", path=str(config), section="pi0", settings={"arm_freq": 700})
    assert config.read_text() == RPI_OS + "\n[pi0]\narm_freq=700\n"
    run_module("boot_config", path=str(config), section="[pi0]", settings={"gpu_mem": 16})
    assert config.read_text().endswith("[pi0]\narm_freq=700\ngpu_mem=16\n")


def test_a_setting_in_another_section_is_not_this_sections(run_module, config):
    run_module("boot_config", path=str(config), section="cm4", settings={"otg_mode": 0})
    lines = config.read_text().splitlines()
    assert lines[lines.index("[cm4]") + 2] == "otg_mode=0"
    result = run_module("boot_config", path=str(config), settings={"otg_mode": None})  # [all] has none
    assert result["changed"] is False


def test_duplicate_keys_collapse_to_the_effective_one(run_module, tmp_path):
    path = tmp_path / "config.txt"
    path.write_text("gpu_mem=64\n# keep me\ngpu_mem=128\n[pi0]\ngpu_mem=32\n")
    run_module("boot_config", path=str(path), settings={"gpu_mem": 16})
    assert path.read_text() == "# keep me\ngpu_mem=16\n[pi0]\ngpu_mem=32\n"


def test_removing_settings_params_and_overlays(run_module, config):
    result = run_module("boot_config", path=str(config), settings={"camera_auto_detect": None, "absent_key": None},
                        dtparams={"audio": None}, dtoverlays={"vc4-kms-v3d": False})
    assert result["changed"] is True
    text = config.read_text()
    assert "camera_auto_detect" not in text and "dtparam=audio" not in text and "dtoverlay=vc4-kms-v3d" not in text
    assert "# Enable DRM VC4 V3D driver\nmax_framebuffers=2" in text


def test_combined_dtparam_line_is_edited_in_place(run_module, tmp_path):
    path = tmp_path / "config.txt"
    path.write_text("dtparam=i2c_arm=on,spi=on\n")
    run_module("boot_config", path=str(path), dtparams={"spi": "off"})
    assert path.read_text() == "dtparam=i2c_arm=on,spi=off\n"
    run_module("boot_config", path=str(path), dtparams={"i2c_arm": None, "spi": None})
    assert path.read_text() == ""


def test_overlay_with_parameters_counts_as_loaded(run_module, tmp_path):
    path = tmp_path / "config.txt"
    path.write_text("dtoverlay=vc4-kms-v3d,nohdmi\n")
    assert run_module("boot_config", path=str(path), dtoverlays={"vc4-kms-v3d": True})["changed"] is False


@pytest.mark.parametrize("content,message", [
    ("gpu_mem=16\n[pi0\narm_freq=700\n", "line 2: '[pi0' opens a section but does not close it with ]"),
    ("gpu_mem=16\nturbo please\n", "line 2: 'turbo please' is neither key=value"),
])
def test_malformed_file_is_refused_untouched(run_module, tmp_path, content, message):
    path = tmp_path / "config.txt"
    path.write_text(content)
    result = run_module("boot_config", path=str(path), settings={"gpu_mem": 32})
    assert result["failed"] is True
    assert message in result["msg"] and "nothing was written" in result["msg"]
    assert path.read_text() == content


def test_include_and_initramfs_are_understood(run_module, tmp_path):
    path = tmp_path / "config.txt"
    path.write_text("include extra.txt\ninitramfs initramfs8 followkernel\n")
    assert run_module("boot_config", path=str(path), settings={"gpu_mem": 16})["changed"] is True


def test_bad_names_and_values_are_refused(run_module, config):
    assert "not valid" in run_module("boot_config", path=str(config), settings={"gpu mem": 16})["msg"]
    assert "cannot be written on one line" in run_module("boot_config", path=str(config), dtparams={"audio": "on,off"})["msg"]
    assert config.read_text() == RPI_OS


def test_read_only_file_system_fails_clearly(run_module, config, tmp_path):
    """Like a /boot/firmware mounted read-only: a clear message and the file as it was."""
    if os.geteuid() != 0:
        config.parent.chmod(0o555)
        config.chmod(0o444)
        result = run_module("boot_config", path=str(config), settings={"gpu_mem": 16})
    else:
        if not shutil.which("unshare"):
            pytest.skip("unshare is missing")
        # Root writes anywhere: give the module a private mount namespace where the file's
        # directory is a read-only bind mount, as a firmware partition mounted ro would be.
        wrapper = tmp_path / "read-only.sh"
        wrapper.write_text('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"\n')
        result = run_module("boot_config", _prefix=("unshare", "-m", "sh", str(wrapper), str(config.parent)),
                            path=str(config), settings={"gpu_mem": 16})
    assert result["failed"] is True
    assert "is read-only" in result["msg"] and "nothing was written" in result["msg"]
    assert config.read_text() == RPI_OS


def test_no_config_txt_names_the_places_looked(run_module):
    if any(os.path.exists(p) for p in ("/boot/firmware/config.txt", "/boot/config.txt")):
        pytest.skip("this machine has a config.txt")
    result = run_module("boot_config", settings={"gpu_mem": 16})
    assert result["failed"] is True and "/boot/firmware/config.txt or /boot/config.txt" in result["msg"]
