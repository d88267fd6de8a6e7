"""test_monitor.py - `dstmc monitor`: forwarding, failover, status, and misbehaving backends.

The backends are small Python HTTP servers on 127.0.0.1 that can echo a request, stream events,
send a large body, hang, answer garbage or close in the middle of an answer. The drill with real
`dstmc machine`s in network namespaces is tests/e2e/monitor_drill.test.mjs.
"""
import hashlib
import http.client
import http.server
import json
import os
import socket
import socketserver
import threading
import time

from harness import (WAIT, Client, RefusingPort, Service, SSEReader, TestCase, monitor_status,
                     raw_request, run, wait_for, wait_monitor)

BIG_BLOCK = hashlib.sha256(b"dstmc").digest() * 2048  # 64 KiB of known bytes
# A backend here goes down only by being stopped (its port refuses at once), so the health
# check's timeout can be generous: a busy machine's slow answer to GET /ping never flips one.
POLL_MS, HEALTH_TIMEOUT_MS = 100, 5000
HANG_S = 60  # how long a hanging backend hangs (until stop()): longer than any test waits


class Upstream:
    """A threaded HTTP/1.1 backend named name; modes (path → behaviour) can be changed live."""

    def __init__(self, name, port=0):
        self.name = name
        self.hang = set()  # paths that hang (until stop(), HANG_S at most)
        self.flaky = set()  # paths whose connection is closed without an answer
        self.conns = set()  # open connections, closed by stop() like a dying process's
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # ends every hang
        self.sse_go = threading.Event()  # /sse: the test has its first event, the rest may come
        self.sse_released = None  # /sse went on because of sse_go (True) or its deadline
        up = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with up.lock:
                    up.conns.add(self.connection)

            def finish(self):
                with up.lock:
                    up.conns.discard(self.connection)
                super().finish()

            def reply(self, status, body, ctype="application/json", extra=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Upstream", up.name)
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                path = self.path
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                base = path.split("?")[0]
                if base in up.flaky:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if base in up.hang:
                    up.stopping.wait(HANG_S)
                    return self.reply(200, b"late")
                if base == "/ping":
                    return self.reply(200, b"pong", "text/plain")
                if base == "/sse":  # 3 events, the rest only once the test has the first;
                    # ?long: an event every 0.3 s for HANG_S (a stream only a cut ends early)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    n = 3 if "long" not in path else int(HANG_S / 0.3)
                    for i in range(n):
                        self.wfile.write(f"id: {i}\nevent: tick\ndata: {i}\n\n".encode())
                        self.wfile.flush()
                        if "long" in path:
                            if up.stopping.wait(0.3):
                                break
                        elif i == 0:
                            up.sse_released = up.sse_go.wait(WAIT)
                    self.close_connection = True
                    return
                if base == "/big":
                    mib = int(path.split("mib=")[1])
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(mib * 16 * len(BIG_BLOCK)))
                    self.end_headers()
                    for _ in range(mib * 16):
                        self.wfile.write(BIG_BLOCK)
                    return
                if base == "/trailer":  # a chunked body with a trailer field
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Trailer", "X-Checksum")
                    self.end_headers()
                    self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n")
                    return
                if base == "/garbage":
                    self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                if base in ("/cut", "/stall"):  # 1000 of 100000 bytes, then quiet, then closed
                    self.send_response(200)  # (/cut after 0.3 s, /stall only by stop())
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"x" * 1000)
                    self.wfile.flush()
                    if base == "/cut":
                        time.sleep(0.3)
                    else:
                        up.stopping.wait(HANG_S)
                    self.close_connection = True
                    return
                echo = {"upstream": up.name, "method": self.command, "target": path,
                        "headers": [[k, v] for k, v in self.headers.items()],
                        "body": body.hex()}
                self.reply(200, json.dumps(echo).encode(),
                           extra=[("X-Custom-Answer", "42"), ("Set-Cookie", "a=1")])

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # clients (the monitor) hanging up on purpose are expected here

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def monitor(*backends, extra=(), settle=True):
    """`dstmc monitor` in front of backends; with settle, returned once its traffic goes to the
    first backend and every one is up (a health check's first round may end after it listens)."""
    args = ["monitor", "--listen", "127.0.0.1:0", "--poll-ms", str(POLL_MS), "--timeout-ms",
            str(HEALTH_TIMEOUT_MS)]
    for b in backends:
        args += ["--backend", b]
    svc = Service(*args, *extra)
    if settle:
        try:
            wait_monitor(svc, active=0)
        except AssertionError:
            svc.stop(check=False)
            raise
    return svc


status = monitor_status


def rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class MonitorTest(TestCase):
    def setUp(self):
        self.up1, self.up2 = Upstream("one"), Upstream("two")

    def tearDown(self):
        self.up1.stop()
        self.up2.stop()

    def test_forwards_method_target_headers_and_body(self):
        with monitor(self.up1.url, self.up2.url) as mon:
            self.assertTrue(any("machines are checked by" in x for x in mon.lines), mon.lines)
            c = Client(mon)
            body = bytes(range(256)) * 4
            target = "/echo/a%20b/..//c?x=1&y=%2F&z"
            for method in ["POST", "PUT", "PATCH", "DELETE", "GET"]:
                send = body if method != "GET" else None
                r = c.request(method, target, body=send,
                              headers={"X-Custom": "v 1", "Content-Type": "application/x-test",
                                       "Accept": "text/plain"} if send else {"X-Custom": "v 1"})
                self.assertEqual(r.status, 200, (method, r.body))
                self.assertEqual(r.header("X-Dstmc-Backend"), "0")
                self.assertEqual(r.header("X-Upstream"), "one")
                self.assertEqual(r.header("X-Custom-Answer"), "42")
                e = r.json()
                self.assertEqual((e["method"], e["target"]), (method, target))
                hs = {k.lower(): v for k, v in e["headers"]}
                self.assertEqual(hs["x-custom"], "v 1")
                self.assertEqual(hs["host"], f"{mon.host}:{mon.port}")
                self.assertEqual(hs["x-forwarded-for"], "127.0.0.1")
                self.assertEqual(hs["x-forwarded-proto"], "http")
                self.assertNotIn("expect", hs)
                if send:
                    self.assertEqual(bytes.fromhex(e["body"]), body)
                    self.assertEqual(hs["content-type"], "application/x-test")
                    self.assertEqual(hs["accept"], "text/plain")
                else:
                    self.assertNotIn("content-type", hs)
                    self.assertNotIn("accept", hs)
            r = c.request("HEAD", "/echo")
            self.assertEqual((r.status, r.body, r.header("X-Upstream")), (200, b"", "one"))
            # a client's X-Forwarded-For is extended, not replaced
            e = c.get("/echo", headers={"X-Forwarded-For": "10.9.8.7"}).json()
            self.assertIn(["X-Forwarded-For", "10.9.8.7, 127.0.0.1"], e["headers"])
            c.close()

    def test_streams_server_sent_events_as_they_come(self):
        with monitor(self.up1.url) as mon:
            sse = SSEReader(mon, "/sse")
            self.assertEqual(sse.resp.getheader("Content-Type"), "text/event-stream")
            first = sse.next_event()
            self.up1.sse_go.set()  # the backend sends the rest only now
            rest = [sse.next_event() for _ in range(2)]
            sse.close()
            self.assertEqual([first["data"]] + [e["data"] for e in rest], ["0", "1", "2"])
            # the first event reached the client while the backend was still holding the rest
            # (a monitor that buffered the answer would have shown nothing before its end)
            self.assertTrue(self.up1.sse_released, "the backend went on without the test's word")

    def test_event_streams_follow_the_backend_that_takes_traffic(self):
        port1 = self.up1.port
        with monitor(self.up1.url, self.up2.url) as mon:
            self.up1.stop()
            held = RefusingPort(port1)  # refuses like a stopped server; nobody else takes it
            wait_monitor(mon, active=1, up=[False, True])
            sse = SSEReader(mon, "/sse?long")
            self.assertEqual(sse.resp.getheader("X-Dstmc-Backend"), "1")
            self.assertEqual(sse.next_event()["data"], "0")
            held.close()
            self.up1 = Upstream("one", port1)  # the first comes back: its stream is cut
            # the backend's stream goes on for HANG_S: it ends before that only if the monitor
            # cuts it (next_event raises at the end of the stream)
            last = 0
            with self.assertRaises(AssertionError):
                for _ in range(int(HANG_S / 0.3)):
                    last = int(sse.next_event()["id"])
            sse.close()
            self.assertTrue(sse.ended, "the stream did not end: no event for a while")
            self.assertLess(last, int(HANG_S / 0.3) - 1, "the stream ran to its end: never cut")
            st = status(mon)
            self.assertEqual(st["active"], 0, st)
            sse = SSEReader(mon, "/sse?long")  # the client reconnects: to the first
            self.assertEqual(sse.resp.getheader("X-Dstmc-Backend"), "0")
            sse.close()

    def test_large_answer_streams_in_bounded_memory(self):
        with monitor(self.up1.url) as mon:
            conn = http.client.HTTPConnection(mon.host, mon.port, timeout=WAIT)
            conn.request("GET", "/big?mib=192")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Length"), str(192 << 20))
            h, n = hashlib.sha256(), 0
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
            conn.close()
            want = hashlib.sha256(BIG_BLOCK * (192 * 16)).hexdigest()
            self.assertEqual((n, h.hexdigest()), (192 << 20, want))
            peak = rss_peak_kib(mon.proc.pid)
            with open(f"/proc/{mon.proc.pid}/maps") as f:
                asan = "libasan" in f.read()
            # under ASan freed memory waits in its quarantine (up to 256 MiB): the bound holds
            # for the plain build, which the suite runs too
            if not asan:
                self.assertLess(peak, 48 * 1024,
                                f"monitor peak RSS {peak} KiB for a 192 MiB answer")

    def test_failure_is_retried_on_the_next_backend(self):
        self.up1.flaky.add("/flaky")
        with monitor(self.up1.url, self.up2.url) as mon:
            c = Client(mon)
            for _ in range(5):
                r = c.get("/flaky?x=1")
                self.assertEqual((r.status, r.header("X-Dstmc-Backend")), (200, "1"), r.body)
                self.assertEqual(r.json()["target"], "/flaky?x=1")
            self.assertEqual(c.get("/echo").header("X-Dstmc-Backend"), "0")  # still the first
            s = status(mon)
            self.assertGreaterEqual(s["backends"][0]["failures"], 5)
            self.assertGreaterEqual(s["retried"], 5)
            self.up2.flaky.add("/flaky")  # both fail: 502 naming the failure
            r = c.get("/flaky")
            self.assertEqual(r.status, 502)
            self.assertIn("upstream 1", r.json()["error"]["message"])
            c.close()

    def test_hanging_backend_times_out_and_is_retried(self):
        """No headers within --request-timeout-ms: retried on the next backend, and a 504 when
        that one hangs too; both long before the hanging backends would answer (HANG_S)."""
        self.up1.hang.add("/slow")
        with monitor(self.up1.url, self.up2.url,
                     extra=["--request-timeout-ms", "3000"]) as mon:
            c = Client(mon)
            t0 = time.monotonic()
            r = c.get("/slow")
            took = time.monotonic() - t0
            self.assertEqual((r.status, r.header("X-Dstmc-Backend")), (200, "1"))
            self.assertEqual(r.json()["upstream"], "two")  # not the hanging backend's answer
            self.assertLess(took, HANG_S / 2, took)
            self.up2.hang.add("/slow")
            t0 = time.monotonic()
            r = c.get("/slow")
            took = time.monotonic() - t0
            self.assertEqual(r.status, 504, r.body)
            self.assertIn("no answer within 3000 ms", r.json()["error"]["message"])
            self.assertLess(took, HANG_S / 2, took)
            self.assertEqual(c.get("/echo").status, 200)  # and it goes on
            c.close()

    def test_backend_silent_mid_answer_is_cut(self):
        with monitor(self.up1.url, extra=["--idle-timeout-ms", "500"]) as mon:
            conn = http.client.HTTPConnection(mon.host, mon.port, timeout=WAIT)
            t0 = time.monotonic()
            conn.request("GET", "/stall")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            with self.assertRaises(http.client.IncompleteRead):
                resp.read()
            took = time.monotonic() - t0
            conn.close()
            self.assertGreater(took, 0.45)  # not before --idle-timeout-ms
            self.assertLess(took, HANG_S / 2, took)  # the backend stays quiet for HANG_S
            self.assertEqual(Client(mon).get("/echo").status, 200)

    def test_chunked_answer_with_a_trailer(self):
        with monitor(self.up1.url) as mon:
            c = Client(mon)
            r = c.get("/trailer")
            self.assertEqual((r.status, r.body), (200, b"hello world"))
            self.assertIsNone(r.header("X-Checksum"))  # a trailer is not a header
            c.close()

    def test_garbage_and_cut_answers(self):
        with monitor(self.up1.url, self.up2.url) as mon:
            c = Client(mon)
            r = c.get("/garbage")
            self.assertEqual(r.status, 502, r.body)
            self.assertIn("error", r.json())
            c.close()
            # a cut after the headers went out: the client must see an incomplete body, never a
            # complete 200
            conn = http.client.HTTPConnection(mon.host, mon.port, timeout=WAIT)
            conn.request("GET", "/cut")
            resp = conn.getresponse()
            if resp.status == 200:
                with self.assertRaises(http.client.IncompleteRead):
                    resp.read()
            else:
                self.assertEqual(resp.status, 502)
            conn.close()
            self.assertEqual(Client(mon).get("/echo").status, 200)

    def test_no_host_active(self):
        with monitor(self.up1.url, self.up2.url) as mon:
            c = Client(mon)
            self.assertEqual(c.get("/status").json(), {"VM": [1, 1], "B": [1, 1]})
            self.up1.stop()
            wait_for(lambda: c.get("/status").json() == {"VM": [1, 1], "B": [0, 1]},
                     what="service 1 down")
            self.assertEqual(c.get("/echo").header("X-Dstmc-Backend"), "1")
            self.up2.stop()
            wait_for(lambda: c.get("/status").json()["B"] == [0, 0], what="both down")
            r = c.get("/echo")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["error"]["message"], "No host active")
            s = status(mon)
            self.assertIsNone(s["active"])
            self.assertGreaterEqual(s["no_host"], 1)
            self.assertIn("GET /ping", s["backends"][0]["service"]["error"])
            c.close()
            self.up1, self.up2 = Upstream("one"), Upstream("two")  # for tearDown

    def test_status_page_and_live_events(self):
        with monitor(self.up1.url, self.up2.url) as mon:
            c = Client(mon)
            r = c.get("/monitor")
            self.assertEqual((r.status, r.header("Location")), (301, "/monitor/"))
            r = c.get("/monitor/")
            self.assertEqual(r.status, 200)
            self.assertIn("System Monitor", r.text)
            # the script shared with the toy store's page sets the theme: no inline script
            self.assertIn('<script src="live.js"></script>', r.text)
            self.assertEqual(r.text.count("<script"), 2, r.text)
            for asset in ["live.js", "monitor.js", "monitor.css", "style.css"]:
                self.assertEqual(c.get("/monitor/" + asset).status, 200, asset)
            self.assertEqual(c.get("/monitor/nope.js").status, 404)
            s = c.get("/monitor/status").json()
            self.assertEqual((s["VM"], s["B"], s["active"], s["poll_ms"], s["timeout_ms"]),
                             ([1, 1], [1, 1], 0, POLL_MS, HEALTH_TIMEOUT_MS))
            b = s["backends"][0]
            self.assertEqual((b["name"], b["url"], b["machine"]["up"], b["service"]["up"]),
                             ("VM1", self.up1.url, True, True))
            self.assertGreater(b["machine"]["rtt_ms"], 0)
            changes = s["backends"][1]["service"]["changes"]
            sse = SSEReader(mon, "/monitor/events")
            self.up2.stop()
            end = time.monotonic() + WAIT  # the change is pushed: the page hears of it
            while time.monotonic() < end:
                ev = json.loads(sse.next_event(want="status")["data"])
                if ev["B"] == [1, 0]:
                    break
            sse.close()
            self.assertEqual(ev["B"], [1, 0])
            self.assertEqual(ev["backends"][1]["service"]["changes"], changes + 1)
            self.assertEqual(ev["backends"][0]["service"]["changes"],
                             s["backends"][0]["service"]["changes"])  # nothing else changed
            c.close()
            self.up2 = Upstream("two")

    def test_bad_requests_get_clear_errors(self):
        with monitor(self.up1.url, extra=["--max-body-mib", "1"]) as mon:
            c = Client(mon)
            r = c.post("/echo", body=b"x" * ((1 << 20) + 1))
            self.assertEqual(r.status, 413)
            c.close()
            for bad, want in [(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", b"400"),
                              (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", b"400"),
                              (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"505")]:
                out = raw_request(mon.host, mon.port, bad)
                self.assertTrue(out.startswith(b"HTTP/1.1 " + want), (bad, out[:80]))
            self.assertEqual(raw_request(mon.host, mon.port, b"GARBAGE\r\n\r\n"), b"")
            # headers over the connection's 64 KiB: refused (libmicrohttpd answers 431 and closes;
            # its close can reset the connection while the client still sends, losing the 431)
            try:
                out = raw_request(mon.host, mon.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                  b"a" * 100000 + b"\r\n\r\n")
            except OSError:
                out = b""
            if out:  # no forwarding, whatever reached the client: a 4xx
                self.assertRegex(out[:12], rb"HTTP/1.1 4\d\d", out[:80])
            out = raw_request(mon.host, mon.port,
                              b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            self.assertEqual(out, b"")  # a body cut short: nothing forwarded, no answer
            self.assertEqual(Client(mon).get("/echo").status, 200)  # still up

    def test_bad_configuration(self):
        for args, word in [([], "backend"), (["--backend", "ftp://x"], "http://"),
                           (["--backend", "http://h:99999"], "port"),
                           (["--backend", "http://h:1", "--ping", "sonar"], "ping"),
                           (["--backend", "http://h:1", "--poll-ms", "0"], "poll-ms")]:
            code, _, err = run("monitor", *args)
            self.assertEqual(code, 2, (args, err))
            self.assertIn(word, err, args)
        code, out, _ = run("monitor", "--backend", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
                           "--check-config")
        self.assertEqual(code, 0, out)

    def test_backend_by_name(self):
        with monitor(f"http://localhost:{self.up1.port}") as mon:
            c = Client(mon)
            self.assertEqual(c.get("/status").json(), {"VM": [1], "B": [1]})
            self.assertEqual(c.get("/echo").json()["upstream"], "one")
            c.close()

    def test_ping_methods(self):
        with monitor(self.up1.url, extra=["--ping", "tcp"]) as mon:
            self.assertTrue(any("machines are checked by tcp" in x for x in mon.lines))
            self.assertEqual(status(mon)["ping_method"], "tcp")
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            lo, hi = map(int, f.read().split())
        if not lo <= os.getgid() <= hi:  # ping sockets are not allowed here: a clear error
            code, _, err = run("monitor", "--backend", self.up1.url, "--ping", "icmp",
                               "--listen", "127.0.0.1:0", timeout=WAIT)
            self.assertNotEqual(code, 0)
            self.assertIn("ping_group_range", err)
