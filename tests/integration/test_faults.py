"""test_faults.py - the probe never loses or duplicates a result: real Redis, real API, kills.

Each case starts its own redis-server (AOF, fsync always) and `dstmc api` on 127.0.0.1, runs
`dstmc logger` probes against them, publishes requests with `dstmc scheduler --once`, and counts
the results through GET /api/v1/results. Skipped when redis-server is not installed.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Client, Service, TestCase, free_port, run, wait_for

REDIS = "/usr/bin/redis-server"
READY = r"waiting for test requests on speedtest\.requests"


class Redis:
    """One redis-server on a loopback port, its data (AOF) in dir; stopped by its pid."""

    def __init__(self, port, data_dir):
        self.port = port
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir, "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 10, "redis-server accepting connections")

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@unittest.skipUnless(os.access(REDIS, os.X_OK), f"{REDIS} is not installed (apt install redis-server)")
class TestFaults(TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dstmc-faults-")
        self.services = []
        self.redis = Redis(free_port(), self.tmp)
        self.api = self.start_api("127.0.0.1:0")

    def tearDown(self):
        for s in reversed(self.services):
            s.stop()  # SIGTERM: exit 0, no sanitizer report
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_api(self, listen):
        a = Service("api", "--db", f"sqlite:{self.tmp}/x.db", "--listen", listen,
                    "--queue", self.redis.url, "--access-log=false")
        self.services.append(a)
        return a

    def probe(self, agent, *extra, target="dummy:"):
        p = Service("logger", "--queue", self.redis.url, "--api", self.api_url, "--target", target,
                    "--agent", agent, "--outbox", os.path.join(self.tmp, f"outbox-{agent}"),
                    *extra, listen=False)
        self.services.append(p)
        p.wait_line(READY, 15)
        return p

    @property
    def api_url(self):
        return self.api.url

    def publish(self, target=""):
        spec = f"* * * * * {target}".strip()
        code, out, err = run("scheduler", "--queue", self.redis.url, "--once", "--schedule", spec)
        self.assertEqual(code, 0, err)
        self.assertIn("Event sendt!", out)

    def results(self):
        c = Client(self.api_url)
        try:
            r = c.get("/api/v1/results?limit=1000")
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        return r.json()["results"]

    def wait_results(self, n, deadline=30):
        return wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(self.results()),
                        deadline, f"{n} results")

    def test_a_two_groups_each_run_the_request(self):
        self.probe("p1")
        self.probe("p2")
        self.publish()
        rs = self.wait_results(2)
        time.sleep(1.5)  # a third (a duplicate) would have come by now
        rs = self.results()
        self.assertEqual(sorted(r["probe"] for r in rs), ["p1", "p2"])
        self.assertEqual(len({r["id"] for r in rs}), 2)
        self.assertEqual(len({r["request_id"] for r in rs}), 1)

    def test_b_killed_mid_test_redelivered_once(self):
        p = self.probe("slow", target="dummy:?seconds=4")
        self.publish()
        p.wait_line(r"request .* running", 15)
        p.stop(sig=signal.SIGKILL, check=False)  # mid-test: nothing posted, nothing acked
        self.assertEqual(self.results(), [])
        p2 = self.probe("slow", target="dummy:?seconds=1")
        p2.wait_line(r"\(delivery [2-9]\d*\)", 15)  # its own pending request, at once
        rs = self.wait_results(1)
        time.sleep(1.5)
        rs = self.results()
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0]["probe"], "slow")
        self.assertEqual(rs[0]["status"], "ok")

    def test_c_api_down_outbox_then_stored_once(self):
        port = self.api.port
        url = self.api_url
        p = self.probe("p1")
        self.api.stop()
        self.publish()
        box = os.path.join(self.tmp, "outbox-p1")
        files = wait_for(lambda: [f for f in os.listdir(box) if f.endswith(".json")], 20,
                         "a result in the outbox")
        self.assertEqual(len(files), 1)
        self.api = self.start_api(f"127.0.0.1:{port}")
        self.assertEqual(self.api_url, url)
        rs = self.wait_results(1, 60)  # back-off: 1, 2, 4 ... s
        self.assertEqual(rs[0]["id"] + ".json", files[0])
        wait_for(lambda: not [f for f in os.listdir(box) if f.endswith(".json")], 10,
                 "an empty outbox")
        time.sleep(1.5)
        self.assertEqual(len(self.results()), 1)
        self.assertEqual(os.listdir(os.path.join(box, "bad")), [])
        p.wait_line(r"outbox: result .* stored", 5)

    def test_d_redis_restart_keeps_the_request(self):
        p = self.probe("p1")  # creates its group
        p.stop()
        self.publish()
        self.redis.stop()
        self.redis = Redis(self.redis.port, self.tmp)  # from the AOF
        self.probe("p1")
        rs = self.wait_results(1)
        time.sleep(1.5)
        self.assertEqual(len(self.results()), 1)
        self.assertEqual(rs[0]["probe"], "p1")


if __name__ == "__main__":
    unittest.main()
