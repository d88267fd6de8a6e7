"""test_iperf3.py - iperf3 both ends: `dstmc server --iperf3` and the iperf3 engine.

The real iperf3 binary (Debian's 3.12, the same version as libiperf) is the peer each way: its
client against `dstmc server`, its server under `dstmc run --target iperf3://...`. Tests are
1-3 s long and stay on 127.0.0.1; every process is stopped by its pid.
"""
import errno
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from harness import WAIT, BIN, Client, RefusingPort, Service, TestCase, free_port, run, wait_for

# libiperf's own leak (one short string per extra stream); see the file. ASan builds only.
LSAN = {"LSAN_OPTIONS": "suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "lsan-libiperf.supp")}
BAD_NAME = "a" * 70 + ".invalid"  # a label no resolver takes: fails without a DNS packet
DELTA = 0.05  # how far the two ends' counts of one download may differ (see below)


def dstmc_server():
    """`dstmc server` with HTTP (for /metrics) and iperf3 on free loopback ports."""
    return Service("server", "--http", "127.0.0.1:0", "--ookla", "off", "--iperf3",
                   "127.0.0.1:0", env=LSAN)


def tcp_listening(port):
    """Whether something listens on 127.0.0.1:port (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        return f"0100007F:{port:04X} 00000000:0000 0A" in f.read()


def iperf3_client(port, *args, timeout=60):
    """`iperf3 -c 127.0.0.1 -p PORT -J ARGS` and its JSON. A server between two tests has no
    listener for a moment (libiperf reopens it): a refusal is tried again once it listens."""
    for attempt in range(3):
        p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-J", *args],
                           capture_output=True, text=True, timeout=timeout)
        j = json.loads(p.stdout)
        if "unable to connect" not in j.get("error", "") or attempt == 2:
            return j
        wait_for(lambda: tcp_listening(port), what=f"a listener on {port} again")


def poke(port, junk):
    """Sends junk and reads until the server closes (a reset counts), or says "busy"."""
    for attempt in range(3):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
            return
        except ConnectionRefusedError:  # between two runs: libiperf reopens its listener
            if attempt == 2:
                raise
            wait_for(lambda: tcp_listening(port), what=f"a listener on {port} again")
        except (ConnectionResetError, BrokenPipeError):
            return
        except OSError as e:  # the server reset it before our shutdown: closed, as wanted
            if e.errno != errno.ENOTCONN:
                raise
            return


def metrics(svc):
    """{(name, labels-string): value} of the server's /metrics."""
    c = Client(svc)
    try:
        text = c.get("/metrics").text
    finally:
        c.close()
    out = {}
    for m in re.finditer(r'^(\w+)(?:\{(.*)\})? (\S+)$', text, re.M):
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def iperf3_bytes(svc, direction):
    return metrics(svc).get(("dstmc_server_bytes_total",
                             f'protocol="iperf3",direction="{direction}"'), 0)


def iperf3_requests(svc, kind):
    return metrics(svc).get(("dstmc_server_requests_total",
                             f'protocol="iperf3",kind="{kind}"'), 0)


def dstmc_run(target, timeout=120):
    """`dstmc run --json --target TARGET`: (exit code, speedtest-cli JSON, stderr)."""
    code, out, err = run("run", "--json", "--timeout", "50", "--target", target, env=LSAN,
                         timeout=timeout)
    return code, json.loads(out), err


class ServerTest(TestCase):
    """`dstmc server --iperf3` against the iperf3 binary's client."""

    def setUp(self):
        self.svc = dstmc_server()
        self.addCleanup(self.svc.stop)
        (s1, _, self.http), (s2, _, self.port) = self.svc.listeners(2)
        self.assertEqual((s1, s2), ("http", "tcp"))  # HTTP first, then the iperf3 listener

    def test_both_directions_counted_to_the_byte(self):
        up = iperf3_client(self.port, "-t", "1")
        self.assertNotIn("error", up)
        sent_up = up["end"]["sum_received"]["bytes"]  # what the server received
        self.assertGreater(sent_up, 0)
        wait_for(lambda: iperf3_bytes(self.svc, "in") == sent_up, what="bytes in counted")

        down = iperf3_client(self.port, "-t", "1", "-R", "-P", "2")
        self.assertNotIn("error", down)
        self.assertEqual(down["start"]["test_start"]["num_streams"], 2)
        sent_down = down["end"]["sum_sent"]["bytes"]  # what the server sent
        wait_for(lambda: iperf3_bytes(self.svc, "out") == sent_down, what="bytes out counted")
        self.assertEqual(iperf3_bytes(self.svc, "in"), sent_up)
        # the test's count and its end come just after its bytes (one report, counted in turn)
        wait_for(lambda: iperf3_requests(self.svc, "test") == 2, what="two tests counted")
        wait_for(lambda: metrics(self.svc)[("dstmc_server_tests_active", "")] == 0,
                 what="no test active")

    def test_second_client_is_told_busy(self):
        # the first runs long enough for the second to start beside it on a busy machine
        first = subprocess.Popen(["iperf3", "-c", "127.0.0.1", "-p", str(self.port), "-t", "10",
                                  "-J"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: metrics(self.svc)[("dstmc_server_tests_active", "")] == 1,
                     what="the first test running")
            second = iperf3_client(self.port, "-t", "1")
            self.assertIn("busy", second.get("error", ""))
            self.assertIsNone(first.poll())  # it was told so while the first one ran
            out, _ = first.communicate(timeout=2 * WAIT)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        self.assertNotIn("error", json.loads(out))
        wait_for(lambda: iperf3_requests(self.svc, "test") == 1, what="one test counted")

    def test_engine_gives_up_on_a_busy_server(self):
        # the engine's two tries are 0.5-1.5 s apart: the first test outlasts them on a busy box
        first = subprocess.Popen(["iperf3", "-c", "127.0.0.1", "-p", str(self.port), "-t", "12"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: metrics(self.svc)[("dstmc_server_tests_active", "")] == 1,
                     what="a test running")
            code, j, _ = dstmc_run(f"iperf3://127.0.0.1:{self.port}?duration=1&retries=1")
            self.assertIsNone(first.poll())  # the server was busy with it all along
            self.assertEqual(code, 1)
            self.assertEqual(j["result"]["error"],
                             "busy: the iperf3 server stayed busy after 2 tries")
        finally:
            first.wait(2 * WAIT)

    def test_garbage_does_not_kill_the_server(self):
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(300),
                     b"x" * 37 + b"\x00\x00\x00\x05{bad}"):
            poke(self.port, junk)
        wait_for(lambda: iperf3_requests(self.svc, "error") >= 1, what="a bad run counted")
        j = iperf3_client(self.port, "-t", "1")
        self.assertNotIn("error", j)
        wait_for(lambda: iperf3_requests(self.svc, "test") == 1, what="the test after it")

    def test_engine_against_dstmc_server(self):
        code, j, err = dstmc_run(f"iperf3://127.0.0.1:{self.port}?duration=1&streams=2")
        self.assertEqual(code, 0, err)
        r = j["result"]
        self.assertEqual((r["status"], r["engine"], r["streams"]), ("ok", "iperf3", 2))
        wait_for(lambda: iperf3_requests(self.svc, "test") == 2, what="two tests counted")
        self.assertEqual(r["bytes_up"], iperf3_bytes(self.svc, "in"))  # the receiver's count
        # what the server sent, the probe got, but for data in flight and the two ends' own
        # clocks for the omitted first second (a busy machine delays one end's boundary: 1 %
        # seen beside a CPU hog under ASan; a wrong count is off by far more than DELTA)
        self.assertAlmostEqual(r["bytes_down"] / iperf3_bytes(self.svc, "out"), 1, delta=DELTA)
        self.assertEqual(j["bytes_sent"], r["bytes_up"])
        self.assertEqual(j["bytes_received"], r["bytes_down"])
        self.assertLess(err.index("Testing upload speed"), err.index("Testing download speed"))


class EngineTest(TestCase):
    """The iperf3 engine against the iperf3 binary's server, and its failures."""

    def test_matches_the_iperf3_servers_json(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "server.json")
            srv, port = iperf3_server(log)
            try:
                code, j, err = dstmc_run(f"iperf3://127.0.0.1:{port}?duration=2")
            finally:
                srv.send_signal(signal.SIGTERM)
                srv.wait(10)
            with open(log) as f:  # on SIGTERM, iperf3 -s adds a document with an "error"
                tests = [d for d in parse_concatenated(f.read()) if "error" not in d]
        self.assertEqual(code, 0, err)
        r = j["result"]
        self.assertEqual(len(tests), 2)
        up, down = tests  # the order: upload (normal), then download (reverse)
        self.assertEqual([t["start"]["test_start"]["reverse"] for t in tests], [0, 1])
        self.assertEqual(r["bytes_up"], up["end"]["sum_received"]["bytes"])
        self.assertAlmostEqual(r["upload_bps"] / up["end"]["sum_received"]["bits_per_second"], 1,
                               places=6)
        sent = down["end"]["sum_sent"]  # as above: in flight, each end's omitted second
        self.assertAlmostEqual(r["bytes_down"] / sent["bytes"], 1, delta=DELTA)
        self.assertAlmostEqual(r["download_bps"] / sent["bits_per_second"], 1, delta=DELTA)
        # two phases of 2 s each by iperf3's own timers (one phase would be 2, omit counted 6)
        self.assertAlmostEqual(r["duration_s"], 4, delta=0.5)
        self.assertGreater(r["ping_ms"], 0)  # TCP's RTT of the upload streams
        self.assertEqual(j["server"]["host"], f"127.0.0.1:{port}")
        self.assertEqual((j["download"], j["upload"]), (r["download_bps"], r["upload_bps"]))

    def test_two_runs_at_once_both_succeed(self):
        svc = dstmc_server()
        self.addCleanup(svc.stop)
        port = svc.listeners(2)[1][2]
        target = f"iperf3://127.0.0.1:{port}?duration=1"
        cmd = [BIN, "run", "--json", "--timeout", "60", "--target", target]
        env = dict(os.environ, **LSAN)
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  stdin=subprocess.DEVNULL) for _ in range(2)]
        try:
            outs = [p.communicate(timeout=90) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, (out, err) in zip(procs, outs):
            self.assertNotIn(b"Sanitizer", err)
            r = json.loads(out)["result"]
            self.assertEqual((p.returncode, r["status"]), (0, "ok"), r.get("error"))
        # the server counts a test when its child reports it, a moment after the client is done
        wait_for(lambda: iperf3_requests(svc, "test") >= 4, what="4 tests counted")
        self.assertEqual(iperf3_requests(svc, "test"), 4)

    def test_failures_are_failed_results(self):
        with RefusingPort() as closed:
            port = closed.port
            t0 = time.monotonic()
            code, j, _ = dstmc_run(f"iperf3://127.0.0.1:{port}?duration=1")
            took = time.monotonic() - t0
        self.assertEqual(code, 1)
        r = j["result"]
        self.assertEqual(r["status"], "failed")
        self.assertTrue(r["error"].startswith("refused: "), r["error"])
        # tried again for 2 s, not through the busy back-off (5 tries 1, 2, 4, 8, 16 s +-50 %:
        # 15.5 s at the least)
        self.assertLess(took, 15, took)

        code, j, _ = dstmc_run(f"iperf3://{BAD_NAME}?duration=1")
        self.assertEqual(code, 1)
        self.assertTrue(j["result"]["error"].startswith(f"DNS: {BAD_NAME}: "))

        for bad in ("streams=0", "duration=x", "retries=99", "omit=-1"):
            code, out, err = run("run", "--check-config", "--target",
                                 f"iperf3://127.0.0.1?{bad}")
            self.assertEqual(code, 2, (bad, out, err))


def iperf3_server(log):
    """`iperf3 -s -J --logfile log` on a free loopback port: (process, port). A port another
    test took first makes it exit: it starts again on another one."""
    for _ in range(5):
        port = free_port()
        srv = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port), "-J",
                                "--logfile", log], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        wait_for(lambda: srv.poll() is not None or listens(srv.pid, port),
                 what="iperf3 -s listening")
        if srv.poll() is None:
            return srv, port
        srv.wait(WAIT)
    raise AssertionError("iperf3 -s found no free port in 5 tries")


def listens(pid, port):
    """Whether process pid holds the listening socket on 127.0.0.1:port (not another one's)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if x[1] == f"0100007F:{port:04X}" and x[3] == "0A":
                inodes.add(f"socket:[{x[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            pass
    return False


def parse_concatenated(text):
    """The JSON documents `iperf3 -s -J --logfile` writes one after another."""
    dec, pos, docs = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = dec.raw_decode(text, pos)
        docs.append(doc)
