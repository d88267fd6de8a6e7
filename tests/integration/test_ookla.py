"""test_ookla.py - the Ookla TCP protocol: `dstmc server --ookla` to the byte, the ookla engine.

The wire contract is what real clients read: showwin/speedtest-go (speedtest/transport/tcp.go)
and taganaka/SpeedTest (SpeedTestClient.cpp).
"""
import json
import os
import re
import socket
import subprocess
import threading
import time

from harness import WAIT, BIN, Client, RefusingPort, Service, TestCase, run, wait_for

HELLO_RE = re.compile(rb"^HELLO \d+\.\d+ \(\d+\.\d+\.\d+\) \d{4}-\d\d-\d\d\.\d+\.\w+\n$")
BAD_NAME = "a" * 70 + ".invalid"  # a label no resolver takes: fails without a DNS packet
IDLE_S = 10  # the server's idle timeout per connection
TCP_ESTABLISHED = 1


def ookla_server(*extra, http=False):
    """`dstmc server` with only the Ookla listener (and HTTP for /metrics when http)."""
    return Service("server", "--http", "127.0.0.1:0" if http else "off", "--ookla",
                   "127.0.0.1:0", "--iperf3", "off", *extra)


class Conn:
    """One raw connection to the Ookla port, with exact reads."""

    def __init__(self, port, timeout=WAIT):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    @property
    def peer(self):
        """How the server names this connection in its log."""
        return "127.0.0.1:%d" % self.s.getsockname()[1]

    def send(self, data):
        self.s.sendall(data)

    def read(self, n):
        while len(self.buf) < n:
            b = self.s.recv(1 << 20)
            if not b:
                raise EOFError(f"closed after {len(self.buf)} of {n} bytes")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\n" not in self.buf:
            b = self.s.recv(65536)
            if not b:
                raise EOFError(f"closed before a line; got {self.buf[:80]!r}")
            self.buf += b
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def closed_within(self, seconds):
        """True if the server closes the connection within seconds (whatever it sends first)."""
        self.s.settimeout(seconds)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                if not self.s.recv(65536):
                    return True
        except ConnectionResetError:
            return True  # closed with our bytes unread: a reset is a close too
        except socket.timeout:
            return False
        return False

    def nothing_pending(self):
        """No stray byte after an exact reply: the next thing on the wire is a PONG."""
        self.send(b"PING 1\n")
        return self.buf == b"" and re.match(rb"^PONG \d{13}\n$", self.line()) is not None

    def tcp_state(self):
        """The kernel's TCP state of this socket (struct tcp_info's first byte)."""
        return self.s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]

    def close(self):
        self.s.close()


class WireTest(TestCase):
    @classmethod
    def setUpClass(cls):  # its debug log says why each connection ended
        cls.svc = ookla_server("--max-bytes", "67108864", "--log-level", "debug")
        cls.port = cls.svc.port

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()

    def conn(self):
        c = Conn(self.port)
        self.addCleanup(c.close)
        return c

    def ended(self, c, why):
        """The server's log says it ended connection c, why ("closed by command", "idle or
        stalled", "closed by the client")."""
        self.svc.wait_line(re.escape(f"ookla: {c.peer} done ({why})"))

    def test_listening_line(self):
        self.assertTrue(any(re.match(r"^listening on tcp://127\.0\.0\.1:\d+$", x)
                            for x in self.svc.lines))

    def test_hi_gets_hello(self):
        c = self.conn()
        for hi in (b"HI\n", b"HI 4b2ab1b2-0000-4e0a-9c00-0123456789ab\n", b"HI\r\n"):
            c.send(hi)
            line = c.line()
            self.assertRegex(line, HELLO_RE)
            self.assertTrue(len(line) >= 8 and line.startswith(b"HELLO "))  # speedtest-go

    def test_pong_is_19_bytes_of_ms(self):
        c = self.conn()
        stamps = []
        for ping in (b"PING %d\n" % int(time.time() * 1000),  # taganaka: ms
                     b"PING %d\n" % time.time_ns(),  # speedtest-go: ns
                     b"PING\n"):
            c.send(ping)
            line = c.line()
            self.assertEqual(len(line), 19, line)
            self.assertRegex(line, rb"^PONG \d{13}\n$")
            stamps.append(int(line[5:18]))
        now = time.time() * 1000
        self.assertTrue(all(abs(t - now) < 5000 for t in stamps), (stamps, now))
        self.assertEqual(stamps, sorted(stamps))

    def test_download_is_exactly_n_bytes(self):
        c = self.conn()
        for n in (1, 2, 9, 10, 11, 100, 65536, 3_000_000, 4194304):
            c.send(b"DOWNLOAD %d\n" % n)
            data = c.read(n)
            head = b"DOWNLOAD "[:max(0, min(9, n - 1))]
            self.assertEqual(data[:len(head)], head, n)
            self.assertEqual(data[-1:], b"\n", n)
            self.assertNotIn(b"\n", data[:-1], n)  # line readers see one line
            self.assertTrue(c.nothing_pending(), n)
        c.send(b"DOWNLOAD 2000000\n")  # incompressible: random, not a repeated pattern
        body = c.read(2000000)[9:-1]
        self.assertGreater(len(set(body[i:i + 4] for i in range(0, 400000, 4))), 90000)

    def test_upload_as_speedtest_go_sends_it(self):
        c = self.conn()
        for n in (20, 1000, 1_000_000):
            cmd = b"UPLOAD %d 0\n" % n
            c.send(cmd + os.urandom(n - len(cmd) - 1) + b"\n")
            line = c.line()
            self.assertRegex(line, rb"^OK %d \d{13}\n$" % n)
            self.assertTrue(c.nothing_pending())

    def test_upload_as_taganaka_sends_it(self):
        c = self.conn()
        n = 300_000
        cmd = b"UPLOAD %d\n" % n
        payload = bytearray(os.urandom(n - len(cmd)))  # random: "\n" inside too
        payload[-1] = 10
        c.send(cmd + bytes(payload))
        self.assertTrue(c.line().startswith(b"OK %d " % n))
        self.assertTrue(c.nothing_pending())

    def test_quit_closes(self):
        c = self.conn()
        c.send(b"HI\nQUIT\n")
        self.assertRegex(c.line(), HELLO_RE)
        self.assertTrue(c.closed_within(WAIT))
        self.ended(c, "closed by command")

    def test_unknown_command_is_an_error_and_the_line_stays(self):
        c = self.conn()
        for bad in (b"FOO\n", b"hi\n", b"GETIP\n", b"\x00\xff\x01garbage\n"):
            c.send(bad)
            self.assertEqual(c.line(), b"ERROR\n", bad)
        c.send(b"\n")  # a stray newline is ignored
        self.assertTrue(c.nothing_pending())

    def test_bad_sizes_get_error_and_close(self):
        for cmd in (b"DOWNLOAD -1\n", b"DOWNLOAD 0\n", b"DOWNLOAD abc\n", b"DOWNLOAD\n",
                    b"DOWNLOAD 67108865\n", b"DOWNLOAD 99999999999999999999999\n",
                    b"UPLOAD 5 0\n", b"UPLOAD 67108865 0\n", b"UPLOAD x 0\n"):
            c = self.conn()
            c.send(cmd)
            self.assertEqual(c.line(), b"ERROR\n", cmd)
            self.assertTrue(c.closed_within(WAIT), cmd)
            self.ended(c, "closed by command")  # at once, not by the idle timeout

    def test_over_long_line_and_binary_garbage_close(self):
        for junk in (b"A" * 100_000 + b"\n", os.urandom(50_000).replace(b"\n", b"x")):
            c = self.conn()
            try:
                c.send(junk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close before taking it all
            self.assertTrue(c.closed_within(WAIT))
            self.ended(c, "closed by command")  # at once, not by the idle timeout
        c = self.conn()  # and the server goes on
        c.send(b"HI\n")
        self.assertRegex(c.line(), HELLO_RE)

    def test_truncated_upload_then_close(self):
        c = self.conn()
        c.send(b"UPLOAD 1000000 0\n" + b"x" * 1000)
        c.close()
        d = self.conn()
        d.send(b"HI\n")
        self.assertRegex(d.line(), HELLO_RE)

    def test_silent_and_stalled_clients_are_closed_in_bounded_time(self):
        silent = self.conn()
        stalled = self.conn()
        stalled.send(b"DOWNLOAD 60000000\n")  # and never reads it: the server's writes stall
        t0 = time.monotonic()
        other = self.conn()  # meanwhile others are served
        other.send(b"HI\n")
        self.assertRegex(other.line(), HELLO_RE)
        self.assertEqual(stalled.tcp_state(), TCP_ESTABLISHED)  # ...while the stall goes on
        # the stalled one is watched without reading (a read would unstall it): its TCP state
        wait_for(lambda: stalled.tcp_state() != TCP_ESTABLISHED, deadline=IDLE_S + WAIT,
                 what="the stalled download aborted")
        took = time.monotonic() - t0
        self.assertGreater(took, IDLE_S - 2)  # by the idle timeout, not before
        self.assertTrue(silent.closed_within(WAIT))
        # aborted (a reset), not left to linger for minutes with megabytes unsent
        self.assertTrue(stalled.closed_within(WAIT))
        self.ended(silent, "idle or stalled")
        self.ended(stalled, "idle or stalled")


class CapTest(TestCase):
    def test_connections_over_max_streams_are_closed_at_once(self):
        with ookla_server("--max-streams", "2") as svc:
            held = [Conn(svc.port), Conn(svc.port)]
            for c in held:
                c.send(b"HI\n")
                self.assertRegex(c.line(), HELLO_RE)
            extra = Conn(svc.port)
            extra.send(b"HI\n")
            self.assertTrue(extra.closed_within(WAIT))
            extra.close()
            held.pop().close()

            def served():
                c = Conn(svc.port)
                try:
                    c.send(b"HI\n")
                    return HELLO_RE.match(c.line())
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    return None
                finally:
                    c.close()
            wait_for(served, what="a free slot after one left")
            for c in held:
                c.close()


def metric(text, direction):
    m = re.search(r'^dstmc_server_bytes_total\{protocol="ookla",direction="%s"\} (\S+)$'
                  % direction, text, re.M)
    return int(float(m.group(1))) if m else 0


class FakeServer:
    """A loopback listener that answers each connection with script(conn) on a thread."""

    def __init__(self, script):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.script = script
        self.conns = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.script(c, c.makefile("rb"))
        except OSError:
            pass

    def close(self):
        self.ls.close()
        for c in self.conns:
            c.close()


def run_ookla(target, timeout=120):
    code, out, err = run("run", "--json", "--target", target, timeout=timeout)
    return code, json.loads(out), err


class EngineTest(TestCase):
    def test_run_against_dstmc_server(self):
        with ookla_server(http=True) as svc:
            http_port, port = [p for _, _, p in svc.listeners(2)]
            code, j, err = run_ookla(f"ookla://127.0.0.1:{port}?duration=2")
            r = j["result"]
            self.assertEqual((code, r["status"], r["error"]), (0, "ok", None), err)
            self.assertEqual((r["engine"], r["streams"]), ("ookla", 4))
            self.assertEqual(r["server"]["host"], f"127.0.0.1:{port}")
            # speeds in bit/s of what moved: at most every byte of a phase over its counted
            # second (2 s, the first of them grace), whatever the machine's load
            for bps, moved in ((r["download_bps"], r["bytes_down"]),
                               (r["upload_bps"], r["bytes_up"])):
                self.assertTrue(0 < bps <= moved * 8 / 1.0, (bps, moved))
            self.assertTrue(0 < r["ping_ms"] < r["duration_s"] * 1000, r["ping_ms"])
            self.assertTrue(r["jitter_ms"] >= 0)
            self.assertEqual(j["download"], r["download_bps"])
            # two phases of 2 s; one that ignored duration=2 would take the default 10 s each
            self.assertTrue(4 <= r["duration_s"] < 20, r["duration_s"])
            for line in ("Finding best test servers", "Testing download speed",
                         "Testing upload speed"):
                self.assertIn(line, err)
            # every byte the probe moved is a byte the server counted, and the other way round
            c = Client(f"http://127.0.0.1:{http_port}")
            wait_for(lambda: metric(c.get("/metrics").text, "out") == j["bytes_received"],
                     what="server bytes out == probe bytes received")
            text = c.get("/metrics").text
            self.assertEqual(metric(text, "in"), j["bytes_sent"])
            self.assertEqual((j["bytes_received"], j["bytes_sent"]),
                             (r["bytes_down"], r["bytes_up"]))
            for kind in ("hi", "ping", "download", "upload", "quit"):
                self.assertRegex(text, r'dstmc_server_requests_total\{protocol="ookla",'
                                       r'kind="%s"\} [1-9]' % kind)
            c.close()

    def test_peak_memory_stays_small(self):
        if "asan" in subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout:
            self.skipTest("sanitizer builds use far more memory by design")
        with ookla_server() as svc:
            p = subprocess.Popen([BIN, "run", "--json", "--target",
                                  f"ookla://127.0.0.1:{svc.port}?duration=2&streams=8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            peak = 0
            while p.poll() is None:
                try:
                    with open(f"/proc/{p.pid}/status") as f:
                        hwm = [x for x in f if x.startswith("VmHWM:")]
                    peak = max(peak, int(hwm[0].split()[1]) if hwm else 0)
                except (FileNotFoundError, ProcessLookupError):
                    break
                time.sleep(0.05)
            out, _ = p.communicate()
            self.assertEqual(json.loads(out)["result"]["status"], "ok")
            self.assertTrue(0 < peak < 12 * 1024, f"peak RSS {peak} kB")

    def test_refused(self):
        with RefusingPort() as closed:
            port = closed.port
            code, j, _ = run_ookla(f"ookla://127.0.0.1:{port}")
        r = j["result"]
        self.assertEqual((code, r["status"]), (1, "failed"))
        self.assertEqual(r["error"], f"refused: 127.0.0.1:{port}")

    def test_dns_failure(self):
        code, j, _ = run_ookla(f"ookla://{BAD_NAME}:8080")
        self.assertEqual(j["result"]["status"], "failed")
        self.assertTrue(j["result"]["error"].startswith(f"DNS: cannot resolve '{BAD_NAME}'"))

    def test_accepts_but_never_answers(self):
        fake = FakeServer(lambda c, f: time.sleep(60))
        try:
            t0 = time.monotonic()
            code, j, _ = run_ookla(f"ookla://127.0.0.1:{fake.port}")
            self.assertLess(time.monotonic() - t0, 45)  # the probe gave up; the fake did not
            self.assertEqual(j["result"]["status"], "failed")
            self.assertEqual(j["result"]["error"],
                             f"timeout: no HELLO from 127.0.0.1:{fake.port} within 5 s")
        finally:
            fake.close()

    def test_not_an_ookla_server(self):
        def ssh(c, f):
            c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            time.sleep(5)
        fake = FakeServer(ssh)
        try:
            _, j, _ = run_ookla(f"ookla://127.0.0.1:{fake.port}")
            self.assertEqual(j["result"]["error"], "protocol: expected HELLO, got 'SSH-2.0-OpenSSH_9.2'")
        finally:
            fake.close()

    def test_short_download(self):
        def half(c, f):
            for line in iter(f.readline, b""):
                if line.startswith(b"HI"):
                    c.sendall(b"HELLO 2.9 (2.9.0) 2024-01-01.0000.fake\n")
                elif line.startswith(b"PING"):
                    c.sendall(b"PONG %013d\n" % int(time.time() * 1000))
                elif line.startswith(b"DOWNLOAD"):
                    c.sendall(b"DOWNLOAD " + b"x" * 1000)
                    time.sleep(0.5)  # the probe's other commands are in by now: take them
                    c.setblocking(False)
                    try:
                        while c.recv(65536):
                            pass
                    except BlockingIOError:
                        pass
                    c.shutdown(socket.SHUT_WR)  # a clean close, half way through
                    time.sleep(2)
                    return
        fake = FakeServer(half)
        try:
            _, j, _ = run_ookla(f"ookla://127.0.0.1:{fake.port}?duration=2")
            self.assertEqual(j["result"]["status"], "failed")
            self.assertRegex(j["result"]["error"],
                             r"^short read: 127\.0\.0\.1:\d+ closed the connection after 1009 of "
                             r"\d+ bytes$")
        finally:
            fake.close()

    def test_bad_target_parameters(self):
        for q, needle in (("streams=0", "streams"), ("duration=abc", "duration"),
                          ("bogus=1", "unknown parameter 'bogus'"),
                          ("duration=2&grace=2", "grace")):
            code, _, err = run("run", "--target", f"ookla://127.0.0.1:8080?{q}")
            self.assertEqual(code, 2, q)
            self.assertIn(needle, err, q)
