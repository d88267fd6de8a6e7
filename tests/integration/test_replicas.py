"""test_replicas.py - two `dstmc api` on one store behind `dstmc monitor` (issue 12, point 2):
a change through either reaches the event streams of both, once each (PostgreSQL: LISTEN/NOTIFY,
also across a server restart; SQLite: two processes on one file), and two schedule edits from
the same version: exactly one 200 and one 409, and the winner's schedules are stored."""
import json
import tempfile
import threading
import uuid

from harness import (TOKEN, Client, Service, SSEReader, TestCase, wait_for, wait_monitor,
                     with_token)
from pgserver import PgServer

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def result(i=0, **over):
    r = {"id": str(uuid.uuid4()), "time": T0 + i * 60_000, "status": "ok", "probe": "home",
         "engine": "dummy", "target": "dummy:", "download_bps": 100e6 + i, "upload_bps": 20e6,
         "ping_ms": 10.0, "jitter_ms": 1.0}
    r.update(over)
    return r


def events_until(sse, marker_id):
    """The events of sse up to the "result" event of marker_id (bounded by its deadline)."""
    seen = []
    for _ in range(200):
        ev = sse.next_event()
        seen.append((ev.get("event"), json.loads(ev["data"])))
        if ev.get("event") == "result" and seen[-1][1].get("id") == marker_id:
            return seen
    raise AssertionError(f"no result event of {marker_id} among {len(seen)} events")


class Replicas:
    """Mixin: self.db() is the store URL both replicas use."""

    def setUp(self):
        self.api1 = self.service("api", "--listen", "127.0.0.1:0", "--db", self.db(),
                                 "--access-log=false", env=with_token(None))
        self.api2 = self.service("api", "--listen", "127.0.0.1:0", "--db", self.db(),
                                 "--access-log=false", env=with_token(None))
        self.monitor = self.service("monitor", "--backend", self.api1.url, "--backend",
                                    self.api2.url, "--listen", "127.0.0.1:0",
                                    "--calculate=false", "--poll-ms", "200")
        wait_monitor(self.monitor, active=0)  # traffic to api1
        self.c1, self.c2, self.mon = (self.client(s) for s in (self.api1, self.api2,
                                                               self.monitor))

    def service(self, *args, **kw):
        s = Service(*args, **kw)
        self.addCleanup(s.stop)
        return s

    def client(self, svc):
        c = Client(svc, token=TOKEN)
        self.addCleanup(c.close)
        return c

    def sse(self, svc):
        s = SSEReader(svc)
        self.addCleanup(s.close)
        return s

    def test_events_reach_both_replicas_once(self):
        s1, s2 = self.sse(self.api1), self.sse(self.api2)
        r1, r2, marker = result(1), result(2, probe="other"), result(3)
        seen = {"api1": [], "api2": []}
        # (a result deleted before a replica's feed read it is left out: wait for both first)
        self.assertEqual(self.c1.post("/api/v1/results", json_body=r1).status, 201)
        self.assertEqual(self.mon.post("/api/v1/results", json_body=r2).status, 201)
        for name, s in (("api1", s1), ("api2", s2)):
            seen[name] += events_until(s, r1["id"])
            if r2["id"] not in [d.get("id") for e, d in seen[name] if e == "result"]:
                seen[name] += events_until(s, r2["id"])
        r = self.c1.request("DELETE", f"/api/v1/results/{r1['id']}")
        self.assertEqual(r.status, 204, r.text)
        r = self.c2.request("PUT", f"/api/v1/results/{r2['id']}/excluded",
                            json_body={"excluded": True})
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.c2.post("/api/v1/results", json_body=marker).status, 201)
        for name, s in (("api1", s1), ("api2", s2)):
            seen[name] += events_until(s, marker["id"])
            results = [d["id"] for e, d in seen[name] if e == "result"]
            self.assertEqual(sorted(results), sorted([r1["id"], r2["id"], marker["id"]]),
                             name)  # each once, on the replica that stored it and the other
            self.assertIn(("deleted", {"ids": [r1["id"]], "count": 1}), seen[name], name)
            excl = [d for e, d in seen[name] if e == "excluded"]
            self.assertEqual([(d["id"], d["excluded"]) for d in excl], [(r2["id"], True)], name)

    def test_concurrent_schedule_edits_one_wins(self):
        s2 = self.sse(self.api2)
        got = self.c1.get("/api/v1/schedules")
        self.assertEqual(got.status, 200, got.text)
        v = got.json()["version"]
        self.assertEqual(got.header("ETag"), f'"{v}"')
        go, out = threading.Barrier(2), {}

        def put(name, client, cron):
            go.wait()
            out[name] = client.request("PUT", "/api/v1/schedules", json_body={
                "schedules": [{"cron": cron}], "version": v})
        ts = [threading.Thread(target=put, args=("a", self.c1, "1 * * * *")),
              threading.Thread(target=put, args=("b", self.c2, "2 * * * *"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(sorted(x.status for x in out.values()), [200, 409],
                         {k: (x.status, x.text) for k, x in out.items()})
        win = "a" if out["a"].status == 200 else "b"
        lose = "b" if win == "a" else "a"
        cron = {"a": "1 * * * *", "b": "2 * * * *"}[win]
        self.assertEqual(out[win].json()["version"], v + 1)
        self.assertEqual(out[lose].header("ETag"), f'"{v + 1}"')  # the current version
        self.assertIn("changed meanwhile", out[lose].json()["error"]["message"])
        for c in (self.c1, self.c2):
            body = c.get("/api/v1/schedules").json()
            self.assertEqual(([s["cron"] for s in body["schedules"]], body["version"]),
                             ([cron], v + 1))
        # the other replica's event stream shows the winner's
        for _ in range(10):
            ev = s2.next_event(want="schedules")
            if json.loads(ev["data"])["version"] == v + 1:
                break
        self.assertEqual([s["cron"] for s in json.loads(ev["data"])["schedules"]], [cron])
        # If-Match works the same; a stale one changes nothing
        r = self.c2.request("PUT", "/api/v1/schedules", json_body={"schedules": []},
                            headers={"If-Match": f'"{v}"'})
        self.assertEqual(r.status, 409, r.text)
        r = self.c2.request("PUT", "/api/v1/schedules", json_body={"schedules": []},
                            headers={"If-Match": f'"{v + 1}"'})
        self.assertEqual((r.status, r.header("ETag")), (200, f'"{v + 2}"'), r.text)
        r = self.c1.request("PUT", "/api/v1/schedules", json_body={"schedules": [], "version": 1},
                            headers={"If-Match": '"2"'})
        self.assertEqual(r.status, 400, r.text)


class PostgresReplicasTest(Replicas, TestCase):
    def db(self):
        if not hasattr(self, "pg"):
            self.pg = PgServer()
            self.addCleanup(self.pg.close)
        return self.pg.url()

    def test_listen_reconnects_after_a_restart(self):
        s2 = self.sse(self.api2)
        self.pg.stop()  # by its pid
        self.pg.start()  # the same port and data directory
        s2.next_event(want="resync")  # api2's LISTEN is back, and says events were missed
        r = result(7)
        wait_for(lambda: self.c1.post("/api/v1/results", json_body=r).status == 201,
                 what="api1 stores again after the restart")
        ev = s2.next_event(want="result")
        self.assertEqual(json.loads(ev["data"])["id"], r["id"])


class SqliteReplicasTest(Replicas, TestCase):
    def db(self):
        if not hasattr(self, "dir"):
            self.dir = tempfile.TemporaryDirectory(prefix="dstmc-replicas-")
            self.addCleanup(self.dir.cleanup)
        return f"sqlite:{self.dir.name}/results.db"
