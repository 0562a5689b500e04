# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""The node agent's HTTP API, as modules on a node reach it: on the node's loopback address.

The controller never talks to agents directly (they listen on loopback and the WireGuard mesh
only); a module running on a node asks that node's agent, which answers for the whole cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

DEFAULT_URL = "http://127.0.0.1:8500"
DEFAULT_TOKEN_FILE = "/var/lib/pico-agent/api-token"


class AgentError(Exception):
    pass


def call(url, path, method="GET", token=None, timeout=10):
    """(status, parsed JSON body) of one request; AgentError when the agent cannot be reached."""
    headers = {"Authorization": "Bearer %s" % token} if token else {}
    try:
        # The agent listens on loopback: a proxy from the environment would be wrong.
        response = open_url(url.rstrip("/") + path, method=method, headers=headers, timeout=timeout, use_proxy=False,
                            data=b"" if method in ("POST", "DELETE") else None)
        status, body = response.getcode(), response.read()
    except HTTPError as err:
        status, body = err.code, err.read()
    except (URLError, OSError) as err:
        raise AgentError("cannot reach the pico-agent at %s (%s): is pico-agent.service running? "
                         "(systemctl status pico-agent)" % (url, getattr(err, "reason", err)))
    try:
        return status, json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        raise AgentError("the pico-agent at %s answered %s with something that is not JSON" % (url, path))


def peer_url(url, address):
    """The agent API of the member at `address` (its mesh address), on the port of ours."""
    return "http://%s:%s" % (address, url.rsplit(":", 1)[-1].strip("/"))


def read_token(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError) as err:
        raise AgentError("cannot read the agent's API token %s: %s" % (path, err))
