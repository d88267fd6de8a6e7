"""test_retention.py - `dstmc api --retention-raw 90d`: old raw results are pruned in the
background by whole days, the series over the pruned range still answers from the rollups (the
same counts, min, max and mean as before), a result later than the retention is folded in, and
/metrics and the log say what went; on SQLite and on a private PostgreSQL."""
import re
import time
import uuid

from harness import TOKEN, Client, TestCase, api, wait_for
from pgserver import PgServer

DAY = 86_400_000
HOUR = 3_600_000


def result(t, probe, down, status="ok"):
    r = {"id": str(uuid.uuid4()), "time": t, "status": status, "probe": probe,
         "engine": "dummy", "download_bps": down, "upload_bps": 2e7, "ping_ms": 9.0}
    if status == "failed":
        r["error"] = "timeout"
    return r


class RetentionMixin:
    def db(self):
        return "sqlite::memory:"

    def setUp(self):
        self.svc = api("--db", self.db(), "--retention-raw", "90d", "--retention-interval", "1")
        self.addCleanup(self.svc.stop)
        self.c = Client(self.svc, token=TOKEN)
        self.addCleanup(self.c.close)

    def count(self, frm, to):
        r = self.c.get(f"/api/v1/results?from={frm}&to={to}&limit=1000")
        self.assertEqual(r.status, 200, r.text)
        return len(r.json()["results"])

    def series(self, frm, to, step=DAY):
        r = self.c.get(f"/api/v1/series?from={frm}&to={to}&step={step}")
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def metric(self, name):
        text = self.c.get("/metrics").text
        m = re.search(r"^%s(?:\{\})? (\S+)$" % name, text, re.M)
        return float(m.group(1)) if m else 0.0

    def test_prune_keeps_series(self):
        now = int(time.time() * 1000)
        day0 = (now - 200 * DAY) // DAY * DAY  # three whole days, 200 days ago
        old = []
        for h in range(72):
            for p in ("a", "b"):
                status = "failed" if h % 11 == 5 and p == "b" else "ok"
                old.append(result(day0 + h * HOUR + 7 * 60_000, p, 1e6 * (h + 1) + (p == "b"),
                                  status))
        new = [result(now - 2 * HOUR + i * 60_000, "a", 5e7) for i in range(5)]
        r = self.c.post("/api/v1/results", json_body=old + new)
        self.assertEqual(r.status, 201, r.text)
        # what the series said of those days when they were raw (counted here too)
        want = []
        for d in range(3):
            rows = [x for x in old if day0 + d * DAY <= x["time"] < day0 + (d + 1) * DAY]
            ok = [x["download_bps"] for x in rows if x["status"] == "ok"]
            want.append((day0 + d * DAY, len(ok), len(rows) - len(ok), min(ok), max(ok),
                         sum(ok) / len(ok)))

        # pruned in the background: the old days go, the recent rows stay
        wait_for(lambda: self.count(day0, day0 + 3 * DAY) == 0, what="old raw rows pruned")
        self.assertEqual(self.count(now - 3 * HOUR, now + HOUR), 5)
        self.svc.wait_line(r"retention: pruned \d+ raw results")
        self.assertEqual(self.metric("dstmc_retention_raw_pruned_total"), len(old))

        s = self.series(day0, day0 + 3 * DAY)
        got = list(zip(s["t"], s["ok"], s["failed"], s["download_min"], s["download_max"],
                       s["download_avg"]))
        self.assertEqual([g[:5] for g in got], [w[:5] for w in want])
        for g, w in zip(got, want):
            self.assertAlmostEqual(g[5], w[5], delta=1e-6 * w[5])
        # hourly buckets too (the hourly rollups)
        h = self.series(day0, day0 + DAY, HOUR)
        self.assertEqual(len(h["t"]), 24)
        self.assertEqual(sum(h["ok"]) + sum(h["failed"]), 48)

        # a result later than the retention: in the series at once, then folded in and pruned
        late = result(day0 + DAY + 30 * 60_000, "c", 9e9)
        r = self.c.post("/api/v1/results", json_body=late)
        self.assertEqual(r.status, 201, r.text)
        s = self.series(day0, day0 + 3 * DAY)
        self.assertEqual(s["ok"][1], want[1][1] + 1)
        self.assertEqual(s["download_max"][1], 9e9)
        wait_for(lambda: self.count(day0, day0 + 3 * DAY) == 0, what="late raw row folded in")
        s = self.series(day0, day0 + 3 * DAY)
        self.assertEqual((s["ok"][1], s["download_max"][1]), (want[1][1] + 1, 9e9))


class RetentionSqliteTest(RetentionMixin, TestCase):
    pass


class RetentionPgTest(RetentionMixin, TestCase):
    def db(self):
        self.pg = PgServer()
        self.addCleanup(self.pg.close)
        return self.pg.url()
