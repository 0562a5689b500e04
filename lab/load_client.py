"""A client of a lab service, run ON a lab node (its Python and python3-dnslib):

    python3 load_client.py SERVICE PORT RESULT_FILE STOP_FILE

Until STOP_FILE exists: resolve SERVICE.service.pico through the node's own agent (DNS on
127.0.0.1:8600, TTL 0, so every request asks again), pick one of the addresses, GET /version,
and count what succeeds and what fails. Then write {ok, failed, errors, versions} to RESULT_FILE.
Used by the orchestration tests and bench/rollout.py to count failed requests during rollouts.
"""
import json
import os
import random
import sys
import time
import urllib.request

from dnslib import QTYPE, DNSRecord


def main():
    service, port, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ok = failed = 0
    errors, versions = [], {}
    while not os.path.exists(stop):
        try:
            reply = DNSRecord.parse(DNSRecord.question(service + ".service.pico").send("127.0.0.1", 8600, timeout=2))
            addresses = [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A]
            if not addresses:
                raise RuntimeError("no address for %s.service.pico" % service)
            url = "http://%s:%d/version" % (random.choice(addresses), port)
            body = json.load(urllib.request.urlopen(url, timeout=3))
            ok += 1
            versions[body["version"]] = versions.get(body["version"], 0) + 1
        except Exception as err:  # every failure counts, whatever it is
            failed += 1
            errors.append("%.1f %r" % (time.time(), err))
        time.sleep(0.05)
    with open(out, "w") as handle:
        json.dump({"ok": ok, "failed": failed, "errors": errors[-20:], "versions": versions}, handle)


if __name__ == "__main__":
    main()
