"""test_monitor_api.py - two `dstmc api` replicas on one SQLite file behind `dstmc monitor`.

FailoverTest: a real redis-server, api1 and api2 (same --db, same --queue), the monitor in front
(api1 first), three `dstmc logger` probes posting through the monitor. Run-now requests are
published through the monitor while api1 (the replica taking traffic) is SIGKILLed half-way:
every expected result is stored exactly once (counted through the monitor and in the SQLite file
itself), the monitor shows api1 down and api2 active, everything after the kill is answered by
api2, the publisher saw no 5xx outside the one poll period after the kill, and an event stream
open through the monitor is cut (so a client reconnects, through the monitor, to api2).

StallTest: api1 SIGSTOPped (its connections stay open, only GET /ping can tell): the monitor
cuts the event stream through it, moves a request it had sent there to api2, and sends traffic
back to api1 once it answers again. (Expected to fail: the moved POST is run by api1 as well.)

FidelityTest: what goes through the monitor arrives as sent and comes back as answered: a
result POSTed with a bearer token, read back by id; a query string; errors; PUT; HEAD;
conditional GET; a CSV export larger than the proxy's buffer, identical to the direct one.
(Expected to fail: HEAD keeps the Content-Length a GET would have.)
"""
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import unittest
import uuid

from harness import (AUTH, TOKEN, WAIT, Client, Service, SSEReader, TestCase, monitor_epoch,
                     monitor_status, wait_for, wait_monitor, with_token)
from test_faults import READY, REDIS, Redis

# The health check's timeout: a killed replica refuses at once, so where none is stalled it can
# be generous (a busy machine's slow GET /ping never flips a replica); a stalled one (SIGSTOP)
# is found only by it, after STALL_TIMEOUT_MS.
POLL_MS, TIMEOUT_MS, STALL_TIMEOUT_MS = 200, 5000, 1500
REQUEST_TIMEOUT_MS = 30000  # the monitor's default --request-timeout-ms
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def note(msg):
    print(f"[monitor-api] {msg}", file=sys.stderr, flush=True)


def result(i=0, **over):
    r = {"id": str(uuid.uuid4()), "time": T0 + i * 60_000, "status": "ok", "probe": "home",
         "location": "den", "engine": "dummy", "target": "dummy:", "download_bps": 100e6 + i,
         "upload_bps": 20e6, "ping_ms": 10.0, "jitter_ms": 1.0,
         "server": {"id": 42, "host": "srv", "country": "NO", "lat": 59.9, "lon": 10.7,
                    "distance_m": 2430},
         "client": {"ip": "10.0.0.2", "isp": "ISP", "country": "NO", "lat": 59.9, "lon": 10.7}}
    r.update(over)
    return r


def once(url, method, path, body=None, headers=None, timeout=WAIT):
    """One request on a fresh connection, never retried: (status, headers, body) or an
    exception (a retrying client would hide what the monitor did)."""
    host, port = url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Replicas(TestCase):
    """api1 and api2 on one SQLite file, `dstmc monitor` in front of them (api1 first)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dstmc-monitor-api-")
        self.db = os.path.join(self.tmp, "results.db")
        self.services, self.clients, self.redis = [], [], None
        self.addCleanup(self.clean_up)  # also when setUp fails half-way

    def start_stack(self, *api_args, seed=False, access_log=False, timeout_ms=TIMEOUT_MS):
        args = ("api", "--listen", "127.0.0.1:0", "--db", f"sqlite:{self.db}",
                f"--access-log={str(access_log).lower()}", *api_args)
        # api1 first: it creates (and with seed, fills) the store before api2 opens it
        self.api1 = self.start(*args, *(["--seed-demo"] if seed else []), env=with_token(None))
        self.api2 = self.start(*args, env=with_token(None))
        self.monitor = self.start("monitor", "--backend", self.api1.url, "--backend",
                                  self.api2.url, "--listen", "127.0.0.1:0", "--calculate=false",
                                  "--poll-ms", str(POLL_MS), "--timeout-ms", str(timeout_ms))
        self.mon = self.client(self.monitor)
        st = wait_monitor(self.monitor, active=0)  # both polled and up: traffic to api1
        self.assertEqual([b["url"] for b in st["backends"]], [self.api1.url, self.api2.url])

    def start(self, *args, **kw):
        s = Service(*args, **kw)
        self.services.append(s)
        return s

    def client(self, svc):
        c = Client(svc)
        self.clients.append(c)
        return c

    def clean_up(self):
        for c in self.clients:
            c.close()
        problems = []
        for s in reversed(self.services):
            try:
                s.stop()  # SIGTERM: exit 0 and no sanitizer report (a killed one is gone)
            except AssertionError as e:
                problems.append(str(e))
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(problems, [])

    def status(self):
        return monitor_status(self.monitor)

    def open_stream(self):
        """GET /api/v1/events through the monitor; (connection, response)."""
        conn = http.client.HTTPConnection(self.monitor.host, self.monitor.port, timeout=WAIT)
        conn.request("GET", "/api/v1/events")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        return conn, resp

    @staticmethod
    def read_to_the_end(conn, resp, cut):
        """Reads an event stream until it ends; cut gets when and how, and the events seen."""
        cut["events"] = 0
        conn.sock.settimeout(WAIT)
        try:
            while True:
                line = resp.readline()
                if not line:
                    cut["how"] = "closed"
                    break
                cut["events"] += line.startswith(b"event: result")
        except http.client.IncompleteRead:
            cut["how"] = "cut"  # in the middle of the chunked body
        except OSError as e:
            cut["error"] = repr(e)  # no byte for WAIT s: still open
            return
        cut["t"] = time.monotonic()


@unittest.skipUnless(os.access(REDIS, os.X_OK),
                     f"{REDIS} is not installed (apt install redis-server)")
class FailoverTest(Replicas):
    PROBES = ("p1", "p2", "p3")
    K = 24           # run-now requests
    KILL_AFTER = 10  # api1 is killed after this many

    def setUp(self):
        super().setUp()
        self.redis = Redis(self.tmp)
        self.start_stack("--queue", self.redis.url)
        for p in self.PROBES:
            lg = self.start("logger", "--queue", self.redis.url, "--api", self.monitor.url,
                            "--target", "dummy:", "--agent", p,
                            "--outbox", os.path.join(self.tmp, f"outbox-{p}"), listen=False)
            lg.wait_line(READY, 15)

    def publish(self):
        """POST /api/v1/run through the monitor: (wall-clock ms when sent, status, backend,
        request_id)."""
        t = time.time() * 1000
        try:
            status, hs, body = once(self.monitor.url, "POST", "/api/v1/run", b"{}",
                                    {"Content-Type": "application/json", **AUTH})
        except (OSError, http.client.HTTPException) as e:
            return t, f"error: {e}", None, None
        rid = json.loads(body)["request_id"] if status == 202 else None
        return t, status, hs.get("x-dstmc-backend"), rid

    def publish_all(self, sent, killed):
        for i in range(self.K):
            sent.append(self.publish())
            if i + 1 == self.KILL_AFTER:  # while the probes run it and post their results
                killed.append(self.status())  # what the monitor knew just before
                self.api1.proc.send_signal(signal.SIGKILL)
                self.api1.proc.wait(WAIT)  # gone: a SIGKILL takes effect a moment later
                killed.append(time.time() * 1000)
            time.sleep(0.08)  # pacing a trickle, not a synchronisation

    def stored_via_monitor(self):
        r = self.mon.get("/api/v1/results?limit=1000")
        self.assertEqual(r.status, 200)
        return r.json()["results"]

    def quiet(self):
        """Every probe's group has taken and acked every request; every outbox is empty."""
        if not self.redis.all_acked([*self.PROBES]):
            return False
        for p in self.PROBES:
            box = os.path.join(self.tmp, f"outbox-{p}")
            if os.path.isdir(box) and [f for f in os.listdir(box) if f.endswith(".json")]:
                return False
        return True

    def stored_in_file(self):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT id, request_id, probe FROM results").fetchall()
        finally:
            con.close()

    def test_kill_the_active_replica_mid_traffic(self):
        t_start = time.monotonic()
        wait_for(lambda: len(self.mon.get("/api/v1/probes").json()["probes"]) == 3,
                 what="three probes' heartbeats")
        st0 = self.status()
        sconn, stream = self.open_stream()
        self.assertEqual(stream.getheader("X-Dstmc-Backend"), "0")
        self.assertEqual(stream.readline(), b"retry: 2000\n")
        cut = {}
        reader = threading.Thread(target=self.read_to_the_end, args=(sconn, stream, cut))
        reader.start()

        # the publisher on its own thread, a steady trickle (not a load); the probes post their
        # results meanwhile; api1, the replica taking traffic, is killed in the middle of it
        sent, killed = [], []
        publisher = threading.Thread(target=self.publish_all, args=(sent, killed))
        publisher.start()
        publisher.join(4 * WAIT)
        self.assertFalse(publisher.is_alive())
        self.api1.stop(check=False)  # reaped already
        self.assertEqual(len(killed), 2)
        st_kill, t_kill = killed  # the monitor's state just before the kill; when api1 was gone

        # the event stream that went through api1 was cut (its reader waits WAIT s for a byte):
        # a client reconnects, to api2
        reader.join(2 * WAIT)
        sconn.close()
        self.assertIn("t", cut, f"the event stream through the dead replica stayed open: {cut}")
        self.assertGreater(cut["events"], 0)  # it was live: api1's "result" events came
        note(f"event stream ({cut['events']} events) {cut['how']} after the kill")
        sconn, stream = self.open_stream()
        self.assertEqual(stream.getheader("X-Dstmc-Backend"), "1")
        sconn.close()

        st = self.status()
        self.assertEqual(st["active"], 1, st)
        b1, b2 = st["backends"]
        self.assertFalse(b1["service"]["up"], b1)
        self.assertTrue(b1["machine"]["up"], b1)  # the host still answers echoes
        self.assertFalse(b1["active"])
        self.assertTrue(b2["service"]["up"] and b2["active"], b2)
        k1, k2 = st_kill["backends"]
        self.assertEqual(b1["service"]["changes"], k1["service"]["changes"] + 1, b1)
        self.assertEqual(b2["service"]["changes"], k2["service"]["changes"], b2)  # nothing else
        note(f"monitor: requests {st['requests']}, retried {st['retried']}, "
             f"no_host {st['no_host']}, api1 failures {b1['failures']}")

        # the publisher: every answer before the kill from api1 (from api2 only if the monitor
        # changed its mind meanwhile), after it from api2; one not accepted only if it was sent
        # after the kill and before the monitor marked api1 down (it may have reached api1)
        down_at = parse_ms(b1["service"]["since"])
        moved = monitor_epoch(st_kill) != monitor_epoch(st0)
        bad = [(round(t - t_kill), s) for t, s, _, _ in sent if s != 202]
        note(f"{len(sent)} run-now requests, {len(bad)} not accepted (ms after the kill, "
             f"answer): {bad}; api1 marked down {down_at - t_kill:.0f} ms after the kill")
        for t, s, backend, rid in sent:
            if s == 202 and t > t_kill:
                self.assertEqual(backend, "1", (t - t_kill, s))
            elif s == 202 and not moved:
                self.assertEqual(backend, "0", (t - t_kill, s))
            elif s != 202:
                self.assertTrue(isinstance(s, int) and s >= 500 and t_kill <= t <= down_at + 1,
                                f"the monitor answered {s} {t - t_kill:.0f} ms after the kill, "
                                f"api1 marked down {down_at - t_kill:.0f} ms after it")
        accepted = [rid for _, s, _, rid in sent if s == 202]
        self.assertTrue([1 for t, s, _, _ in sent if s == 202 and t > t_kill],
                        "nothing accepted after the kill")

        # every probe ran every accepted request, and each result is stored exactly once
        want = len(accepted) * len(self.PROBES)
        rows = wait_for(lambda: (lambda rs: rs if len(rs) >= want else None)(
            self.stored_via_monitor()), 2 * WAIT, f"{want} results")
        t_all = time.monotonic()
        # nothing more can come once every probe has acked every request and its outbox is
        # empty (a duplicate would come from a redelivery or an outbox retry)
        wait_for(self.quiet, what="every request acked, every outbox empty")
        rows = self.stored_via_monitor()
        pairs = sorted((r["request_id"], r["probe"]) for r in rows)
        self.assertEqual(len({r["id"] for r in rows}), len(rows))
        expected = sorted((rid, p) for rid in accepted for p in self.PROBES)
        extra = [x for x in pairs if x[0] not in set(accepted)]
        if extra:
            note(f"results of requests the publisher never saw accepted: {extra}")
        self.assertEqual([x for x in pairs if x[0] in set(accepted)], expected)
        self.assertEqual(len(set(pairs)), len(pairs), "a (request, probe) stored twice")
        for p in self.PROBES:  # nothing left behind in a probe's outbox
            box = os.path.join(self.tmp, f"outbox-{p}")
            left = [f for f in os.listdir(box) if f.endswith(".json")] if os.path.isdir(box) else []
            self.assertEqual(left, [], p)
        in_file = self.stored_in_file()
        self.assertEqual(sorted(r[0] for r in in_file), sorted(r["id"] for r in rows))
        self.assertEqual(sorted((r[1], r[2]) for r in in_file), pairs)
        r = self.mon.get("/api/v1/results?limit=1")
        self.assertEqual(r.header("X-Dstmc-Backend"), "1")
        note(f"{len(rows)} results stored once each (all by {t_all - t_start:.1f} s into the "
             f"test); the test took {time.monotonic() - t_start:.1f} s")


class StallTest(Replicas):
    """SIGSTOP: a replica that hangs keeps its connections open; only GET /ping finds it down."""

    def setUp(self):
        super().setUp()
        self.start_stack(access_log=True, timeout_ms=STALL_TIMEOUT_MS)
        self.stopped = False
        self.addCleanup(self.resume)  # before clean_up: a stopped process ignores SIGTERM

    def pause(self):
        self.stopped = True
        self.api1.pause()  # returns once it has stopped: nothing it answers after is a race

    def resume(self):
        if self.stopped:
            self.api1.resume()
            self.stopped = False

    def test_streams_cut_requests_moved_and_traffic_back(self):
        sconn, stream = self.open_stream()
        self.assertEqual(stream.getheader("X-Dstmc-Backend"), "0")
        self.assertEqual(stream.readline(), b"retry: 2000\n")
        cut = {}
        reader = threading.Thread(target=self.read_to_the_end, args=(sconn, stream, cut))
        reader.start()
        self.pause()
        t0 = time.monotonic()
        # sent at once, so to api1: moved to api2 when the poll finds api1 down, not after the
        # 30 s request timeout (the client gives up before that); a POST may be sent twice
        # because it says so (as probes do)
        res = result(7, probe="stall")
        status, hs, body = once(self.monitor.url, "POST", "/api/v1/results", json.dumps(res),
                                {"Content-Type": "application/json",
                                 "Idempotency-Key": res["id"]},
                                timeout=REQUEST_TIMEOUT_MS / 1000 - 5)
        took = time.monotonic() - t0
        self.assertEqual((status, hs.get("x-dstmc-backend")), (201, "1"), body)
        # the stream through the stalled replica is cut (its reader waits WAIT s for a byte)
        reader.join(2 * WAIT)
        sconn.close()
        self.assertIn("t", cut, f"the event stream through the stalled replica stayed open: {cut}")
        note(f"stalled replica: POST moved to api2 in {took:.2f} s, stream closed "
             f"{cut['t'] - t0:.2f} s after SIGSTOP")
        st = self.status()
        self.assertEqual(st["active"], 1, st)
        b1 = st["backends"][0]
        self.assertTrue(b1["machine"]["up"], b1)
        self.assertRegex(b1["service"]["error"], r"^GET /ping: no answer in \d+ ms$")
        self.assertGreaterEqual(st["retried"], 1)
        sconn, stream = self.open_stream()
        self.assertEqual(stream.getheader("X-Dstmc-Backend"), "1")
        sconn.close()
        # api1 answers again: the traffic goes back to it, the store is the same
        self.resume()
        wait_monitor(self.monitor, active=0)
        r = self.mon.get(f"/api/v1/results/{res['id']}")
        self.assertEqual((r.status, r.header("X-Dstmc-Backend")), (200, "0"))
        self.assertEqual(r.json()["probe"], "stall")

    def test_a_request_the_stalled_replica_held_runs_once(self):
        """A POST without an Idempotency-Key that api1 had received (it was stalled, not
        refusing) is not sent to api2 as well: 502 saying so, and api1 runs it once when it
        resumes. One run-now never becomes two."""
        self.pause()
        status, hs, body = once(self.monitor.url, "POST", "/api/v1/run", b"{}",
                                {"Content-Type": "application/json", **AUTH})
        self.assertEqual(status, 502, body)
        self.assertIn("not retried", json.loads(body)["error"]["message"])
        self.resume()
        wait_monitor(self.monitor, active=0)
        self.api1.wait_line(r"POST /api/v1/run 202")  # the one copy, carried out by api1
        self.assertFalse([x for x in self.api2.lines if "POST /api/v1/run" in x], self.api2.lines)


class ReplayTest(Replicas):
    """A client that saw events from api1 reconnects (after a failover) to api2 with its
    Last-Event-ID and gets what api2 stored since: the replicas' event ids share one order."""

    def test_last_event_id_carries_over_to_the_other_replica(self):
        self.start_stack()
        a1, a2 = self.client(self.api1), self.client(self.api2)
        seen = SSEReader(self.api1)
        r1 = result(1, probe="before")
        self.assertEqual(a1.post("/api/v1/results", json_body=r1).status, 201)
        ev = seen.next_event(want="result")
        seen.close()
        self.assertEqual(json.loads(ev["data"])["id"], r1["id"])
        r2 = result(2, probe="during")  # stored by api2 while the client was away
        self.assertEqual(a2.post("/api/v1/results", json_body=r2).status, 201)
        again = SSEReader(self.api2, headers={"Last-Event-ID": ev["id"]})
        # api2 tells r1 too (every replica publishes every stored result, from the store's
        # feed), with its own later id when its feed saw r1 after api1 did: at most once
        ev2 = again.next_event(want="result")
        if json.loads(ev2["data"])["id"] == r1["id"]:
            ev2 = again.next_event(want="result")
        again.close()
        self.assertEqual(json.loads(ev2["data"])["id"], r2["id"])
        self.assertGreater(int(ev2["id"]), int(ev["id"]))


class FidelityTest(Replicas):
    TOKEN = TOKEN

    def setUp(self):
        super().setUp()
        self.start_stack("--trust-ingest", "none", seed=True)  # a result needs the token too
        self.a1 = self.client(self.api1)

    def test_requests_and_answers_pass_through(self):
        auth = {"Authorization": f"Bearer {self.TOKEN}"}
        # /ping is the backend's, /monitor/status the monitor's own
        r = self.mon.get("/ping")
        self.assertEqual((r.status, r.text, r.header("X-Dstmc-Backend")), (200, "pong", "0"))
        # a write: the body arrives, and so does the custom header (without it: the API's 401)
        res = result(1, probe="fidelity probe", location="æøå \"quoted\"")
        r = self.mon.post("/api/v1/results", json_body=res)
        direct = self.a1.post("/api/v1/results", json_body=res)
        self.assertEqual((r.status, r.body), (direct.status, direct.body))
        self.assertEqual(r.status, 401)
        r = self.mon.post("/api/v1/results", json_body=res, headers=auth)
        self.assertEqual(r.status, 201, r.text)
        self.assertEqual(r.json()["ids"], [res["id"]])
        self.assertEqual(r.header("X-Dstmc-Backend"), "0")
        r = self.mon.post("/api/v1/results", json_body=res, headers=auth)
        self.assertEqual((r.status, r.json()["existing"]), (200, 1))
        # read back by id: as posted, and byte for byte what the replica answers
        got = self.mon.get(f"/api/v1/results/{res['id']}")
        self.assertEqual(got.status, 200)
        self.assertEqual(got.body, self.a1.get(f"/api/v1/results/{res['id']}").body)
        g = got.json()
        for k in ("id", "probe", "location", "engine", "target", "download_bps", "ping_ms"):
            self.assertEqual(g[k], res[k], k)
        self.assertEqual(g["server"]["distance_m"], 2430)
        # the query string intact (an escaped space, a limit, a cursor)
        q = "/api/v1/results?probe=fidelity%20probe&limit=1"
        r = self.mon.get(q)
        self.assertEqual((r.status, r.body), (200, self.a1.get(q).body))
        self.assertEqual([x["id"] for x in r.json()["results"]], [res["id"]])
        r = self.mon.get("/api/v1/results?limit=1")
        page = r.json()
        self.assertEqual(len(page["results"]), 1)
        self.assertTrue(page["next_cursor"])
        q2 = f"/api/v1/results?limit=2&cursor={page['next_cursor']}"
        r2 = self.mon.get(q2)
        self.assertEqual(r2.body, self.a1.get(q2).body)
        self.assertNotIn(page["results"][0]["id"], [x["id"] for x in r2.json()["results"]])
        # errors come back as the API gave them
        for path in ("/api/v1/results/no-such-id", "/api/v1/results?limit=0", "/nope"):
            r, d = self.mon.get(path), self.a1.get(path)
            self.assertEqual((r.status, r.body), (d.status, d.body), path)
            self.assertGreaterEqual(r.status, 400)
        # a 415 that depends on Content-Type, on the compatible face
        r = self.mon.post("/SpeedTest", body=b"x", headers={**auth, "Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        # another method: PUT with a body, then the GET shows it
        sched = {"schedules": [{"cron": "*/5 * * * *", "target": "dummy:"}], "paused": True}
        r = self.mon.request("PUT", "/api/v1/schedules", json_body=sched, headers=auth)
        self.assertEqual(r.status, 200, r.text)
        got = self.a1.get("/api/v1/schedules").json()
        self.assertEqual((got["paused"], got["schedules"][0]["cron"]), (True, "*/5 * * * *"))

    def test_head_and_conditional_get(self):
        for path in ("/", "/api/v1/results?limit=5"):
            g = self.mon.get(path)
            h = self.mon.request("HEAD", path)
            self.assertEqual((h.status, h.body), (200, b""), path)
            self.assertEqual(h.header("Content-Type"), g.header("Content-Type"), path)
            self.assertEqual(h.header("X-Dstmc-Backend"), "0")
        etag = self.mon.get("/").header("ETag")
        self.assertTrue(etag)
        r = self.mon.get("/", headers={"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))

    def test_head_keeps_the_content_length(self):
        """RFC 9110 9.3.2: a HEAD answer's Content-Length is the one a GET would have."""
        for path in ("/", "/api/v1/results?limit=5"):
            d = self.a1.request("HEAD", path).header("Content-Length")
            self.assertEqual(d, self.a1.get(path).header("Content-Length"), "the api itself")
            self.assertEqual(self.mon.request("HEAD", path).header("Content-Length"), d, path)

    def test_csv_export_streams_complete(self):
        path = "/api/v1/results.csv"
        batch = [result(i) for i in range(1000)]
        r = self.a1.post("/api/v1/results", json_body=batch,
                         headers={"Authorization": f"Bearer {self.TOKEN}"})
        self.assertEqual(r.status, 201, r.text)
        direct = self.a1.get(path)
        self.assertEqual(direct.status, 200)
        self.assertGreater(len(direct.body), 256 * 1024)  # more than the proxy buffers
        t0 = time.monotonic()
        r = self.mon.get(path)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), direct.header("Content-Type"))
        self.assertEqual(r.header("X-Dstmc-Backend"), "0")
        self.assertEqual(len(r.body), len(direct.body))
        self.assertEqual(r.body, direct.body)
        self.assertEqual(len(r.text.splitlines()), 1 + 1345 + 1000)  # header, demo rows, batch
        framing = r.header("Transfer-Encoding") or f"Content-Length {r.header('Content-Length')}"
        note(f"CSV export through the monitor: {len(r.body)} bytes in {took:.2f} s ({framing})")
        # a client that starts reading late, through a small window: still all of it, in order
        # (below 16 KiB loopback TCP itself crawls, with or without the monitor)
        conn = http.client.HTTPConnection(self.monitor.host, self.monitor.port, timeout=WAIT)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            conn.request("GET", path)
            resp = conn.getresponse()
            time.sleep(0.3)  # not a synchronisation: the client is busy elsewhere
            chunks = []
            while True:
                b = resp.read(8192)
                if not b:
                    break
                chunks.append(b)
        finally:
            conn.close()
        self.assertEqual(b"".join(chunks), direct.body)


def parse_ms(iso):
    """Milliseconds since the epoch of the monitor's "2026-01-01T00:00:00.000Z"."""
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


if __name__ == "__main__":
    unittest.main()
