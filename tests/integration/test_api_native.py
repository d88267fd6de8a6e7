"""test_api_native.py - the native face /api/v1: ingest, queries, series, CSV, SSE, OpenAPI."""
import csv
import io
import json
import re
import uuid

from harness import TOKEN, Client, SSEReader, TestCase, api, raw_request

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def result(i=0, **over):
    r = {"id": str(uuid.uuid4()), "time": T0 + i * 60_000, "status": "ok", "probe": "home",
         "engine": "dummy", "target": "dummy:", "download_bps": 100e6 + i, "upload_bps": 20e6,
         "ping_ms": 10.0, "jitter_ms": 1.0,
         "server": {"id": 42, "host": "srv", "country": "NO", "lat": 59.9, "lon": 10.7,
                    "distance_m": 2430},
         "client": {"ip": "10.0.0.2", "isp": "ISP", "country": "NO", "lat": 59.9, "lon": 10.7}}
    r.update(over)
    return r


class NativeTest(TestCase):
    def setUp(self):
        self.svc = api("--max-body", "65536")
        self.c = Client(self.svc, token=TOKEN)  # as the operator (test_auth.py: who may do what)

    def tearDown(self):
        self.c.close()
        self.svc.stop()

    def ingest(self, body, status=201):
        r = self.c.post("/api/v1/results", json_body=body)
        self.assertEqual(r.status, status, r.text)
        return r.json()

    def test_service_endpoints(self):
        self.assertEqual(self.c.get("/ping").text, "pong")
        self.assertEqual(self.c.get("/healthz").json(), {"status": "ok"})
        r = self.c.get("/readyz")
        self.assertEqual((r.status, r.json()["store"], r.json()["queue"]), (200, "ok", "ok"))
        m = self.c.get("/metrics")
        self.assertTrue(m.header("content-type").startswith("text/plain"))
        self.assertIn("# TYPE dstmc_results_ingested_total counter", m.text)
        self.assertRegex(m.text, r"(?m)^process_resident_memory_bytes \d+")

    def test_ingest_get_and_idempotency(self):
        r = result()
        a = self.ingest(r)
        self.assertEqual((a["created"], a["existing"], a["ids"]), (1, 0, [r["id"]]))
        b = self.ingest(r, status=200)  # the same id again: stored once
        self.assertEqual((b["created"], b["existing"]), (0, 1))
        got = self.c.get("/api/v1/results/" + r["id"]).json()
        self.assertEqual(got["time"], "2026-01-01T00:00:00.000Z")
        for k in ("download_bps", "upload_bps", "ping_ms", "probe", "engine", "status"):
            self.assertEqual(got[k], r[k], k)
        self.assertEqual(got["server"]["distance_m"], 2430)
        self.assertIsNone(got["packet_loss_pct"])
        self.assertEqual(self.c.get("/api/v1/results/" + str(uuid.uuid4())).status, 404)
        m = self.c.get("/metrics").text
        self.assertRegex(m, r'dstmc_results_ingested_total\{face="native"\} 1\b')
        self.assertRegex(m, r'dstmc_results_duplicate_total\{face="native"\} 1\b')

    def test_batch_is_atomic(self):
        good = [result(i) for i in range(3)]
        bad = good + [result(3, download_bps=-1)]
        r = self.c.post("/api/v1/results", json_body=bad)
        self.assertEqual(r.status, 400)
        self.assertIn("[3].download_bps", r.json()["error"]["message"])
        self.assertEqual(self.c.get("/api/v1/results").json()["results"], [])
        self.assertEqual(self.ingest(good)["created"], 3)
        mixed = good[:1] + [result(9)]
        self.assertEqual(self.ingest(mixed), {"created": 1, "existing": 1,
                                              "ids": [good[0]["id"], mixed[1]["id"]]})

    def test_bad_input_changes_nothing(self):
        self.ingest(result())
        cases = [
            (b"{", "invalid JSON"),
            (b"[]", "array of 1 to"),
            (b"42", "result object"),
            (json.dumps(result(foo=1)).encode(), "foo: unknown field"),
            (json.dumps(result(server={"host": "x", "port": 1})).encode(), "server.port"),
            (json.dumps(result(download_bps="fast")).encode(), "download_bps"),
            (json.dumps(result(download_bps=1e14)).encode(), "download_bps"),
            (json.dumps(result(ping_ms=-1)).encode(), "ping_ms"),
            (json.dumps(result(id="nope")).encode(), "id"),
            (json.dumps(result(time="yesterday")).encode(), "time"),
            (json.dumps(result(status="maybe")).encode(), "status"),
            (json.dumps(result(status="failed")).encode(), "error"),
            (json.dumps(result(probe="p" * 129)).encode(), "probe"),
            (json.dumps(result(server={"lat": 91})).encode(), "server.lat"),
            (b'{"download_bps": 123456789012345678901234567890}', "invalid JSON"),
        ]
        for body, needle in cases:
            r = self.c.post("/api/v1/results", body=body,
                            headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, body)
            self.assertIn(needle, r.json()["error"]["message"], body)
        r = self.c.post("/api/v1/results", json_body=[result(i) for i in range(1001)])
        self.assertEqual(r.status, 413)  # over --max-body
        self.assertEqual(len(self.c.get("/api/v1/results").json()["results"]), 1)
        # garbage that is not even HTTP does not hurt the server
        raw_request(self.svc.host, self.svc.port, b"\x00\xffGARBAGE\r\n\r\n")
        self.assertEqual(self.c.get("/ping").text, "pong")

    def test_failed_results_are_results(self):
        f = result(status="failed", error="connect to 10.0.0.9 port 5201: refused",
                   download_bps=None, upload_bps=None, ping_ms=None)
        self.ingest(f)
        got = self.c.get("/api/v1/results?status=failed").json()["results"]
        self.assertEqual([(g["status"], g["error"]) for g in got], [("failed", f["error"])])
        self.assertEqual(self.c.get("/api/v1/results?status=ok").json()["results"], [])

    def test_list_filters_and_cursor_paging(self):
        rows = [result(i, probe="a" if i % 2 else "b") for i in range(25)]
        rows += [result(30, id=str(uuid.uuid4()), time=T0 + 30 * 60_000) for _ in range(4)]
        self.ingest(rows)
        seen, cursor = [], None
        while True:
            q = "/api/v1/results?limit=7" + (f"&cursor={cursor}" if cursor else "")
            page = self.c.get(q).json()
            seen += [r["id"] for r in page["results"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), 29)
        self.assertEqual(len(set(seen)), 29)  # no duplicates, none skipped at equal timestamps
        got = self.c.get("/api/v1/results?probe=a&limit=1000").json()["results"]
        self.assertEqual(len(got), 12)
        times = [r["time"] for r in got]
        self.assertEqual(times, sorted(times, reverse=True))
        win = self.c.get(f"/api/v1/results?from={T0 + 5 * 60_000}&to=2026-01-01T00:10:00Z").json()
        self.assertEqual(len(win["results"]), 5)  # [from, to)
        for q, needle in (("limit=0", "limit"), ("limit=1001", "limit"), ("status=meh", "status"),
                          ("from=never", "from"), ("cursor=abc", "cursor"), ("bogus=1", "bogus")):
            r = self.c.get("/api/v1/results?" + q)
            self.assertEqual(r.status, 400, q)
            self.assertIn(needle, r.json()["error"]["message"])

    def test_list_sorted_by_a_measure_pages_through_every_result(self):
        """Sorting ordered only the page shown: the API had no order but time."""
        downs = [50e6, 10e6, 90e6, 30e6, 70e6, 20e6, 80e6, 40e6, 60e6]
        rows = [result(i, download_bps=d, ping_ms=float(i + 1)) for i, d in enumerate(downs)]
        rows.append(result(20, status="failed", error="timeout", download_bps=None,
                           upload_bps=None, ping_ms=None))
        self.ingest(rows)

        def all_pages(q):
            seen, cursor = [], None
            for _ in range(20):  # bounded: 10 results in pages of 3
                page = self.c.get(f"/api/v1/results?limit=3&{q}" +
                                  (f"&cursor={cursor}" if cursor else "")).json()
                seen += page["results"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            return seen

        got = all_pages("sort=download")  # descending by default; no value last
        self.assertEqual([r.get("download_bps") for r in got], sorted(downs, reverse=True) + [None])
        got = all_pages("sort=download&order=asc")  # ascending: no value first
        self.assertEqual([r.get("download_bps") for r in got], [None] + sorted(downs))
        got = all_pages("sort=ping&order=asc&status=ok")
        self.assertEqual([r["ping_ms"] for r in got], [float(i + 1) for i in range(9)])
        got = all_pages("sort=time&order=asc")
        self.assertEqual([r["time"] for r in got], sorted(r["time"] for r in got))
        self.assertEqual(len(got), 10)
        for q, needle in (("sort=speed", "sort"), ("sort=download&order=up", "order"),
                          ("sort=download&cursor=1.2", "cursor"), ("cursor=o3", "cursor"),
                          ("sort=upload&cursor=o-1", "cursor")):
            r = self.c.get("/api/v1/results?" + q)
            self.assertEqual(r.status, 400, q)
            self.assertIn(needle, r.json()["error"]["message"])

    def test_series_min_avg_max(self):
        step = 3_600_000
        base = T0
        rows = [result(0, time=base + 1000, download_bps=10e6, ping_ms=5),
                result(0, time=base + 2000, download_bps=30e6, ping_ms=15),
                result(0, time=base + step + 10, download_bps=50e6, ping_ms=8),
                result(0, time=base + step + 20, status="failed", error="timeout",
                       download_bps=None, upload_bps=None, ping_ms=None)]
        self.ingest(rows)
        s = self.c.get(f"/api/v1/series?from={base}&to={base + 3 * step}&step={step}").json()
        self.assertEqual(s["step"], step)
        self.assertEqual(s["t"], [base, base + step])
        self.assertEqual(s["ok"], [2, 1])
        self.assertEqual(s["failed"], [0, 1])
        self.assertEqual(s["download_min"], [10e6, 50e6])
        self.assertEqual(s["download_avg"], [20e6, 50e6])
        self.assertEqual(s["download_max"], [30e6, 50e6])
        self.assertEqual(s["ping_avg"], [10, 8])
        # a whole year in one request: the server picks the bucket width
        y = self.c.get(f"/api/v1/series?from={base}&to={base + 365 * 86_400_000}").json()
        self.assertLessEqual((y["to"] - y["from"]) / y["step"], 400)
        self.assertEqual(sum(y["ok"]) + sum(y["failed"]), 4)
        for q in ("step=10", f"from={base}&to={base}", "from=x", "probe=a&zzz=1"):
            self.assertEqual(self.c.get("/api/v1/series?" + q).status, 400, q)

    def test_extreme_numbers_are_400_naming_the_field(self):
        """Query integers at and past the int64 limits (UBSan aborted the API on the first)."""
        self.ingest(result(0))
        lo, hi = "-9223372036854775808", "9223372036854775807"
        bad = [("series?to=" + lo, "to"), ("series?to=" + hi, "to"), ("series?from=" + lo, "from"),
               ("series?from=" + hi, "from"), (f"series?from={lo}&to={hi}", "to"),
               ("series?to=-9223372036854775809", "to"), ("series?from=99999999999999999999", "from"),
               (f"series?from={T0}&to={T0 - 1}", "from"),  # from after to
               (f"series?from={T0}&to={T0 + 1}&step=" + hi, "step"),
               (f"series?from={T0}&to={T0 + 1}&step=" + lo, "step"),
               (f"series?from={T0}&to={T0 + 1}&step=400000000000000", "step"),
               ("series?step=99999999999999999999", "step"), ("series?step=999", "step"),
               ("results?from=" + lo, "from"), ("results?to=" + hi, "to"),
               ("results?limit=99999999999999999999", "limit"), ("results?limit=" + lo, "limit"),
               ("results?cursor=99999999999999999999.1", "cursor"),
               ("results?cursor=1.99999999999999999999", "cursor"), ("results?cursor=1.2x", "cursor"),
               ("results.csv?from=" + lo, "from"), ("results.csv?to=1" + hi, "to")]
        for q, field in bad:
            r = self.c.get("/api/v1/" + q)
            self.assertEqual(r.status, 400, q)
            self.assertTrue(r.json()["error"]["message"].startswith(field + ":"), (q, r.text))
        # the limits the API does take
        first, last = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"
        s = self.c.get(f"/api/v1/series?from={first}&to={last}").json()
        self.assertEqual(sum(s["ok"]), 1)
        span = 253402300799999 + 62135596800000
        s = self.c.get(f"/api/v1/series?from={first}&to={last}&step={span}").json()
        self.assertEqual((s["t"], s["ok"]), ([s["from"]], [1]))  # one bucket holds everything
        r = self.c.get(f"/api/v1/results?from=-62135596800000&to=253402300799999&cursor={hi}.{hi}")
        self.assertEqual(len(r.json()["results"]), 1)
        for q in (f"From={lo}", f"To={hi}", "From=-2147483649", "To=2147483648"):
            r = self.c.get("/SpeedTest?" + q)  # Int32 binders: 400 naming the field
            self.assertEqual(r.status, 400, q)
            self.assertIn(q.split("=")[0], r.json()["errors"])
        r = self.c.get("/SpeedTest?From=-2147483648&To=2147483647")
        self.assertEqual((r.status, len(r.json())), (200, 1))
        self.assertEqual(self.c.get("/ping").text, "pong")

    def test_texts_are_never_cut(self):
        """Fixed buffers cut the gauges' probe label at 300 bytes (two probes shared one, and
        the label could end in half a character), and an error quoting raw bytes became
        '(unprintable)'."""
        names = ["\U0001F600" * 100 + "A", "\U0001F600" * 100 + "B"]  # 401 bytes each
        self.ingest([result(0, probe=names[0], download_bps=1e6),
                     result(1, probe=names[1], download_bps=2e6)])
        m = self.c.get("/metrics")
        for name, v in zip(names, ("1000000", "2000000")):
            self.assertIn(f'dstmc_probe_last_download_bps{{probe="{name}"}} {v}\n', m.text)
        r = self.c.get("/api/v1/results?%FF=1")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["message"], "unknown query argument '?'")

    def test_csv_export(self):
        rows = [result(i) for i in range(2500)]  # more than one page of the stream
        rows[7]["error"] = None
        rows[8] = result(8, status="failed", error='refused, "twice"\nthen gave up',
                         download_bps=None)
        for i in range(0, 2500, 100):
            self.ingest(rows[i:i + 100])
        r = self.c.get("/api/v1/results.csv")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/csv"))
        table = list(csv.DictReader(io.StringIO(r.text)))
        self.assertEqual(len(table), 2500)
        self.assertEqual(len({t["id"] for t in table}), 2500)
        bad = next(t for t in table if t["status"] == "failed")
        self.assertEqual(bad["error"], 'refused, "twice"\nthen gave up')
        self.assertEqual(bad["download_bps"], "")
        one = self.c.get("/api/v1/results.csv?from=2026-01-01T00:05:00Z&to=" + str(T0 + 6 * 60_000))
        self.assertEqual(len(list(csv.DictReader(io.StringIO(one.text)))), 1)

    def test_events_stream_new_results(self):
        sse = SSEReader(self.svc)
        try:
            self.assertEqual(sse.resp.getheader("Content-Type"), "text/event-stream")
            r = result()
            self.ingest(r)
            ev = sse.next_event(want="result")
            self.assertEqual(json.loads(ev["data"])["id"], r["id"])
            first_id = int(ev["id"])
            self.ingest(r, status=200)  # a duplicate is no new result
            r2 = result(1)
            self.ingest(r2)
            ev2 = sse.next_event(want="result")
            self.assertEqual(json.loads(ev2["data"])["id"], r2["id"])
        finally:
            sse.close()
        # a client that reconnects with Last-Event-ID gets what it missed
        again = SSEReader(self.svc, headers={"Last-Event-ID": str(first_id)})
        try:
            ev = again.next_event(want="result")
            self.assertEqual(json.loads(ev["data"])["id"], r2["id"])
        finally:
            again.close()

    def test_run_now_without_probe(self):
        r = self.c.post("/api/v1/run", json_body={"target": "dummy:"})
        self.assertEqual(r.status, 202)
        body = r.json()
        self.assertEqual(body["probes_alive"], 0)
        self.assertIn("no probe is running", body["message"])
        self.assertEqual(self.c.post("/api/v1/run", json_body={"targ": "x"}).status, 400)

    def test_heartbeats_list_probes(self):
        r = self.c.post("/api/v1/probes/kitchen/heartbeat",
                        json_body={"state": "idle", "location": "kitchen"})
        self.assertEqual(r.status, 204)
        self.ingest(result(probe="attic"))
        probes = {p["name"]: p for p in self.c.get("/api/v1/probes").json()["probes"]}
        self.assertEqual(probes["kitchen"]["state"], "idle")
        self.assertEqual(probes["kitchen"]["location"], "kitchen")
        self.assertEqual(probes["attic"]["results"], 1)
        self.assertEqual(probes["attic"]["state"], "offline")
        run = self.c.post("/api/v1/run", json_body={"probe": "kitchen"}).json()
        self.assertEqual(run["probes_alive"], 1)

    def test_openapi_matches_the_server(self):
        doc = self.c.get("/api/v1/openapi.json").json()
        self.assertEqual(doc["openapi"], "3.0.3")
        self.ingest(result(id="6f1c7a52-0a7e-4d55-9c35-1d3c1a4c2b10"))
        samples = {"{id}": "6f1c7a52-0a7e-4d55-9c35-1d3c1a4c2b10", "{name}": "probe1"}
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                url = path
                for k, v in samples.items():
                    url = url.replace(k, v)
                if path == "/api/v1/events":
                    continue  # a stream: checked in test_events_stream_new_results
                body = {} if method == "post" else None
                r = self.c.request(method.upper(), url, json_body=body)
                self.assertIn(str(r.status), op["responses"], f"{method} {path}: {r.status}")
        # and every route of the server is documented
        for method, path in (("get", "/api/v1/results"), ("post", "/api/v1/results"),
                             ("get", "/api/v1/series"), ("get", "/SpeedTest"),
                             ("post", "/api/v1/run"), ("get", "/metrics")):
            self.assertIn(method, doc["paths"][path])

    def test_swagger_and_ui_are_served(self):
        r = self.c.get("/swagger")
        self.assertIn(r.status, (301, 302, 308))
        ui = self.c.get("/swagger/")
        self.assertEqual(ui.status, 200)
        self.assertIn("swagger-ui-bundle.js", ui.text)
        self.assertEqual(self.c.get("/swagger/swagger-ui-bundle.js").status, 200)
        self.assertEqual(self.c.get("/swagger/v1/swagger.json").json()["openapi"], "3.0.3")
        page = self.c.get("/")
        self.assertEqual(page.status, 200)
        self.assertIn("Download vs. Upload", page.text + self.c.get("/app.js").text)
        etag = page.header("etag")
        self.assertEqual(self.c.get("/", headers={"If-None-Match": etag}).status, 304)
        self.assertEqual(self.c.get("/configuration.json").json(), {"speedTestApiBase": ""})
        self.assertEqual(self.c.get("/no/such/file.js").status, 404)


class DrainTest(TestCase):
    def test_sigterm_stops_cleanly_with_open_streams(self):
        """An open event stream never ends by itself: the API stops (exit 0, within stop()'s
        deadline) only because it ends the stream."""
        svc = api()
        sse = SSEReader(svc)
        code = svc.stop()
        self.assertEqual(code, 0)
        sse.close()
        self.assertTrue(any(re.search(r"stopping", line) for line in svc.lines))
