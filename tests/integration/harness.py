"""harness.py - start the real dstmc binary on 127.0.0.1, talk to it over HTTP, stop it by pid.

Only the Python standard library: tests run on a fresh Debian 12 with nothing from PyPI.

Every wait here has a deadline, and the deadline is generous (WAIT): it is reached only when
something is wrong, and CI runs on 2 busy vCPUs, under ASan (2-5x slower) too. Tests assert what
happened, never how fast it happened.
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

BIN = os.environ.get("DSTMC_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "dstmc")

WAIT = 30.0  # seconds: the default deadline of every wait for something that must happen

LISTEN_RE = re.compile(r"^listening on (http|tcp)://(\[[^\]]+\]|[^:]+):(\d+)$")


class Service:
    """One dstmc process. Its stderr is collected; the first `listening on` line gives the URL."""

    def __init__(self, *args, env=None, listen=True, deadline=2 * WAIT, stdin=None, wrap=()):
        """wrap prefixes the command, e.g. ["ip", "netns", "exec", NS] (which execs dstmc,
        so the pid stays dstmc's)."""
        self.args = [*wrap, BIN, *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=stdin or subprocess.DEVNULL, env=full_env)
        self.lines = []
        self.out_lines = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines),
                                          daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout,
                                                                   self.out_lines), daemon=True)]
        for t in self._threads:
            t.start()
        self.host = self.port = None
        if listen:
            line = self.wait_line(LISTEN_RE, deadline)
            m = LISTEN_RE.match(line)
            self.host, self.port = m.group(2).strip("[]"), int(m.group(3))

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self._cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern, deadline=WAIT, stream="stderr"):
        """Waits until a line of stderr (or stdout) matches pattern; returns it."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        sink = self.lines if stream == "stderr" else self.out_lines
        end = time.monotonic() + deadline
        with self._cond:
            while True:
                for line in sink:
                    if rx.search(line):
                        return line
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and
                                 not any(t.is_alive() for t in self._threads)):
                    raise AssertionError(f"no line matching {rx.pattern!r} from {self.args}; "
                                         f"stderr: {self.lines[-20:]} stdout: {self.out_lines[-20:]}")
                self._cond.wait(min(left, 0.2))

    def listeners(self, n, deadline=WAIT):
        """Waits for n `listening on` lines (dstmc server prints one per listener, in order:
        http, then ookla, then iperf3, each only when enabled); returns [(scheme, host, port)]."""
        end = time.monotonic() + deadline
        with self._cond:
            while True:
                found = [LISTEN_RE.match(x) for x in self.lines]
                found = [(m.group(1), m.group(2).strip("[]"), int(m.group(3)))
                         for m in found if m]
                if len(found) >= n:
                    return found[:n]
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise AssertionError(f"{len(found)} of {n} listening lines; "
                                         f"stderr: {self.lines[-20:]}")
                self._cond.wait(0.2)

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, sig=signal.SIGTERM, deadline=WAIT, check=True):
        """Stops the process by its pid and returns its exit code.

        With check, a process stopped by SIGTERM must exit 0 (a clean drain), and no sanitizer
        may have reported anything (the suite also runs under ASan+UBSan).
        """
        was_running = self.proc.poll() is None
        if was_running:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(deadline)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.args} did not stop within {deadline}s of {sig}")
        for t in self._threads:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        if check:
            bad = [x for x in self.lines if "Sanitizer" in x or "runtime error:" in x]
            if bad:
                raise AssertionError(f"{self.args}: sanitizer report: {bad[:5]}")
            if was_running and sig == signal.SIGTERM and self.proc.returncode != 0:
                raise AssertionError(f"{self.args} exited {self.proc.returncode} on SIGTERM; "
                                     f"stderr: {self.lines[-10:]}")
        return self.proc.returncode

    def pause(self):
        """SIGSTOP (docker pause), and waits until every thread of the process has stopped: the
        signal takes effect later, and a request sent in between may still be answered."""
        self.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: process_stopped(self.proc.pid), what=f"{self.args[:2]} stopped")

    def resume(self):
        """SIGCONT (docker unpause)."""
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def process_stopped(pid):
    """Whether every thread of pid is stopped (state T or t; threads gone do not count)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


def run(*args, env=None, timeout=120):
    """Runs dstmc to completion; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run([BIN, *args], capture_output=True, timeout=timeout, env=full_env,
                       stdin=subprocess.DEVNULL)
    err = p.stderr.decode()
    if "Sanitizer" in err or "runtime error:" in err:
        raise AssertionError(f"{args}: sanitizer report: {err[-2000:]}")
    return p.returncode, p.stdout.decode(), err


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class Client:
    """A keep-alive HTTP/1.1 client for one service."""

    def __init__(self, svc_or_url, timeout=WAIT, token=None):
        """token: sent as a bearer token with every request (e.g. TOKEN, for admin writes)."""
        url = svc_or_url.url if isinstance(svc_or_url, Service) else svc_or_url
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn = None
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method, path, body=None, headers=None, json_body=None):
        hdrs = {**self.auth, **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                hs = {k.lower(): v for k, v in r.getheaders()}
                if hs.get("connection", "").lower() == "close":
                    self.close()
                return Response(r.status, hs, data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a kept-alive connection the server closed: once more, fresh
                if attempt:
                    raise

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def raw_request(host, port, data, timeout=15.0):
    """Sends raw bytes and returns everything the server sends until it closes or goes quiet."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class SSEReader:
    """Reads server-sent events from a streaming GET on its own connection."""

    def __init__(self, svc, path="/api/v1/events", headers=None):
        self.conn = http.client.HTTPConnection(svc.host, svc.port, timeout=WAIT)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.ended = False  # the server ended the stream (not a deadline of ours)

    def next_event(self, deadline=WAIT, want=None):
        """Returns the next event (dict with id, event, data) of type want (any when None)."""
        end = time.monotonic() + deadline
        ev = {}
        while time.monotonic() < end:
            self.conn.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                line = self.resp.fp.readline()
            except socket.timeout:
                break
            if not line:
                self.ended = True
                break
            line = line.decode().rstrip("\r\n")
            if line == "":
                if "data" in ev and (want is None or ev.get("event") == want):
                    return ev
                ev = {}
            elif line.startswith(":"):
                continue
            else:
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                ev[k] = ev[k] + "\n" + v if k == "data" and k in ev else v
        raise AssertionError(f"no {want or 'any'} event within {deadline}s")

    def close(self):
        self.conn.close()


def free_port():
    """A loopback port nobody listens on right now (bound, then released: another process may
    take it before the caller binds it, so a caller starts its server again on a new one when
    that happens). For a port that must refuse connections use RefusingPort."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RefusingPort:
    """A loopback port held by a bound socket that does not listen: a connection to it is
    refused, and nobody else can take the port while it is held (a released port can be taken
    by any test running beside this one). port=N holds a port a server of the test just left."""

    def __init__(self, port=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_for(fn, deadline=WAIT, what="condition"):
    """Polls fn until it returns a true value (with a deadline); returns that value."""
    end = time.monotonic() + deadline
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached within {deadline}s")
        time.sleep(0.05)


# The operator's admin token the tests give the API (DSTMC_TOKEN; never on the command line),
# and the header that carries it. Writes other than result ingest from loopback need it.
TOKEN = "dstmc-tests-operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def with_token(env):
    """env (may be None) with DSTMC_TOKEN set to TOKEN unless it names one already."""
    env = dict(env or {})
    env.setdefault("DSTMC_TOKEN", TOKEN)
    return env


def api(*extra, env=None, **kw):
    """An in-memory `dstmc api` on a free loopback port, with TOKEN as the operator's token."""
    return Service("api", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:",
                   "--access-log=false", *extra, env=with_token(env), **kw)


class TestCase(unittest.TestCase):
    maxDiff = None


# ---- dstmc monitor ----

def monitor_status(mon):
    """GET /monitor/status of a `dstmc monitor`, on a connection of its own."""
    c = Client(mon)
    try:
        r = c.get("/monitor/status")
    finally:
        c.close()
    if r.status != 200:
        raise AssertionError(f"GET /monitor/status: HTTP {r.status} {r.body[:200]!r}")
    return r.json()


def monitor_epoch(st):
    """What changes when the monitor changes its mind: health flips (machine or service, every
    backend) and requests moved to another backend. Equal epochs: nothing happened between."""
    return (sum(b["machine"]["changes"] + b["service"]["changes"] for b in st["backends"]),
            st["retried"])


def wait_monitor(mon, active=0, up=None, deadline=WAIT):
    """Waits until the monitor's traffic goes to backend active (None: no host) and each
    backend's service is up as up says (default: all up); returns that status."""
    def settled():
        st = monitor_status(mon)
        want = up if up is not None else [True] * len(st["backends"])
        return st if (st["active"] == active and
                      [b["service"]["up"] for b in st["backends"]] == list(want)) else None
    return wait_for(settled, deadline, f"monitor: traffic to backend {active}, services up {up}")
