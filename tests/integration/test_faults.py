"""test_faults.py - the probe never loses or duplicates a result: real Redis, real API, kills.

Each case starts its own redis-server (AOF, fsync always) and `dstmc api` on 127.0.0.1, runs
`dstmc logger` probes against them, publishes requests with `dstmc scheduler --once`, and counts
the results through GET /api/v1/results, once nothing more can come: every probe's group has
taken and acked every request and every outbox is empty. Skipped when redis-server is not
installed.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import (WAIT, Client, RefusingPort, Service, TestCase, free_port, run,
                     wait_for)

REDIS = "/usr/bin/redis-server"
READY = r"waiting for test requests on speedtest\.requests"
TOPIC = "speedtest.requests"


class RedisError(Exception):
    pass


class Redis:
    """One redis-server on a loopback port, its data (AOF) in dir; stopped by its pid.

    Without a port it takes a free one, and another if that was taken before it bound it (tests
    run beside each other); it is ready when the server answering there is this one's pid."""

    def __init__(self, data_dir, port=None):
        for _ in range(5):
            self.port = port or free_port()
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", data_dir,
                 "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(self._up, what=f"redis-server (pid {self.proc.pid}) on {self.port}")
                return
            except ConnectionRefusedError:  # it exited: the port was taken
                self.stop()
                if port:
                    raise AssertionError(f"redis-server cannot listen on {port} again")
        raise AssertionError("redis-server found no free port in 5 tries")

    def _up(self):
        if self.proc.poll() is not None:
            raise ConnectionRefusedError(f"redis-server exited with {self.proc.returncode}")
        try:
            info = self.command("INFO", "server", timeout=2)
        except (OSError, RedisError):
            return False
        return f"process_id:{self.proc.pid}\r\n" in info  # not another test's server

    def command(self, *args, timeout=WAIT):
        """One command on a connection of its own; the reply as str, int, None or list."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return self._reply(s.makefile("rb"))

    def _reply(self, f):
        line = f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError(f"redis-server closed the connection: {line!r}")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if int(rest) < 0 else f.read(int(rest) + 2)[:-2].decode()
        if kind == b"*":
            return None if int(rest) < 0 else [self._reply(f) for _ in range(int(rest))]
        raise OSError(f"not a RESP reply: {line!r}")

    def all_acked(self, groups, topic=TOPIC):
        """Whether each group has taken every message of topic and acked them all: after that
        nothing of it is delivered again."""
        try:
            last = dict(zip(*[iter(self.command("XINFO", "STREAM", topic))] * 2))
            have = {g[1]: dict(zip(*[iter(g)] * 2))
                    for g in self.command("XINFO", "GROUPS", topic)}
        except RedisError:  # no stream yet
            return False
        return all(g in have and have[g]["pending"] == 0 and
                   have[g]["last-delivered-id"] == last["last-generated-id"] for g in groups)

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
        self.redis = Redis(self.tmp)
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
        p.wait_line(READY)
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

    def wait_results(self, n, deadline=2 * WAIT):
        return wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(self.results()),
                        deadline, f"{n} results")

    def settled(self, *groups):
        """The results once nothing more can come: every group acked every request, and no
        result waits in an outbox (a duplicate would come from a redelivery or a retry)."""
        def quiet():
            for d in os.listdir(self.tmp):
                box = os.path.join(self.tmp, d)
                if d.startswith("outbox-") and [f for f in os.listdir(box) if f.endswith(".json")]:
                    return False
            return self.redis.all_acked(groups)
        wait_for(quiet, what=f"groups {groups}: every request acked, every outbox empty")
        return self.results()

    def test_a_two_groups_each_run_the_request(self):
        self.probe("p1")
        self.probe("p2")
        self.publish()
        self.wait_results(2)
        rs = self.settled("p1", "p2")
        self.assertEqual(sorted(r["probe"] for r in rs), ["p1", "p2"])
        self.assertEqual(len({r["id"] for r in rs}), 2)
        self.assertEqual(len({r["request_id"] for r in rs}), 1)

    def test_b_killed_mid_test_redelivered_once(self):
        p = self.probe("slow", target="dummy:?seconds=600")  # killed long before its end
        self.publish()
        p.wait_line(r"request .* running")
        p.stop(sig=signal.SIGKILL, check=False)  # mid-test: nothing posted, nothing acked
        self.assertEqual(self.results(), [])
        p2 = self.probe("slow", target="dummy:?seconds=1")
        p2.wait_line(r"\(delivery [2-9]\d*\)")  # its own pending request, at once
        self.wait_results(1)
        rs = self.settled("slow")
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0]["probe"], "slow")
        self.assertEqual(rs[0]["status"], "ok")

    def test_c_api_down_outbox_then_stored_once(self):
        port = self.api.port
        url = self.api_url
        p = self.probe("p1")
        self.api.stop()
        held = RefusingPort(port)  # refuses like the stopped API; no other test takes the port
        self.publish()
        box = os.path.join(self.tmp, "outbox-p1")
        files = wait_for(lambda: [f for f in os.listdir(box) if f.endswith(".json")],
                         what="a result in the outbox")
        self.assertEqual(len(files), 1)
        held.close()
        self.api = self.start_api(f"127.0.0.1:{port}")
        self.assertEqual(self.api_url, url)
        rs = self.wait_results(1, 4 * WAIT)  # back-off: 1, 2, 4 ... s
        self.assertEqual(rs[0]["id"] + ".json", files[0])
        self.assertEqual(len(self.settled("p1")), 1)
        self.assertEqual(os.listdir(os.path.join(box, "bad")), [])
        p.wait_line(r"outbox: result .* stored")

    def test_d_redis_restart_keeps_the_request(self):
        p = self.probe("p1")  # creates its group
        p.stop()
        self.publish()
        self.redis.stop()
        self.redis = Redis(self.tmp, port=self.redis.port)  # from the AOF
        self.probe("p1")
        self.wait_results(1)
        rs = self.settled("p1")
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0]["probe"], "p1")


if __name__ == "__main__":
    unittest.main()
