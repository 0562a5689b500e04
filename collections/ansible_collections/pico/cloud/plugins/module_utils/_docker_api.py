# -*- coding: utf-8 -*-
# Copyright: Pico-Cloud developers
# Apache License 2.0 (see LICENSE)
#
# Private to pico.cloud (hence the leading underscore): no other collection or playbook may
# import it, and it changes without notice or a changelog entry.
"""A small client for the Docker Engine API on a unix socket, standard library only.

Podman's service and dockerd both speak this API, so modules work the same on either runtime
and nodes need no Python packages beyond Debian's python3. Only the calls the modules use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import struct

try:
    from http.client import HTTPConnection
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported on nodes
    raise

# The documented path of the Docker-compatible API on every node (see the container_runtime role).
DEFAULT_SOCKET = "/run/docker.sock"
# Docker 20.10 and Podman 4's compatibility layer both serve 1.41.
API_VERSION = "v1.41"

# The options every module on the Docker API takes, documented once in the doc fragment
# pico.cloud.docker_api: a module's argument_spec is dict(own options, **DOCKER_API_ARGUMENT_SPEC).
DOCKER_API_ARGUMENT_SPEC = dict(api_socket=dict(type="path", default=DEFAULT_SOCKET))


class DockerAPIError(Exception):
    def __init__(self, message, status=None):
        super(DockerAPIError, self).__init__(message)
        self.status = status


class _UnixConnection(HTTPConnection):
    def __init__(self, path, timeout):
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class DockerAPI(object):
    def __init__(self, socket_path=DEFAULT_SOCKET, timeout=300):
        self.socket_path = socket_path
        self.timeout = timeout

    def request(self, method, path, query=None, body=None, headers=None, max_body=None):
        """Return (status, body bytes). body may be bytes or a file object (sent as it is read).
        With max_body, an answer longer than that raises DockerAPIError, read no further."""
        url = "/%s%s" % (API_VERSION, path)
        if query:
            url += "?" + urlencode(query)
        conn = _UnixConnection(self.socket_path, self.timeout)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            response = conn.getresponse()
            if max_body is None:
                return response.status, response.read()
            data = response.read(max_body + 1)
            if len(data) > max_body:
                raise DockerAPIError("%s %s: the answer passes %d bytes" % (method, path, max_body))
            return response.status, data
        except (OSError, socket.timeout) as exc:
            raise DockerAPIError("cannot reach the container API at %s: %s (is the container_runtime role "
                                 "applied and its socket active?)" % (self.socket_path, exc))
        finally:
            conn.close()

    def call(self, method, path, query=None, body=None, headers=None, allow=()):
        """JSON result of a call; raises DockerAPIError with the engine's own message on an error
        status, except for statuses in allow (returned as None)."""
        status, data = self.request(method, path, query, body, headers)
        if status in allow:
            return None
        if status >= 400:
            raise DockerAPIError("%s %s: %s" % (method, path, _message(data) or "HTTP %d" % status), status)
        return _parse(data)

    # -- the calls the modules use ------------------------------------------------------------
    def ping(self):
        status, data = self.request("GET", "/_ping")
        return status == 200 and data.strip() == b"OK"

    def image(self, name):
        """The image's inspect data, or None when there is no such image."""
        return self.call("GET", "/images/%s/json" % quote(name, safe="/:@"), allow=(404,))

    def images(self):
        return self.call("GET", "/images/json")

    def containers(self):
        return self.call("GET", "/containers/json", query={"all": "1"})

    def load(self, archive_file, size):
        """Load an image archive; returns the engine's messages. Errors in the stream raise."""
        data = self.call("POST", "/images/load", query={"quiet": "1"}, body=archive_file,
                         headers={"Content-Type": "application/x-tar", "Content-Length": str(size)})
        return _stream_messages(data)

    def pull(self, repository, tag):
        return _stream_messages(self.call("POST", "/images/create", query={"fromImage": repository, "tag": tag}))

    def tag(self, image_id, repository, tag):
        self.call("POST", "/images/%s/tag" % quote(image_id, safe=":"), query={"repo": repository, "tag": tag})

    def remove_image(self, name):
        return self.call("DELETE", "/images/%s" % quote(name, safe="/:@"))

    def containers_labelled(self, *labels):
        """Containers (running or not) with every label given (`key` or `key=value`)."""
        return self.call("GET", "/containers/json",
                         query={"all": "1", "filters": json.dumps({"label": list(labels)})}) or []

    def logs(self, container, lines, max_bytes):
        """The last `lines` lines a container wrote on stdout and stderr, each with the engine's
        timestamp first, oldest first. More than max_bytes of them raises DockerAPIError."""
        path = "/containers/%s/logs" % quote(container, safe="")
        status, data = self.request("GET", path, query={"stdout": "1", "stderr": "1", "timestamps": "1",
                                                        "tail": str(lines)}, max_body=max_bytes)
        if status >= 400:
            raise DockerAPIError("GET %s: %s" % (path, _message(data) or "HTTP %d" % status), status)
        return demultiplexed(data).decode("utf-8", "replace").splitlines()


def demultiplexed(data):
    """A container's output as the API sends it for a container without a terminal: frames of
    an 8-byte header (stream 0-2, three zero bytes, the payload's length) and the payload. A
    container with a terminal sends its output as it is."""
    if len(data) < 8 or data[0:1] not in (b"\x00", b"\x01", b"\x02") or data[1:4] != b"\x00\x00\x00":
        return data
    out, at = [], 0
    while at + 8 <= len(data):
        size = struct.unpack(">I", data[at + 4:at + 8])[0]
        out.append(data[at + 8:at + 8 + size])
        at += 8 + size
    return b"".join(out)


def _parse(data):
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        # Streaming endpoints answer JSON objects one per line.
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _message(data):
    parsed = None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        pass
    if isinstance(parsed, dict):
        return parsed.get("message") or parsed.get("cause")
    return data.decode("utf-8", "replace").strip()


def _stream_messages(data):
    items = data if isinstance(data, list) else [data] if data else []
    messages = []
    for item in items:
        if not isinstance(item, dict):
            continue
        error = item.get("error") or (item.get("errorDetail") or {}).get("message")
        if error:
            raise DockerAPIError(error.strip())
        text = (item.get("stream") or item.get("status") or "").strip()
        if text:
            messages.append(text)
    return messages
