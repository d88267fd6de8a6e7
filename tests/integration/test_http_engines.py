"""test_http_engines.py - the speedtest and librespeed engines (`dstmc run`) over the wire.

Against `dstmc server` on 127.0.0.1: a test passes, reports figures, and moves exactly the bytes
the server counted in its /metrics. Against small Python stubs that misbehave (404, 413, a
stalled body, a short body, a wrong size=N): the test fails, saying what happened.
"""
import http.server
import json
import re
import threading
import time
import urllib.parse

from harness import Client, RefusingPort, Service, TestCase, run

METRIC_RE = re.compile(
    r'^dstmc_server_bytes_total\{protocol="(\w+)",direction="(\w+)"\} (\d+(?:\.\d+)?)$', re.M)


def server():
    return Service("server", "--http", "127.0.0.1:0", "--ookla", "off", "--iperf3", "off")


def server_bytes(svc):
    """{(protocol, direction): bytes} from the server's /metrics."""
    c = Client(svc)
    try:
        text = c.get("/metrics").text
    finally:
        c.close()
    return {(p, d): int(float(n)) for p, d, n in METRIC_RE.findall(text)}


RUN_TIMEOUT_S = 120  # dstmc run's own --timeout (its default): a test ends by itself before it


def dstmc_run(target, timeout=RUN_TIMEOUT_S + 30):
    """`dstmc run --json`: (exit code, speedtest-cli JSON, seconds taken)."""
    t0 = time.monotonic()
    code, out, err = run("run", "--json", "--target", target, timeout=timeout)
    took = time.monotonic() - t0
    try:
        return code, json.loads(out), took
    except ValueError:
        raise AssertionError(f"no JSON from dstmc run: {out!r} {err[-2000:]!r}")


class Stub(http.server.ThreadingHTTPServer):
    """A misbehaving legacy/LibreSpeed server on 127.0.0.1:0; mode says how it misbehaves."""
    daemon_threads = True

    def __init__(self, mode, config=b"", servers=b""):
        self.mode = mode
        self.config, self.servers = config, servers  # speedtest://auto's documents
        self.pinged = set()  # the folders whose latency.txt was asked for
        self.stop_event = threading.Event()
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        pass  # the engine cuts connections off when it has seen enough

    def close(self):
        self.stop_event.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        mode, path = self.server.mode, urllib.parse.urlsplit(self.path).path
        if path.endswith("latency.txt"):
            self.server.pinged.add(path.rsplit("/", 2)[-2])
            return self.reply(200, b"test=test\n")
        if path.endswith("config.php"):
            return self.reply(200, self.server.config)
        if path.endswith("servers.php"):
            return self.reply(200, self.server.servers)
        if path.endswith("empty.php") or path.endswith("getIP.php"):
            return self.reply(200)
        if mode == "404":
            return self.reply(404, b"not here")
        if mode == "stall":  # headers, then nothing until the test gives up
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.flush()
            self.server.stop_event.wait(90)
            return
        if mode == "short":  # promises 100000 bytes, sends 1000, closes
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.close_connection = True
            return
        self.reply(200, b"y" * 50000)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:  # read it all: the answer must not race a reset
            n -= len(self.rfile.read(min(n, 1 << 20)) or b"\0" * n)
        if self.server.mode == "413":
            return self.reply(413, b"too large")
        if self.server.mode == "size-lie":
            return self.reply(200, b"size=10")
        if self.server.mode == "size-pad":  # the right size, padded to 60 digits by zeros, + 7
            size = self.headers.get("Content-Length")
            return self.reply(200, f"size={size.rjust(58, '0')}7".encode())
        self.reply(200, f"size={self.headers.get('Content-Length')}".encode())


class HttpEnginesAgainstServer(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def run_ok(self, target, protocol):
        before = server_bytes(self.srv)
        code, j, took = dstmc_run(target)
        res = j["result"]
        self.assertEqual(res["status"], "ok", res)
        self.assertEqual(code, 0)
        for key in ("download_bps", "upload_bps", "ping_ms", "bytes_down", "bytes_up"):
            self.assertGreater(res[key], 0, key)
        self.assertGreaterEqual(res["jitter_ms"], 0)
        after = server_bytes(self.srv)
        moved_out = after.get((protocol, "out"), 0) - before.get((protocol, "out"), 0)
        moved_in = after.get((protocol, "in"), 0) - before.get((protocol, "in"), 0)
        self.assertEqual(res["bytes_down"], moved_out, "bytes received vs the server's count")
        self.assertEqual(res["bytes_up"], moved_in, "bytes sent vs the server's count")
        self.assertEqual(j["bytes_received"], res["bytes_down"])
        self.assertEqual(j["bytes_sent"], res["bytes_up"])
        self.assertEqual(j["download"], res["download_bps"])
        return res, took

    def test_speedtest_direct(self):
        res, took = self.run_ok(f"speedtest://127.0.0.1:{self.srv.port}?duration=2", "speedtest")
        self.assertEqual(res["engine"], "speedtest")
        self.assertEqual(res["streams"], 8)
        self.assertEqual(res["server"]["host"], f"127.0.0.1:{self.srv.port}")
        # two phases of 2 s; with the default duration (10 s each) it would take 20 s and more
        self.assertLess(res["duration_s"], 2 * 10)

    def test_speedtest_mini_path(self):
        res, _ = self.run_ok(f"speedtest://127.0.0.1:{self.srv.port}/mini/index.html?duration=1"
                             "&streams=2", "speedtest")
        self.assertEqual(res["streams"], 2)

    def test_speedtest_auto(self):
        base = f"http://127.0.0.1:{self.srv.port}"
        res, _ = self.run_ok(f"speedtest://auto?config={base}/speedtest-config.php"
                             f"&servers={base}/speedtest-servers.php&duration=2", "speedtest")
        self.assertEqual(res["server"]["id"], 1)
        self.assertEqual(res["server"]["sponsor"], "dstmc")
        self.assertEqual(res["server"]["distance_m"], 0)
        self.assertEqual(res["client"]["ip"], "127.0.0.1")
        self.assertEqual(res["streams"], 8)  # the config's threadcount 4, times 2

    def test_librespeed(self):
        res, took = self.run_ok(f"librespeed://127.0.0.1:{self.srv.port}/?duration=2",
                                "librespeed")
        self.assertEqual(res["engine"], "librespeed")
        self.assertEqual(res["streams"], 6)
        self.assertEqual(res["client"]["ip"], "127.0.0.1")
        self.assertLess(res["duration_s"], 2 * 10)  # as above

    def test_console_lines(self):
        base = f"http://127.0.0.1:{self.srv.port}"
        code, out, _ = run("run", "--target",
                           f"speedtest://auto?config={base}/speedtest-config.php"
                           f"&servers={base}/speedtest-servers.php&duration=1")
        self.assertEqual(code, 0, out)
        lines = out.splitlines()
        self.assertEqual(lines[:3], ["Finding best test servers", "Testing download speed",
                                     "Testing upload speed"])
        self.assertRegex(lines[3], r"^Got download: [\d.]+ Mbps and upload: [\d.]+ Mbps$")


class HttpEngineFailures(TestCase):
    def failed(self, target, bound=RUN_TIMEOUT_S / 2):
        """The run fails by itself (within bound s: before its own time limit ends it)."""
        code, j, took = dstmc_run(target)
        res = j["result"]
        self.assertEqual(res["status"], "failed", res)
        self.assertEqual(code, 1)
        self.assertLess(took, bound)
        return res["error"]

    def test_refused(self):
        with RefusingPort() as closed:
            port = closed.port
            for target in (f"speedtest://127.0.0.1:{port}?duration=1",
                           f"librespeed://127.0.0.1:{port}/?duration=1"):
                with self.subTest(target=target):
                    self.assertIn(f"127.0.0.1:{port}", self.failed(target))
            self.assertIn(f"refused: 127.0.0.1:{port}",
                          self.failed(f"speedtest://127.0.0.1:{port}?duration=1"))

    def test_librespeeds_speaks_tls(self):
        # librespeeds:// is LibreSpeed over https: against a plain HTTP server the TLS
        # handshake fails, and the result says so (no test has a TLS server of its own)
        svc = Service("server", "--http", "127.0.0.1:0", "--ookla", "off", "--iperf3", "off")
        self.addCleanup(svc.stop)
        port = svc.listeners(1)[0][2]
        err = self.failed(f"librespeeds://127.0.0.1:{port}/?duration=1")
        self.assertIn(f"https://127.0.0.1:{port}/", err)

    def test_auto_config_unreachable(self):
        with RefusingPort() as closed:
            err = self.failed(f"speedtest://auto?config=http://127.0.0.1:{closed.port}/c.php")
        self.assertTrue(err.startswith("config: "), err)

    def with_stub(self, mode, target_fmt, bound=RUN_TIMEOUT_S / 2):
        stub = Stub(mode)
        try:
            return self.failed(target_fmt.format(port=stub.port), bound)
        finally:
            stub.close()

    def auto_stub(self, servers, config_attrs=""):
        """A stub serving a config (client at 0,0) and a list of (folder, id, lat, lon)."""
        config = ('<settings><client ip="127.0.0.1" lat="0" lon="0" isp="Test" country="NO" '
                  f'{config_attrs}/><server-config threadcount="1" ignoreids="9,3" />'
                  '<upload ratio="5" maxchunkcount="4"/></settings>')
        stub = Stub("ok", config.encode())
        rows = "".join(f'<server url="http://127.0.0.1:{stub.port}/{f}/upload.php" lat="{lat}" '
                       f'lon="{lon}" name="{f}" country="Norway" cc="NO" sponsor="t" id="{i}" '
                       f'host="127.0.0.1:{stub.port}"/>' for f, i, lat, lon in servers)
        stub.servers = f"<settings><servers>{rows}</servers></settings>".encode()
        self.addCleanup(stub.close)
        base = f"http://127.0.0.1:{stub.port}"
        return stub, (f"speedtest://auto?config={base}/config.php&servers={base}/servers.php"
                      "&duration=1&grace=0")

    def test_auto_tries_the_five_nearest(self):
        """The nearest-five insert compared against an unfilled slot: only four servers were
        kept, plus an empty one (whose URL then met pointer arithmetic on NULL)."""
        far = [(f"s{k}", k, k, 0) for k in (8, 2, 7, 5, 1, 3, 6, 4)]  # s3: ignored by the config
        bad = [("big-id", "7" * 55, 0.1, 0), ("neg-id", -5, 0.1, 0), ("frac-id", "1.5", 0.1, 0),
               ("lat-95", 11, 95, 0), ("lon-181", 12, 0, 181), ("lat-nan", 13, "nan", 0),
               ("lat-none", 14, "", 0), ("lat-inf", 15, "1e999", 0)]
        stub, target = self.auto_stub(far + bad)
        code, j, _ = dstmc_run(target)
        self.assertEqual(stub.pinged, {"s1", "s2", "s4", "s5", "s6"}, j["result"])
        self.assertEqual((code, j["result"]["status"]), (0, "ok"), j["result"])
        self.assertIn(j["result"]["server"]["id"], (1, 2, 4, 5, 6))

    def test_auto_config_numbers_out_of_range(self):
        for attrs, field in (('lat="91"', "lat"), ('lon="-1e999"', "lon"),
                             ('lat="1" lon="x"', "lon")):
            with self.subTest(attrs=attrs):
                stub, target = self.auto_stub([("s1", 1, 1, 0)])
                stub.config = stub.config.replace(b'lat="0" lon="0" ', b"").replace(
                    b"/><server-config", f" {attrs}/><server-config".encode())
                err = self.failed(target)
                self.assertRegex(err, rf'^config: http://.*: <client {field}=".*">: not a ', err)
                self.assertEqual(stub.pinged, set())
        for old, new, field in ((b'threadcount="1"', b'threadcount="99999999999999999999"',
                                 "threadcount"), (b'ratio="5"', b'ratio="0"', "ratio"),
                                (b'maxchunkcount="4"', b'maxchunkcount="1.5"', "maxchunkcount")):
            with self.subTest(field=field):
                stub, target = self.auto_stub([("s1", 1, 1, 0)])
                stub.config = stub.config.replace(old, new)
                err = self.failed(target)
                self.assertRegex(err, rf'^config: http://.*: <[a-z-]+ {field}=".*">: not a whole ')

    def test_download_404(self):
        err = self.with_stub("404", "speedtest://127.0.0.1:{port}?duration=2")
        self.assertRegex(err, r"^download: HTTP 404 from http://127\.0\.0\.1:\d+/speedtest/random")

    def test_upload_413(self):
        for fmt in ("speedtest://127.0.0.1:{port}?duration=1",
                    "librespeed://127.0.0.1:{port}/?duration=1&grace=0"):
            with self.subTest(target=fmt):
                err = self.with_stub("413", fmt)
                self.assertRegex(err, r"^upload: HTTP 413 from http://127\.0\.0\.1:\d+/")

    def test_upload_size_lie(self):
        err = self.with_stub("size-lie", "speedtest://127.0.0.1:{port}?duration=1")
        self.assertRegex(err, r"^upload: short body: the server got 10 of \d+ bytes$")

    def test_upload_size_padded(self):
        """Only the answer's first 63 bytes are kept: 'size=' and 58 digits that are the size,
        then more digits, were taken for the size."""
        err = self.with_stub("size-pad", "speedtest://127.0.0.1:{port}?duration=1")
        self.assertRegex(err, r"^upload: upload answer is not size=N: 'size=0000")

    def test_long_error_stays_text(self):
        """An error over 512 bytes was cut in the middle of a character: the result then had
        no error (jansson refused it), and the API would refuse the result."""
        with RefusingPort() as closed:
            head = f"http://127.0.0.1:{closed.port}/a"
            head += "a" * (len(head) % 2)  # the 512-byte cut then falls in the middle of an é
            url = head + "\u00e9" * ((508 - len(head)) // 2)
            err = self.failed(f"speedtest://auto?config={url}")
        self.assertTrue(err.startswith(f"config: {head}\u00e9\u00e9"), err)

    def test_stall_is_timeout(self):
        # ended by the stall (5 s without a byte), long before the phase's 60 s would end it
        err = self.with_stub("stall", "speedtest://127.0.0.1:{port}?duration=60", bound=45)
        self.assertRegex(err, r"^download: timeout: no data for 5\.0 s from http://")

    def test_short_body(self):
        err = self.with_stub("short", "speedtest://127.0.0.1:{port}?duration=2")
        self.assertRegex(err, r"^download: short body: 1000 of 100000 bytes from http://")

    def test_bad_target_rejected_up_front(self):
        for target in ("speedtest://auto:8080", "speedtest://h?streams=0",
                       "librespeed://h/?duration=x", "speedtest://h?servers=http://x"):
            with self.subTest(target=target):
                code, _, err = run("run", "--target", target)
                self.assertEqual(code, 2, err)
