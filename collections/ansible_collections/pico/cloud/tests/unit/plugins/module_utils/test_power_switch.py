"""The power switch drivers against their tools' documented output. No switch hardware here: the
tools' answers are played back (the formats of clusterctrl's `status` and uhubctl's port lines);
the lab driver is exercised for real by the energy tests on the lab."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pico.cloud.plugins.module_utils._power_switch import SwitchError, driver

CLUSTERHAT_STATUS = """clusterhat:1
clusterctrl:0
maxpi:4
throttled:0x0
hat_version:2.5
hat_size:4
hat_alert:0
hat_hub:1
p1:1
p2:0
p3:1
p4:1
"""

UHUBCTL_ON = """Current status for hub 1-1 [0424:9514, USB 2.00, 5 ports, ppps]
  Port 2: 0503 power highspeed enable connect [0424:ec00]
  Port 3: 0100 power
"""
UHUBCTL_OFF = UHUBCTL_ON.replace("Port 3: 0100 power", "Port 3: 0000 off")


class Tool(object):
    """Plays back a switch tool: answers by argv, records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        for prefix, answer in self.answers:
            if argv[:len(prefix)] == prefix:
                return answer
        return 0, "", ""


def test_clusterctrl_reads_the_ports_line_and_switches_that_port():
    tool = Tool([(["clusterctrl", "status"], (0, CLUSTERHAT_STATUS, ""))])
    p2 = driver(tool, {"driver": "clusterctrl", "port": 2})
    assert p2.is_on() is False
    assert driver(tool, {"driver": "clusterctrl", "port": 3}).is_on() is True
    p2.switch(True)
    assert tool.calls[-1] == ["clusterctrl", "on", "p2"]


def test_clusterctrl_on_a_host_that_is_not_the_controller_says_so():
    tool = Tool([(["clusterctrl", "status"], (0, "", ""))])  # clusterctrl exits quietly there
    with pytest.raises(SwitchError, match="lists no p2: is this host the ClusterHAT/CTRL controller"):
        driver(tool, {"driver": "clusterctrl", "port": 2}).is_on()


def test_uhubctl_reads_off_and_power_and_switches_with_its_action():
    port3 = driver(Tool([(["uhubctl"], (0, UHUBCTL_OFF, ""))]), {"driver": "uhubctl", "location": "1-1", "port": 3})
    assert port3.is_on() is False
    on = Tool([(["uhubctl"], (0, UHUBCTL_ON, ""))])
    port3 = driver(on, {"driver": "uhubctl", "location": "1-1", "port": 3})
    assert port3.is_on() is True
    port3.switch(False)
    assert on.calls[-1] == ["uhubctl", "-l", "1-1", "-p", "3", "-a", "off"]


def test_uhubctl_without_that_port_names_location_and_port():
    with pytest.raises(SwitchError, match="no port 7 on hub 1-1"):
        driver(Tool([(["uhubctl"], (0, UHUBCTL_ON, ""))]), {"driver": "uhubctl", "location": "1-1", "port": 7}).is_on()


@pytest.mark.parametrize(("options", "message"), [
    ({"driver": "relay"}, "driver 'relay': choose one of clusterctrl, lab, uhubctl"),
    ({"driver": "uhubctl", "port": 2}, "the uhubctl driver needs location"),
    ({"driver": "lab"}, "the lab driver needs container"),
    ({"driver": "clusterctrl", "port": 0}, "clusterctrl port 0"),
])
def test_a_switch_declared_wrong_is_refused_with_the_fix(options, message):
    with pytest.raises(SwitchError, match=message):
        driver(Tool([]), options).is_on()


def test_a_failing_tool_is_reported_with_its_exit_and_output():
    tool = Tool([(["docker", "inspect"], (1, "", "Error: No such object: pico-lab-x\n"))])
    with pytest.raises(SwitchError, match=r"docker inspect .* failed \(exit 1\): Error: No such object"):
        driver(tool, {"driver": "lab", "container": "pico-lab-x"}).is_on()
