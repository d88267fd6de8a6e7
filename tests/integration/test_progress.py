"""test_progress.py - live progress of a running test over the wire: a probe's running heartbeats
with a phase come out of /api/v1/events as `progress` events (phase, bps, elapsed_s), at most one
a second per probe but one at each new phase; other heartbeats stay `probe` events; and `dstmc up`
carries its probe's progress through (a dummy:?seconds=N test reports as it goes)."""
import json
import time

from harness import TOKEN, Client, Service, SSEReader, TestCase, api, wait_for, with_token


def beat(state, phase=None, bps=None, elapsed=None, rid="req-1"):
    b = {"state": state, "request_id": rid}
    if phase:
        b.update(phase=phase, bps=bps, elapsed_s=elapsed)
    return b


class ProgressEventsTest(TestCase):
    def setUp(self):
        self.svc = api()
        self.c = Client(self.svc, token=TOKEN)
        self.sse = SSEReader(self.svc)

    def tearDown(self):
        self.sse.close()
        self.c.close()
        self.svc.stop()

    def post(self, name, body):
        r = self.c.post(f"/api/v1/probes/{name}/heartbeat", json_body=body)
        self.assertEqual(r.status, 204, r.text)

    def events_until_probe(self):
        """The events up to and including the next `probe` event, as (event, data) pairs."""
        out = []
        while True:
            ev = self.sse.next_event()
            out.append((ev.get("event"), json.loads(ev["data"])))
            if ev.get("event") == "probe":
                return out

    def test_progress_is_its_own_event_rate_limited_per_phase(self):
        self.post("box", beat("running"))  # a test starts: no phase yet
        first = self.events_until_probe()
        self.assertEqual([e for e, _ in first], ["probe"])

        t0 = time.monotonic()
        for i in range(10):
            self.post("box", beat("running", "download", 5e7 + i, 1.0 + i / 10))
        spent = time.monotonic() - t0
        self.post("box", beat("running", "upload", 2e7, 3.0))
        self.post("box", beat("idle", rid=None))
        evs = self.events_until_probe()
        names = [e for e, _ in evs]
        self.assertEqual(names[-1], "probe")
        down = [d for e, d in evs if e == "progress" and d["phase"] == "download"]
        up = [d for e, d in evs if e == "progress" and d["phase"] == "upload"]
        # ten beats of one phase: the first goes out, then at most one a second
        self.assertGreaterEqual(len(down), 1)
        self.assertLessEqual(len(down), 1 + int(spent), (spent, down))
        self.assertEqual(down[0]["bps"], 5e7)
        self.assertEqual(down[0]["elapsed_s"], 1.0)
        self.assertEqual(down[0]["name"], "box")
        self.assertEqual(down[0]["request_id"], "req-1")
        # a new phase goes out at once, whatever the rate
        self.assertEqual(len(up), 1, evs)
        self.assertEqual(names.index("progress"), 0)
        self.assertEqual(evs[-1][1]["state"], "idle")

    def test_rate_limit_is_per_probe(self):
        self.post("a", beat("running", "download", 1e6, 1.0))
        self.post("b", beat("running", "download", 2e6, 1.0))
        self.post("a", beat("idle", rid=None))
        evs = self.events_until_probe()
        got = sorted(d["name"] for e, d in evs if e == "progress")
        self.assertEqual(got, ["a", "b"])

    def test_probe_list_keeps_the_last_progress(self):
        self.post("box", beat("running", "upload", 3e7, 4.5))
        r = self.c.get("/api/v1/probes").json()
        box = next(p for p in r["probes"] if p["name"] == "box")
        self.assertEqual(box["state"], "running")
        self.assertEqual(box["heartbeat"]["phase"], "upload")
        self.assertEqual(box["heartbeat"]["elapsed_s"], 4.5)

    def test_openapi_names_the_event(self):
        doc = self.c.get("/api/v1/openapi.json").json()
        ev = doc["paths"]["/api/v1/events"]["get"]
        self.assertIn("progress", ev["summary"])
        props = doc["paths"]["/api/v1/probes/{name}/heartbeat"]["post"]["requestBody"]["content"][
            "application/json"]["schema"]["properties"]
        self.assertIn("elapsed_s", props)


class UpProgressTest(TestCase):
    """`dstmc up`: a run-now of dummy:?seconds=3 shows its phases live, then the result."""

    def test_run_reports_progress_then_result(self):
        svc = Service("up", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:", "--target",
                      "dummy:", "--server-http", "off", "--server-iperf3", "off", "--agent",
                      "box", env=with_token(None))
        try:
            c = Client(svc, token=TOKEN)
            wait_for(lambda: any(p["name"] == "box" and p["state"] == "idle"
                                 for p in c.get("/api/v1/probes").json()["probes"]),
                     what="the probe's first heartbeat")
            r = c.post("/api/v1/schedules/pause")  # only our run-now runs
            self.assertEqual(r.status, 200, r.text)
            sse = SSEReader(svc)
            r = c.post("/api/v1/run", json_body={"target": "dummy:?seconds=3"})
            self.assertEqual(r.status, 202, r.text)
            rid = r.json()["request_id"]
            phases, result = [], None
            for _ in range(200):  # bounded: progress of 3 s, then the result
                ev = sse.next_event()
                data = json.loads(ev["data"])
                if ev.get("event") == "progress" and data.get("request_id") == rid:
                    self.assertGreaterEqual(data["elapsed_s"], 0)
                    self.assertIn("bps", data)
                    phases.append(data["phase"])
                elif ev.get("event") == "result" and data.get("request_id") == rid:
                    result = data
                    break
            self.assertIsNotNone(result)
            self.assertEqual(result["target"], "dummy:?seconds=3")
            # each phase once at least, in the order a test runs them
            seen = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
            self.assertEqual(seen, ["latency", "download", "upload"], phases)
            sse.close()
            c.close()
        finally:
            svc.stop()
