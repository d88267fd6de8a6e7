"""test_delete.py - deleting and excluding results over the wire: DELETE /api/v1/results/{id},
POST /api/v1/results/delete (count first with dry_run), PUT /api/v1/results/{id}/excluded;
who may do it, exact counts, demo rows, and no stale answer (cache, series, events) after it."""
import json
import os
import tempfile
import time
import uuid

from harness import AUTH, TOKEN, Client, SSEReader, TestCase, api, run

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


def result(t, probe="a", down=1e8, **over):
    r = {"id": str(uuid.uuid4()), "time": t, "status": "ok", "probe": probe, "engine": "dummy",
         "download_bps": down, "upload_bps": 2e7, "ping_ms": 9.0}
    r.update(over)
    return r


class DeleteTest(TestCase):
    def setUp(self):
        self.svc = api()
        self.c = Client(self.svc, token=TOKEN)
        self.anon = Client(self.svc)

    def tearDown(self):
        self.c.close()
        self.anon.close()
        self.svc.stop()

    def ingest(self, rows):
        r = self.c.post("/api/v1/results", json_body=rows)
        self.assertEqual(r.status, 201, r.text)
        return [x["id"] for x in rows]

    def ids(self, q=""):
        r = self.c.get("/api/v1/results?limit=1000" + q)
        self.assertEqual(r.status, 200, r.text)
        return {x["id"] for x in r.json()["results"]}

    def delete(self, body, q="", status=200):
        r = self.c.post("/api/v1/results/delete" + q, json_body=body)
        self.assertEqual(r.status, status, r.text)
        return r.json()

    def test_delete_one(self):
        ids = self.ingest([result(T0 + i * MIN) for i in range(3)])
        ev = SSEReader(self.svc)
        try:
            r = self.c.request("DELETE", f"/api/v1/results/{ids[1]}")
            self.assertEqual(r.status, 204, r.text)
            self.assertEqual(r.body, b"")
            e = ev.next_event(want="deleted")
            self.assertEqual(json.loads(e["data"]), {"ids": [ids[1]], "count": 1})
        finally:
            ev.close()
        self.assertEqual(self.c.get(f"/api/v1/results/{ids[1]}").status, 404)
        self.assertEqual(self.ids(), {ids[0], ids[2]})
        # again, and ids that never were: 404, nothing else goes
        for bad in (ids[1], str(uuid.uuid4()), "not-a-uuid"):
            r = self.c.request("DELETE", f"/api/v1/results/{bad}")
            self.assertEqual(r.status, 404, bad)
            self.assertIn("no result with id", r.json()["error"]["message"])
        self.assertEqual(self.ids(), {ids[0], ids[2]})
        metrics = self.c.get("/metrics").text
        self.assertIn("dstmc_results_deleted_total 1", metrics)

    def test_delete_by_filter_counts_first(self):
        # probe a: minutes 0..9, probe b: minutes 0..4
        a = self.ingest([result(T0 + i * MIN, "a") for i in range(10)])
        b = self.ingest([result(T0 + i * MIN, "b") for i in range(5)])
        rng = {"from": T0 + 2 * MIN, "to": "2026-01-01T00:06:00Z"}  # minutes 2..5
        # dry run, in the body and as ?dry_run=1: exact counts, nothing changes
        self.assertEqual(self.delete({**rng, "dry_run": True}), {"count": 7, "dry_run": True})
        self.assertEqual(self.delete(rng, "?dry_run=1"), {"count": 7, "dry_run": True})
        self.assertEqual(self.delete({**rng, "probe": "b", "dry_run": True})["count"], 3)
        self.assertEqual(len(self.ids()), 15)
        # then for real: the same number, and exactly those rows go
        self.assertEqual(self.delete({**rng, "probe": "a"}), {"count": 4, "dry_run": False})
        self.assertEqual(self.ids(), set(a[:2] + a[6:] + b))
        self.assertEqual(self.delete({**rng, "probe": "a"})["count"], 0)
        self.assertEqual(self.delete({"probe": "b"})["count"], 5)
        self.assertEqual(self.ids(), set(a[:2] + a[6:]))
        # everything only by name
        self.assertEqual(self.delete({"all": True, "dry_run": True})["count"], 6)
        self.assertEqual(self.delete({"all": True})["count"], 6)
        self.assertEqual(self.ids(), set())

    def test_bad_filters_are_400_and_change_nothing(self):
        self.ingest([result(T0 + i * MIN) for i in range(4)])
        bad = [({}, "refusing to delete every result"),
               ({"dry_run": True}, "refusing to delete every result"),
               ({"all": False}, "refusing to delete every result"),
               ({"from": T0, "to": T0}, "to: must be after from"),
               ({"from": "yesterday"}, "from: must be ISO 8601 or integer milliseconds"),
               ({"to": 10 ** 17}, "to: out of range (years 1 to 9999)"),
               ({"probe": ""}, "probe: must be a string of 1 to 128 characters"),
               ({"probe": 5}, "probe: must be a string of 1 to 128 characters"),
               ({"demo": "yes"}, "demo: must be true or false"),
               ({"everything": True}, "everything: unknown field"),
               ([], "body: must be a JSON object")]
        for body, msg in bad:
            r = self.c.post("/api/v1/results/delete", json_body=body)
            self.assertEqual(r.status, 400, body)
            self.assertIn(msg, r.json()["error"]["message"], body)
        r = self.c.post("/api/v1/results/delete?dry_run=maybe", json_body={"probe": "a"})
        self.assertEqual(r.status, 400)
        r = self.c.post("/api/v1/results/delete?force=1", json_body={"probe": "a"})
        self.assertEqual(r.status, 400)
        r = self.c.post("/api/v1/results/delete", body="{nope",
                        headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(len(self.ids()), 4)

    def test_exclude_keeps_the_row_and_leaves_the_series(self):
        ids = self.ingest([result(T0 + i * MIN, down=10e6) for i in range(4)] +
                          [result(T0 + 5 * MIN, down=40e9)])  # the loopback outlier
        series = f"/api/v1/series?from={T0}&to={T0 + 60 * MIN}&step={3_600_000}"
        self.assertEqual(self.c.get(series).json()["download_max"], [40e9])
        ev = SSEReader(self.svc)
        try:
            r = self.c.request("PUT", f"/api/v1/results/{ids[4]}/excluded",
                               json_body={"excluded": True})
            self.assertEqual(r.status, 200, r.text)
            self.assertIs(r.json()["excluded"], True)
            e = json.loads(ev.next_event(want="excluded")["data"])
            self.assertEqual((e["id"], e["excluded"]), (ids[4], True))
        finally:
            ev.close()
        s = self.c.get(series).json()
        self.assertEqual((s["ok"], s["download_max"]), ([4], [10e6]))
        # still stored and listed, marked
        self.assertIs(self.c.get(f"/api/v1/results/{ids[4]}").json()["excluded"], True)
        listed = {x["id"]: x for x in self.c.get("/api/v1/results").json()["results"]}
        self.assertEqual(len(listed), 5)
        self.assertIs(listed[ids[4]]["excluded"], True)
        self.assertNotIn("excluded", listed[ids[0]])  # shown only when true
        # undone
        r = self.c.request("PUT", f"/api/v1/results/{ids[4]}/excluded",
                           json_body={"excluded": False})
        self.assertEqual(r.status, 200, r.text)
        self.assertNotIn("excluded", r.json())
        self.assertEqual(self.c.get(series).json()["download_max"], [40e9])
        for body in ({}, {"excluded": 1}, {"excluded": True, "x": 1}, [True]):
            r = self.c.request("PUT", f"/api/v1/results/{ids[4]}/excluded", json_body=body)
            self.assertEqual(r.status, 400, body)
        r = self.c.request("PUT", f"/api/v1/results/{uuid.uuid4()}/excluded",
                           json_body={"excluded": True})
        self.assertEqual(r.status, 404)

    def test_cached_answers_are_not_stale(self):
        now = int(time.time() * 1000)
        ids = self.ingest([result(now - i * MIN) for i in range(3)])
        first = self.anon.get("/SpeedTest")  # the compatible face's cached answer
        self.assertEqual(first.status, 200)
        self.assertEqual(len(first.json()), 3)
        self.assertEqual(len(self.anon.get("/SpeedTest").json()), 3)
        self.assertEqual(self.c.request("DELETE", f"/api/v1/results/{ids[0]}").status, 204)
        self.assertEqual(len(self.anon.get("/SpeedTest").json()), 2)
        self.assertEqual(self.delete({"from": now - 10 * MIN})["count"], 2)
        self.assertEqual(self.anon.get("/SpeedTest").json(), [])


class DemoTest(TestCase):
    def test_remove_demo_data_in_one_call(self):
        with api("--seed-demo") as svc:
            c = Client(svc, token=TOKEN)
            try:
                real = result(int(time.time() * 1000), "home")
                self.assertEqual(c.post("/api/v1/results", json_body=real).status, 201)
                page = c.get("/api/v1/results?limit=5").json()["results"]
                self.assertTrue(all(x.get("demo") is True for x in page if x["id"] != real["id"]))
                self.assertNotIn("demo", c.get(f"/api/v1/results/{real['id']}").json())
                r = c.post("/api/v1/results/delete", json_body={"demo": True, "dry_run": True})
                self.assertEqual(r.json(), {"count": 1345, "dry_run": True})  # 14 days / 15 min
                r = c.post("/api/v1/results/delete", json_body={"demo": True})
                self.assertEqual(r.json(), {"count": 1345, "dry_run": False})
                left = c.get("/api/v1/results?limit=1000").json()["results"]
                self.assertEqual([x["id"] for x in left], [real["id"]])
            finally:
                c.close()


def once(svc, method, path, body, token=None):
    """One request on its own connection, closed after."""
    c = Client(svc, token=token)
    try:
        return c.request(method, path, json_body=body)
    finally:
        c.close()


class AuthTest(TestCase):
    """Every delete and exclusion needs the admin scope, JSON, and no foreign page."""

    def test_refused_without_admin(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            toks = {}
            for scope in ("read", "ingest"):
                code, out, err = run("token", "new", "--db", db, "--name", scope, "--scope", scope)
                self.assertEqual(code, 0, err)
                toks[scope] = out.strip()
            with api("--db", db) as svc:
                c = Client(svc, token=TOKEN)
                rid = result(T0)["id"]
                self.assertEqual(c.post("/api/v1/results", json_body=result(T0, id=rid)).status,
                                 201)
                calls = [("DELETE", f"/api/v1/results/{rid}", None),
                         ("POST", "/api/v1/results/delete", {"all": True}),
                         ("POST", "/api/v1/results/delete?dry_run=1", {"all": True}),
                         ("PUT", f"/api/v1/results/{rid}/excluded", {"excluded": True})]
                for method, path, body in calls:
                    who = path + " " + method
                    r = once(svc, method, path, body)
                    self.assertEqual(r.status, 401, who)
                    for scope, tok in toks.items():
                        r = once(svc, method, path, body, tok)
                        self.assertEqual(r.status, 403, f"{who} {scope}")
                    # a page of another origin, even with the admin token
                    r = c.request(method, path, json_body=body,
                                  headers={"Origin": "http://evil.example"})
                    self.assertEqual(r.status, 403, who)
                    r = c.request(method, path, body=json.dumps(body or {}),
                                  headers={"Content-Type": "text/plain"})
                    self.assertEqual(r.status, 415, who)
                got = c.get(f"/api/v1/results/{rid}").json()
                self.assertNotIn("excluded", got)  # nothing changed
                self.assertEqual(len(c.get("/api/v1/results").json()["results"]), 1)
                c.close()
