"""test_store_pg.py - `dstmc api --db postgresql://...` on a private PostgreSQL, through a
restart of the server: not ready and 503 meanwhile, then everything back, no result lost."""
import uuid

from harness import TOKEN, Client, TestCase, api, wait_for
from pgserver import PgServer

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def result(i=0, **over):
    r = {"id": str(uuid.uuid4()), "time": T0 + i * 60_000, "status": "ok", "probe": "home",
         "engine": "dummy", "target": "dummy:", "download_bps": 100e6 + i, "upload_bps": 20e6,
         "ping_ms": 10.0, "jitter_ms": 1.0}
    r.update(over)
    return r


class StorePgTest(TestCase):
    def setUp(self):
        self.pg = PgServer()
        self.addCleanup(self.pg.close)
        self.svc = api("--db", self.pg.url())
        self.addCleanup(self.svc.stop)
        self.c = Client(self.svc, token=TOKEN)
        self.addCleanup(self.c.close)

    def ids(self):
        r = self.c.get("/api/v1/results?limit=1000")
        self.assertEqual(r.status, 200, r.text)
        return {x["id"] for x in r.json()["results"]}

    def test_ingest_queries_probes(self):
        batch = [result(i, probe="p%d" % (i % 2)) for i in range(5)]
        r = self.c.post("/api/v1/results", json_body=batch)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json()["created"], 5)
        r = self.c.post("/api/v1/results", json_body=batch[:2] + [result(9)])
        self.assertEqual((r.json()["created"], r.json()["existing"]), (1, 2))
        self.assertEqual(len(self.ids()), 6)
        got = self.c.get("/api/v1/results/" + batch[3]["id"]).json()
        self.assertEqual((got["probe"], got["download_bps"]), ("p1", 100e6 + 3))
        r = self.c.get("/api/v1/results?probe=p0").json()["results"]
        self.assertEqual(sorted(x["id"] for x in r),
                         sorted(b["id"] for b in batch if b["probe"] == "p0"))
        probes = self.c.get("/api/v1/probes").json()
        names = [p["name"] for p in (probes["probes"] if isinstance(probes, dict) else probes)]
        self.assertEqual(sorted(names), ["home", "p0", "p1"])
        # the compatible face reads the same rows
        self.assertEqual(len(self.c.get("/SpeedTest").json()), 6)
        r = self.c.get("/readyz")
        self.assertEqual((r.status, r.json()["store"]), (200, "ok"))

    def test_restart_not_ready_then_back_nothing_lost(self):
        before = [result(i) for i in range(3)]
        self.assertEqual(self.c.post("/api/v1/results", json_body=before).status, 201)
        self.pg.stop()  # by its pid

        r = self.c.get("/readyz")
        self.assertEqual(r.status, 503, r.text)
        self.assertEqual(r.json()["status"], "not ready")
        self.assertNotEqual(r.json()["store"], "ok")
        during = result(10)
        r = self.c.post("/api/v1/results", json_body=during)
        self.assertEqual(r.status, 503, r.text)  # the probe keeps it in its outbox
        self.assertEqual(r.json()["error"]["message"], "store: dependency failed")
        self.assertEqual(self.c.get("/api/v1/results").status, 503)
        self.assertEqual(self.c.get("/api/v1/results/" + before[0]["id"]).status, 503)
        self.assertEqual(self.svc.proc.poll(), None)  # still running

        self.pg.start()  # the same data directory and port
        wait_for(lambda: self.c.get("/readyz").status == 200, what="/readyz ready again")
        r = self.c.post("/api/v1/results", json_body=during)  # the outbox drains
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(self.ids(), {x["id"] for x in before + [during]})
        self.assertTrue(any("connected again" in line for line in self.svc.lines),
                        self.svc.lines[-10:])
