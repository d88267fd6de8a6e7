"""test_store_pg_ingest.py - PostgreSQL stopped mid-ingest and started again: no result lost or
stored twice. Real Redis (the requests), a private PostgreSQL (the store), `dstmc api` on both
and two `dstmc logger` probes with outboxes; run-now requests go out before, during and after the
outage. Skipped without redis-server or the PostgreSQL binaries."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import TOKEN, WAIT, Client, Service, TestCase, with_token, wait_for
from pgserver import PgServer
from test_faults import READY, REDIS, Redis

PROBES = ("p1", "p2")
BEFORE, DURING, AFTER = 12, 8, 4  # run-now requests


@unittest.skipUnless(os.access(REDIS, os.X_OK), f"{REDIS} is not installed")
class PgIngestOutageTest(TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dstmc-pgingest-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.pg = PgServer()
        self.addCleanup(self.pg.close)
        self.redis = Redis(self.tmp)
        self.addCleanup(self.redis.stop)
        self.api = Service("api", "--db", self.pg.url(), "--queue", self.redis.url, "--listen",
                           "127.0.0.1:0", "--access-log=false", env=with_token(None))
        self.addCleanup(self.api.stop)
        self.c = Client(self.api, token=TOKEN)
        self.addCleanup(self.c.close)
        self.probes = [self.probe(name) for name in PROBES]
        self.requests = []

    def probe(self, agent):
        p = Service("logger", "--queue", self.redis.url, "--api", self.api.url, "--target",
                    "dummy:", "--agent", agent, "--outbox", self.outbox(agent), listen=False)
        self.addCleanup(p.stop)
        p.wait_line(READY)
        return p

    def outbox(self, agent):
        return os.path.join(self.tmp, "outbox-" + agent)

    def waiting(self):
        """The results waiting in the probes' outboxes."""
        return [f for a in PROBES if os.path.isdir(self.outbox(a))
                for f in os.listdir(self.outbox(a)) if f.endswith(".json")]

    def run_now(self, n):
        for _ in range(n):
            r = self.c.post("/api/v1/run", json_body={})
            self.assertEqual(r.status, 202, r.text)
            self.requests.append(r.json()["request_id"])

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.pg.bin, "psql"), "-XAtF,", "-h", self.pg.dir, "-p",
                            str(self.pg.port), "-U", "dstmc", "-d", "postgres", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def stored(self):
        return int(self.psql("SELECT count(*) FROM results"))

    def test_stopped_mid_ingest_nothing_lost_or_twice(self):
        self.run_now(BEFORE)
        wait_for(lambda: self.stored() >= 4, what="results flowing in")
        self.pg.stop()  # by its pid, fast shutdown, while the rest are posted
        r = self.c.get("/readyz")
        self.assertEqual((r.status, r.json()["status"]), (503, "not ready"), r.text)
        self.assertEqual(r.json()["store"], "dependency failed")
        r = self.c.post("/api/v1/results", json_body={"time": 1, "probe": "x"})
        self.assertEqual(r.status, 503, r.text)
        self.assertEqual(r.json()["error"]["message"], "store: dependency failed")
        self.run_now(DURING)  # the queue takes them; the probes' results go to their outboxes
        wait_for(lambda: len(self.waiting()) >= len(PROBES) * DURING, 4 * WAIT,
                 "the results of the outage in the outboxes")

        self.pg.start()  # the same data directory and port
        wait_for(lambda: self.c.get("/readyz").status == 200, what="/readyz ready again")
        self.run_now(AFTER)
        want = len(PROBES) * len(self.requests)

        def settled():
            return not self.waiting() and self.redis.all_acked(PROBES) and \
                self.stored() >= want
        wait_for(settled, 4 * WAIT, "every request acked and every outbox drained")

        rows, ids = self.psql("SELECT count(*), count(DISTINCT id) FROM results").split(",")
        self.assertEqual((int(rows), int(ids)), (want, want))
        pairs = self.psql("SELECT request_id || ' ' || probe FROM results").splitlines()
        self.assertEqual(sorted(pairs), sorted(f"{q} {p}" for q in self.requests for p in PROBES))
        for p in self.probes:  # each probe ran every request, and some went by its outbox
            ran = {m.group(1) for x in p.lines for m in [re.search(r"request (\S+) .*running", x)]
                   if m}
            self.assertEqual(ran, set(self.requests))
            # the log is read by a thread: wait for the lines, do not race them
            p.wait_line("kept in the outbox")
            p.wait_line(r"outbox: result \S+ stored")


if __name__ == "__main__":
    unittest.main()
