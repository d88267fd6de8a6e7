#!/usr/bin/env python3
"""bench.py - dstmc benchmarks, each beside a reference measured in the same run.

    python3 bench/bench.py [all|get|ingest|series|memory|engines|speedtest-cli|server-cpu|
                            fleet|fire-delay|monitor|toystore|image] [--quick]

Writes the figures to docs/benchmarks.md (between the BEGIN/END markers of each section) and
prints them. Every load is bounded in time; every process started here is stopped by its pid.
Needs: wrk, nginx (nginx-light), the built binary (build/dstmc, or DSTMC_BIN).
"""
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DSTMC_BIN", os.path.join(ROOT, "build", "dstmc"))
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
QUICK = "--quick" in sys.argv
DUR = 3 if QUICK else 10
REPS = 1 if QUICK else 3
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# The operator's admin token of every dstmc started here (writes need one).
TOKEN = "dstmc-bench-operator-token-0123456789"


class Proc:
    """A process started here and stopped by its own pid."""

    def __init__(self, args, wait_port=None, env=None, **kw):
        env = {"DSTMC_TOKEN": TOKEN, **os.environ, **(env or {})}  # the operator's token
        self.p = subprocess.Popen(args, env=env, **kw)
        if wait_port:
            end = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", wait_port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > end or self.p.poll() is not None:
                        raise RuntimeError(f"{args[0]} did not listen on {wait_port}")
                    time.sleep(0.05)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)  # a bench may have paused it
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def dstmc_api(port, db, *extra):
    return Proc([BIN, "api", "--listen", f"127.0.0.1:{port}", "--db", db, "--access-log=false",
                 "--log-level", "warn", *extra], wait_port=port)


def nginx(root, port, tmp, upstream=None):
    """nginx serving root; or, with upstream ("127.0.0.1:PORT"), a reverse proxy to it over
    kept-alive upstream connections (HTTP/1.1, Connection header cleared)."""
    os.chmod(tmp, 0o755)  # nginx's workers drop to an unprivileged user
    conf = os.path.join(tmp, "nginx.conf")
    proxy = up = ""
    if upstream:
        up = f"upstream backend {{ server {upstream}; keepalive 32; }}\n  "
        proxy = ('location / { proxy_pass http://backend; proxy_http_version 1.1; '
                 'proxy_set_header Connection ""; }')
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  default_type application/json; client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  {up}server {{ listen 127.0.0.1:{port}; root {root}; {proxy} }} }}
""")
    return Proc(["nginx", "-c", conf, "-e", f"{tmp}/nginx.err"], wait_port=port)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, duration=DUR, conns=64, script=None, threads=2, prefix=()):
    args = [*prefix, "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "p50": lat.get("50"), "p75": lat.get("75"), "p90": lat.get("90"),
            "p99": lat.get("99"), "requests": int(reqs.group(1)) if reqs else 0,
            "errors": int(non2xx.group(1)) if non2xx else 0}


def us(text):
    """wrk's "58.00us", "1.20ms" or "2.00s" in microseconds."""
    v, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def http_get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def http_post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def machine():
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    return f"{os.cpu_count()} vCPU ({cpu}), {os.uname().release}"


def versions():
    ng = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    dv = subprocess.run([BIN, "version"], capture_output=True, text=True).stdout.strip()
    return f"{dv}; {ng.replace('nginx version: ', '')}; wrk 4.1.0"


# ---- GET /SpeedTest against nginx serving the same bytes ----

def bench_get():
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:{tmp}/get.db"
        api_port, ng_port = free_port(), free_port()
        api = dstmc_api(api_port, db, "--seed-demo")
        try:
            body = http_get(f"http://127.0.0.1:{api_port}/SpeedTest")
            os.makedirs(f"{tmp}/www")
            with open(f"{tmp}/www/SpeedTest", "wb") as f:
                f.write(body)
            ng = nginx(f"{tmp}/www", ng_port, tmp)
            try:
                assert http_get(f"http://127.0.0.1:{ng_port}/SpeedTest") == body
                wrk(f"http://127.0.0.1:{api_port}/SpeedTest", 2)  # warm-up
                wrk(f"http://127.0.0.1:{ng_port}/SpeedTest", 2)
                miss = os.path.join(tmp, "miss.lua")  # a new query string each time: no cache hit
                with open(miss, "w") as f:
                    f.write('local n = 0\nfunction request() n = n + 1\n'
                            'return wrk.format("GET", "/SpeedTest?nocache=" .. n) end\n')
                runs = {"dstmc": [], "nginx": [], "dstmc, uncached": []}
                for _ in range(REPS):  # interleaved, so drift hits both alike
                    runs["dstmc"].append(wrk(f"http://127.0.0.1:{api_port}/SpeedTest"))
                    runs["nginx"].append(wrk(f"http://127.0.0.1:{ng_port}/SpeedTest"))
                    runs["dstmc, uncached"].append(
                        wrk(f"http://127.0.0.1:{api_port}/SpeedTest", script=miss))
            finally:
                ng.stop()
        finally:
            api.stop()
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
    per_run = {k: " / ".join(f"{r['rps']:,.0f}" for r in v) for k, v in runs.items()}
    rows = [f"| {k} | {per_run[k]} | **{med[k]:,.0f}** | "
            f"{v[-1]['p50']} | {v[-1]['p99']} | {sum(r['errors'] for r in v)} |"
            for k, v in runs.items()]
    ratio = med["dstmc"] / med["nginx"]
    text = (f"`wrk -t2 -c64 -d{DUR}s` on `GET /SpeedTest` (the 25 newest of the 1345 demo rows, "
            f"{len(body):,} bytes of JSON), {REPS} interleaved runs each; nginx serves the same "
            f"bytes as a static file (2 workers, sendfile, access log off). dstmc: "
            f"`dstmc api --seed-demo --access-log=false` on a SQLite file; its answers are "
            f"reused until the store changes (checked on every request against the store's "
            f"version). The uncached row adds a different query string to each request, so "
            f"every request queries SQLite and builds the JSON.\n\n"
            f"| server | req/s per run | median req/s | p50 (last run) | p99 (last run) | non-2xx |\n"
            f"|---|---|---|---|---|---|\n" + "\n".join(rows) +
            f"\n\ndstmc / nginx = **{ratio:.0%}** (goal: at least 50%).\n")
    return "get", text, ratio >= 0.5


# ---- ingest through POST /api/v1/results ----

INGEST_LUA = r"""
local n, tid = 0, 0
local batch = tonumber(os.getenv("BATCH") or "1")
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args) tid = tonumber(wrk.thread:get("tid")) or 0 end
local function one()
  n = n + 1
  return string.format('{"id":"%08x-0000-4000-8000-%012x","time":%d,"probe":"bench",' ..
    '"engine":"dummy","download_bps":%d,"upload_bps":20000000,"ping_ms":%d,"jitter_ms":1.5,' ..
    '"server":{"id":42,"host":"srv","country":"NO"},"client":{"ip":"10.0.0.2","isp":"ISP"}}',
    tid, n, 1735689600000 + n * 1000 + tid, 50000000 + n % 1000, 5 + n % 20)
end
function request()
  local body
  if batch == 1 then
    body = one()
  else
    local items = {}
    for i = 1, batch do items[i] = one() end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  return wrk.format("POST", "/api/v1/results", {["Content-Type"] = "application/json"}, body)
end
"""


def sqlite_count(path):
    out = subprocess.run(["sqlite3", path, "select count(*), count(distinct id) from results"],
                         capture_output=True, text=True).stdout.strip()
    return tuple(int(x) for x in out.split("|"))


class PgServer:
    """A private PostgreSQL for a bench: initdb into a fresh directory, a Unix socket there only,
    a free port (which the URL names); the server's default durability (fsync, synchronous
    commit). As root it runs as the postgres user. Stopped by its pid."""

    def __init__(self, tmp):
        import glob
        import pwd
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda d: int(d.split("/")[4]) if d.split("/")[4].isdigit() else 0)
        if not dirs:
            raise RuntimeError("no PostgreSQL binaries: run scripts/deps.sh")
        self.bin, self.dir = dirs[-1], os.path.join(tmp, "pg")
        self.port = free_port()
        os.mkdir(self.dir)
        os.chmod(tmp, 0o755)
        kw = {}
        if os.getuid() == 0:
            u = pwd.getpwnam("postgres")
            os.chown(self.dir, u.pw_uid, u.pw_gid)
            kw = {"user": u.pw_uid, "group": u.pw_gid, "extra_groups": []}
        self.kw = kw
        data = os.path.join(self.dir, "data")
        subprocess.run([f"{self.bin}/initdb", "-D", data, "-A", "trust", "-U", "dstmc", "-E",
                        "UTF8", "--locale=C"], check=True, capture_output=True, **kw)
        self.p = subprocess.Popen([f"{self.bin}/postgres", "-D", data, "-k", self.dir, "-p",
                                   str(self.port), "-c", "listen_addresses=", "-c",
                                   "max_connections=200"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        end = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError("postgres did not start")
            time.sleep(0.1)

    def _ready(self):
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].startswith("ready")

    @property
    def pid(self):
        return self.p.pid

    def psql(self, sql, db="postgres"):
        return subprocess.run([f"{self.bin}/psql", "-XAtF|", "-h", self.dir, "-p",
                               str(self.port), "-U", "dstmc", "-d", db, "-c", sql],
                              capture_output=True, text=True, check=True).stdout.strip()

    def url(self, db):
        return f"postgresql:///{db}?host={self.dir}&port={self.port}&user=dstmc"

    def version(self):
        return self.psql("SHOW server_version").split()[0]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def ingest_run(tmp, script, batch, pg=None, async_commit=False, threads=None, conns=16):
    """One bounded wrk run against a fresh API and store (a SQLite file, or a new database of
    pg, with synchronous_commit off if asked); the rows are counted in the store after the API
    stopped."""
    port = free_port()
    if pg:
        db = f"ingest_{batch}" + ("_async" if async_commit else "") + \
            (f"_t{threads}" if threads else "") + f"_c{conns}"
        pg.psql(f"CREATE DATABASE {db}")
        if async_commit:
            pg.psql(f"ALTER DATABASE {db} SET synchronous_commit = off")
        url = pg.url(db)
    else:
        db = f"{tmp}/ingest-{batch}.db"
        url = f"sqlite:{db}"
    api = dstmc_api(port, url, "--max-body", str(4 << 20),
                    *(["--threads", str(threads)] if threads else []))
    try:
        c0 = cpu_seconds(api.pid)
        p0 = cpu_seconds_tree(pg.pid) if pg else 0
        t = time.monotonic()
        r = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{DUR}s", "--latency", "-s", script,
                            f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                           env={**os.environ, "BATCH": str(batch)}, timeout=DUR + 30).stdout
        wall = time.monotonic() - t
        cpu = cpu_seconds(api.pid) - c0
        pgcpu = cpu_seconds_tree(pg.pid) - p0 if pg else None
    finally:
        api.stop()
    if pg:
        rows, distinct = (int(x) for x in pg.psql(
            "select count(*), count(distinct id) from results", db).split("|"))
    else:
        rows, distinct = sqlite_count(db)
    reqs = int(re.search(r"(\d+) requests in", r).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", r, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r)
    store = "PostgreSQL" + (", synchronous_commit=off" if async_commit else "") + \
        (f", API --threads {threads}" if threads else "") + \
        (f", {conns} connections" if conns != 16 else "")
    return {"store": store if pg else "SQLite", "batch": batch, "reqs": reqs,
            "rows": rows, "distinct": distinct, "wall": wall, "cpu": cpu, "pgcpu": pgcpu,
            "p50": lat.get("50"), "p99": lat.get("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def cpu_seconds_tree(pid):
    """CPU seconds of pid and its children now alive (PostgreSQL's backends and workers)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench_ingest():
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "ingest.lua")
        with open(script, "w") as f:
            f.write(INGEST_LUA)
        pg = PgServer(tmp)
        try:
            pgver = pg.version()
            runs = [ingest_run(tmp, script, b) for b in (1, 100)]
            runs += [ingest_run(tmp, script, b, pg) for b in (1, 100)]
            runs += [ingest_run(tmp, script, 1, pg, threads=16),
                     ingest_run(tmp, script, 1, pg, threads=64, conns=64),
                     ingest_run(tmp, script, 1, pg, async_commit=True),
                     ingest_run(tmp, script, 1, pg, async_commit=True, threads=16)]
        finally:
            pg.stop()
    rows = []
    for r in runs:
        rate = r["rows"] / DUR
        pgcpu = "" if r["pgcpu"] is None else f" + {r['pgcpu']:.1f}"
        rows.append(f"| {r['store']} | {r['batch']} | {r['reqs']:,} | "
                    f"{r['rows']:,} ({r['distinct']:,}) | **{rate:,.0f}** | {r['cpu']:.1f}{pgcpu} | "
                    f"{r['p50']} | {r['p99']} | {r['errors']} |")
    load1 = os.getloadavg()[0]
    single = {r["store"]: r["rows"] / DUR for r in runs
              if r["batch"] == 1 and "," not in r["store"]}
    exact = all(r["rows"] == r["distinct"] and r["errors"] == 0 and
                r["rows"] >= r["reqs"] * r["batch"] for r in runs)
    text = (f"`wrk -t2 -c16 -d{DUR}s` POSTing new results (unique ids, from a Lua script) to "
            f"`POST /api/v1/results`: one result per request (what a probe sends), and batches "
            f"of 100. `dstmc api` on a SQLite file (WAL, synchronous=NORMAL), a fresh file per "
            f"run, and on PostgreSQL {pgver} started by the bench on a Unix socket (initdb "
            f"defaults: fsync and synchronous_commit on, so an answer means the commit is on "
            f"disk), a fresh database per run; rows counted in the store after the API "
            f"stopped. CPU: the API's, + the PostgreSQL server's processes. The API answers "
            f"with its default 2 HTTP worker threads, so at most 2 single inserts wait for a "
            f"commit at once; the row with `--threads 16` lets all 16 connections' inserts "
            f"meet in one group. The last row sets "
            f"synchronous_commit off for its database: commits are not waited on to reach the "
            f"disk, like SQLite's synchronous=NORMAL here (a crash may lose the last commits; the "
            f"database stays consistent); dstmc still answers only after the commit. Single results from concurrent requests are written together, one "
            f"statement and one commit per group (store_pg_group.c). The machine's 1-minute "
            f"load average: {load0:.1f} before the runs, {load1:.1f} after (other work shares "
            f"its CPUs when above 2).\n\n"
            f"| store | results per request | requests answered | rows stored (distinct ids) | "
            f"results/s | CPU s | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) +
            f"\n\nGoal: at least 10,000 single results/s into PostgreSQL (and SQLite), each "
            f"stored exactly once (rows = distinct ids ≥ results in answered requests; requests "
            f"still in flight when wrk stops are stored but not counted by wrk).\n")
    return "ingest", text, min(single.values()) >= 10000 and exact


# ---- the series query over one year of 5-minute results ----

def bench_series():
    n = 365 * 24 * 12  # 105,120
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        api = dstmc_api(port, f"sqlite:{tmp}/series.db", "--max-body", str(64 << 20))
        try:
            t = time.monotonic()
            for start in range(0, n, 1000):
                batch = [{"id": f"00000000-0000-4000-8000-{i:012x}", "time": T0 + i * 300_000,
                          "probe": "p1" if i % 2 else "p2", "download_bps": 50e6 + (i % 97) * 1e6,
                          "upload_bps": 10e6 + (i % 13) * 1e6, "ping_ms": 5 + i % 11,
                          "jitter_ms": 1 + i % 3} for i in range(start, min(n, start + 1000))]
                http_post(f"http://127.0.0.1:{port}/api/v1/results", batch)
            fill = time.monotonic() - t
            url = f"http://127.0.0.1:{port}/api/v1/series?from={T0}&to={T0 + 365 * 86_400_000}"
            times, times_probe = [], []
            body = None
            for _ in range(5 if QUICK else 20):
                t = time.monotonic()
                body = http_get(url)
                times.append((time.monotonic() - t) * 1000)
                t = time.monotonic()
                http_get(url + "&probe=p1")
                times_probe.append((time.monotonic() - t) * 1000)
            s = json.loads(body)
        finally:
            api.stop()
        # the reference: the same GROUP BY in the sqlite3 shell on the same file
        sql = (f"select (time_ms-{s['from']})/{s['step']} b, count(*), min(download_bps), "
               f"avg(download_bps), max(download_bps) from results where time_ms >= {s['from']} "
               f"and time_ms < {s['to']} group by b;")
        t = time.monotonic()
        subprocess.run(["sqlite3", f"{tmp}/series.db", sql], capture_output=True, check=True)
        shell_ms = (time.monotonic() - t) * 1000
    med, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    text = (f"{n:,} results (one year, one every 5 minutes, two probes) stored through the API "
            f"in batches of 1000 ({fill:.1f} s, {n / fill:,.0f} results/s). Then "
            f"`GET /api/v1/series` over the whole year ({len(s['t'])} buckets of "
            f"{s['step'] // 3_600_000} h, min/avg/max of download, upload, ping), "
            f"{len(times)} times, wall time measured by the client:\n\n"
            f"| query | median ms | p95 ms |\n|---|---|---|\n"
            f"| whole year, all probes | **{med:.1f}** | {p95:.1f} |\n"
            f"| whole year, `probe=p1` | {statistics.median(times_probe):.1f} | "
            f"{sorted(times_probe)[int(len(times_probe) * 0.95) - 1]:.1f} |\n"
            f"| reference: the plain GROUP BY in the `sqlite3` shell (process start included) | "
            f"{shell_ms:.1f} | |\n\nGoal: under 50 ms.\n")
    return "series", text, med < 50


# ---- resident memory of `dstmc up` at idle ----

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_memory():
    with tempfile.TemporaryDirectory() as tmp:
        port, ng_port = free_port(), free_port()
        up = Proc([BIN, "up", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:{tmp}/up.db",
                   "--target", "dummy:", "--server-http", "127.0.0.1:0", "--server-iperf3",
                   "127.0.0.1:0",
                   "--log-level", "warn"], wait_port=port, stdout=subprocess.DEVNULL)
        os.makedirs(f"{tmp}/www")
        ng = nginx(f"{tmp}/www", ng_port, tmp)
        try:
            http_get(f"http://127.0.0.1:{port}/")  # the UI served once
            http_get(f"http://127.0.0.1:{port}/api/v1/series")
            end = time.monotonic() + 20  # the probe is up (its first heartbeat)
            while not json.loads(http_get(f"http://127.0.0.1:{port}/api/v1/probes"))["probes"]:
                if time.monotonic() > end:
                    raise RuntimeError("no probe")
                time.sleep(0.1)
            run = http_post(f"http://127.0.0.1:{port}/api/v1/run", {})
            end = time.monotonic() + 20  # one test run by the probe and stored
            while not [r for r in json.loads(http_get(f"http://127.0.0.1:{port}/api/v1/results"))
                       ["results"] if r["request_id"] == run["request_id"]]:
                if time.monotonic() > end:
                    raise RuntimeError("the probe did not run the test")
                time.sleep(0.1)
            time.sleep(3)  # idle
            up_kb = rss_kb(up.pid)
            ng_kids = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True,
                                     text=True).stdout.split()
            ng_kb = rss_kb(ng.pid) + sum(rss_kb(int(k)) for k in ng_kids)
        finally:
            up.stop()
            ng.stop()
    text = (f"VmRSS of `dstmc up` (API, web UI, scheduler, probe, test server on HTTP and iperf3 — "
            f"whose libiperf child process is not counted; SQLite file; in-process queue) after "
            f"serving the UI once, running one test through the probe (run-now, dummy: engine), "
            f"and 3 s idle, beside an idle nginx (master + 2 workers) in the "
            f"same run.\n\n"
            f"| process | resident memory |\n|---|---|\n| dstmc up | **{up_kb / 1024:.1f} MiB** |\n"
            f"| nginx, master + 2 workers, idle | {ng_kb / 1024:.1f} MiB |\n\nGoal: under 10 MB.\n")
    return "memory", text, up_kb * 1024 < 10_000_000


# ---- issue 3: engines and the test server ----

def dstmc_server(tmp):
    """`dstmc server` on loopback with all three listeners; returns (proc, http, ookla, iperf3)."""
    ports = [free_port() for _ in range(3)]
    p = Proc([BIN, "server", "--http", f"127.0.0.1:{ports[0]}", "--ookla",
              f"127.0.0.1:{ports[1]}", "--iperf3", f"127.0.0.1:{ports[2]}", "--log-level",
              "warn"], wait_port=ports[2], stderr=subprocess.DEVNULL)
    return (p, *ports)


def run_engine(target, seconds):
    """`dstmc run --json` on target; returns (result dict, peak RSS in KiB of that process).

    The peak is the process's own VmHWM, read every 10 ms until it exits: wait4's ru_maxrss
    would not do, as Linux carries the high-water mark across exec, so it reports this Python
    process's size (about 23 MiB) for any child it starts.
    """
    p = subprocess.Popen([BIN, "run", "--json", "--target", target, "--timeout",
                          str(4 * seconds + 60)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    out, peak = [], 0
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
    reader.start()
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                hwm = re.search(r"VmHWM:\s+(\d+) kB", f.read())
            peak = max(peak, int(hwm.group(1)) if hwm else 0)
        except OSError:
            pass
        time.sleep(0.01)
    reader.join()
    return json.loads(out[0])["result"], peak


def iperf3_bin(port, seconds, reverse):
    srv = Proc(["iperf3", "-s", "-1", "-p", str(port), "-B", "127.0.0.1"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10  # until it listens (a test connection would use up -1)
        while f"127.0.0.1:{port} " not in subprocess.run(["ss", "-ltn"], capture_output=True,
                                                          text=True).stdout:
            if time.monotonic() > end:
                raise RuntimeError("iperf3 -s did not listen")
            time.sleep(0.05)
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                              "-J", *(["-R"] if reverse else [])], capture_output=True,
                             text=True, timeout=seconds + 30).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"]
    finally:
        srv.stop()


def bench_engines():
    """Engines against dstmc server beside the iperf3 binary. Loopback figures on a 2-vCPU VM
    swing by a third from one run to the next, so iperf3 and speedtest:// run REPS times,
    interleaved, and the medians are compared; the other engines run once, for the table."""
    secs = 3 if QUICK else 10
    rows, rss, ref, st = [], {}, {"down": [], "up": []}, {"down": [], "up": []}
    with tempfile.TemporaryDirectory() as tmp:
        srv, http, ookla, ip3 = dstmc_server(tmp)
        targets = {"speedtest": f"speedtest://127.0.0.1:{http}/?duration={secs}",
                   "librespeed": f"librespeed://127.0.0.1:{http}/?duration={secs}",
                   "ookla": f"ookla://127.0.0.1:{ookla}?duration={secs}",
                   "iperf3": f"iperf3://127.0.0.1:{ip3}?duration={secs}"}
        try:
            for _ in range(REPS):
                ref["up"].append(iperf3_bin(free_port(), secs, False))
                ref["down"].append(iperf3_bin(free_port(), secs, True))
                r, peak = run_engine(targets["speedtest"], secs)
                rss["speedtest"] = max(rss.get("speedtest", 0), peak)
                st["down"].append(r["download_bps"])
                st["up"].append(r["upload_bps"])
            runs = {"speedtest": (statistics.median(st["down"]), statistics.median(st["up"]),
                                  r["streams"])}
            for name in ("librespeed", "ookla", "iperf3"):
                r, rss[name] = run_engine(targets[name], secs)
                runs[name] = (r["download_bps"], r["upload_bps"], r["streams"])
        finally:
            srv.stop()
    ref_down, ref_up = statistics.median(ref["down"]), statistics.median(ref["up"])
    for name, (down, up, streams) in runs.items():
        rows.append(f"| dstmc `{name}://` engine → dstmc server | {down / 1e9:.2f} | "
                    f"{up / 1e9:.2f} | {streams} | {rss[name] / 1024:.1f} MiB |")
    ratio = min(runs["speedtest"][0] / ref_down, runs["speedtest"][1] / ref_up)
    each = lambda xs: ", ".join(f"{x / 1e9:.1f}" for x in xs)  # noqa: E731
    text = (f"Loopback, {secs} s per direction. The reference is the iperf3 binary (one "
            f"process, one stream, `iperf3 -c 127.0.0.1 -t {secs}` and `-R`) in the same run. "
            f"Every engine runs as `dstmc run --json --target URL` against `dstmc server`; peak "
            f"RSS is the process's VmHWM, read every 10 ms while it runs. iperf3 and "
            f"`speedtest://` ran {REPS} times each, interleaved; their rows are the medians.\n\n"
            f"| client → server | download Gbit/s | upload Gbit/s | streams | probe peak RSS |\n"
            f"|---|---|---|---|---|\n"
            f"| iperf3 binary → iperf3 -s | {ref_down / 1e9:.2f} | {ref_up / 1e9:.2f} | 1 | |\n"
            + "\n".join(rows) +
            f"\n\nEach run, Gbit/s: iperf3 down {each(ref['down'])}, up {each(ref['up'])}; "
            f"speedtest:// down {each(st['down'])}, up {each(st['up'])}.\n\n"
            f"speedtest:// / iperf3 = **{ratio:.0%}** (the lower of download and upload; "
            f"goal: at least 80 %). Peak RSS of the probe during a test: at most "
            f"**{max(rss.values()) / 1024:.1f} MiB** (goal: under 16 MB).\n")
    return "engines", text, ratio >= 0.8 and max(rss.values()) * 1024 < 16_000_000


def bench_speedtest_cli():
    with tempfile.TemporaryDirectory() as tmp:
        srv, http, _, _ = dstmc_server(tmp)
        try:
            env = {**os.environ, "http_proxy": f"http://127.0.0.1:{http}",
                   "no_proxy": "127.0.0.1,localhost"}
            t = time.monotonic()
            out = subprocess.run(["speedtest-cli", "--mini", f"http://127.0.0.1:{http}/",
                                  "--json"], capture_output=True, text=True, env=env,
                                 timeout=120).stdout
            wall = time.monotonic() - t
            j = json.loads(out)
        finally:
            srv.stop()
    text = (f"Debian's speedtest-cli 2.1.3 (`--mini`, its config fetch answered by dstmc server "
            f"through `http_proxy`), loopback, for reference: a single-process Python client.\n\n"
            f"| download Gbit/s | upload Gbit/s | ping ms | bytes received | bytes sent | wall s |\n"
            f"|---|---|---|---|---|---|\n| {j['download'] / 1e9:.2f} | {j['upload'] / 1e9:.2f} | "
            f"{j['ping']:.3f} | {j['bytes_received']:,} | {j['bytes_sent']:,} | {wall:.2f} |\n")
    return "speedtest-cli", text, None


def bench_server_cpu():
    """CPU seconds per GB served: dstmc server and nginx serving the same 31.6 MB file."""
    with tempfile.TemporaryDirectory() as tmp:
        srv, http, _, _ = dstmc_server(tmp)
        ng_port = free_port()
        try:
            body = http_get(f"http://127.0.0.1:{http}/speedtest/random4000x4000.jpg")
            os.makedirs(f"{tmp}/www/speedtest")
            with open(f"{tmp}/www/speedtest/random4000x4000.jpg", "wb") as f:
                f.write(body)
            ng = nginx(f"{tmp}/www", ng_port, tmp)
            res = {}
            try:
                for name, port, pids in (("dstmc server", http, [srv.pid]),
                                         ("nginx", ng_port, None)):
                    if pids is None:
                        pids = [ng.pid] + [int(x) for x in subprocess.run(
                            ["pgrep", "-P", str(ng.pid)], capture_output=True,
                            text=True).stdout.split()]
                    c0 = sum(cpu_seconds(p) for p in pids)
                    out = subprocess.run(["wrk", "-t2", "-c4", f"-d{DUR}s",
                                          f"http://127.0.0.1:{port}/speedtest/random4000x4000.jpg"],
                                         capture_output=True, text=True, timeout=DUR + 30).stdout
                    cpu = sum(cpu_seconds(p) for p in pids) - c0
                    reqs = int(re.search(r"(\d+) requests in", out).group(1))
                    gb = reqs * len(body) / 1e9
                    res[name] = (gb, cpu, cpu / gb if gb else float("nan"))
            finally:
                ng.stop()
        finally:
            srv.stop()
    rows = "\n".join(f"| {n} | {gb:.1f} | {cpu:.2f} | **{per:.3f}** |"
                      for n, (gb, cpu, per) in res.items())
    text = (f"`wrk -t2 -c4 -d{DUR}s` fetching `/speedtest/random4000x4000.jpg` (31.6 MB) over "
            f"loopback; server CPU (utime + stime of the server's processes) per GB served. "
            f"nginx serves the same bytes from a file (sendfile, 2 workers).\n\n"
            f"| server | GB served | CPU s | CPU s per GB |\n|---|---|---|---|\n{rows}\n\n"
            f"dstmc server answers from one random buffer in memory, written to the socket by "
            f"libmicrohttpd (one copy per byte, into the kernel); nginx sends a file with "
            f"sendfile (no copy), hence its lower CPU per GB.\n")
    return "server-cpu", text, None


# ---- issue 4: the scheduler and a fleet of probes over Redis ----

def redis_server(tmp):
    """A redis-server of this run (AOF on, like a deployment should); returns (proc, port)."""
    port = free_port()
    p = Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
              "--save", "", "--appendonly", "yes", "--loglevel", "warning"], wait_port=port,
             stdout=subprocess.DEVNULL)
    return p, port


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=30).stdout


def all_results(url):
    """Every stored result, through the cursor pages of /api/v1/results."""
    out, cursor = [], ""
    while True:
        page = json.loads(http_get(f"{url}/api/v1/results?limit=1000" +
                                   (f"&cursor={cursor}" if cursor else "")))
        out += page["results"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def bench_fleet():
    """PROBES dummy probes (each its own `dstmc logger` process, its own consumer group) and one
    API over Redis; REQUESTS run-now requests; every probe must store every request once."""
    probes, requests = (10, 5) if QUICK else (50, 20)
    with tempfile.TemporaryDirectory() as tmp:
        rs, rport = redis_server(tmp)
        api_port = free_port()
        queue = f"redis://127.0.0.1:{rport}"
        api = dstmc_api(api_port, f"sqlite:{tmp}/fleet.db", "--queue", queue)
        url = f"http://127.0.0.1:{api_port}"
        loggers = []
        try:
            for i in range(probes):
                loggers.append(Proc([BIN, "logger", "--queue", queue, "--api", url, "--target",
                                     "dummy:", "--agent", f"p{i:02d}", "--outbox",
                                     f"{tmp}/outbox-{i}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
            end = time.monotonic() + 60  # every probe's group exists: its first heartbeat
            while len(json.loads(http_get(f"{url}/api/v1/probes"))["probes"]) < probes:
                if time.monotonic() > end:
                    raise RuntimeError("not every probe came up")
                time.sleep(0.2)
            time.sleep(2)
            t0 = time.monotonic()
            rids = [http_post(f"{url}/api/v1/run", {})["request_id"] for _ in range(requests)]
            want, got = probes * requests, []
            end = time.monotonic() + 300
            while time.monotonic() < end:
                got = [r for r in all_results(url) if r["request_id"] in set(rids)]
                if len(got) >= want:
                    break
                time.sleep(0.5)
            took = time.monotonic() - t0
            time.sleep(3)  # anything late or duplicated would show now
            got = [r for r in all_results(url) if r["request_id"] in set(rids)]
        finally:
            for lg in loggers:
                lg.stop()
            api.stop()
            rs.stop()
    pairs = {(r["request_id"], r["probe"]) for r in got}
    ids = {r["id"] for r in got}
    lost = want - len(pairs)
    dup = len(got) - len(pairs)
    text = (f"{probes} probes (`dstmc logger --queue redis://… --target dummy:`, one process "
            f"and one consumer group each) and one `dstmc api` on SQLite, over one redis-server "
            f"(AOF on), loopback. {requests} run-now requests published at once; every probe "
            f"must store a result for every request, once.\n\n"
            f"| requests | probes | results expected | stored | distinct (request, probe) | "
            f"distinct ids | lost | duplicated | all stored after |\n|---|---|---|---|---|---|---|"
            f"---|---|\n| {requests} | {probes} | {want} | {len(got)} | {len(pairs)} | "
            f"{len(ids)} | **{lost}** | **{dup}** | {took:.1f} s |\n")
    return "fleet", text, lost == 0 and dup == 0 and len(ids) == len(got)


def bench_fire_delay():
    """The scheduler's delay from the cron instant to the publish, over whole minutes: SCHEDULES
    schedules of "* * * * *" for MINUTES minutes; requested_at of every message in the stream."""
    schedules, minutes = (10, 1) if QUICK else (16, 4)  # 16: the most --schedule flags
    with tempfile.TemporaryDirectory() as tmp:
        rs, rport = redis_server(tmp)
        try:
            args = [BIN, "scheduler", "--queue", f"redis://127.0.0.1:{rport}"]
            for _ in range(schedules):
                args += ["--schedule", "* * * * *"]
            sch = Proc(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(60 * minutes + 62 - time.time() % 60)  # the minutes, whole
                if sch.p.poll() is not None:
                    raise RuntimeError("dstmc scheduler exited")
            finally:
                sch.stop()
            out = redis_cli(rport, "--json", "XRANGE", "speedtest.requests", "-", "+")
        finally:
            rs.stop()
    delays = []
    for entry in json.loads(out or "[]"):
        fields = entry[1]
        body = json.loads(fields[fields.index("body") + 1])
        at = body["requested_at"]
        delays.append(at - (at // 60000) * 60000)
    delays.sort()
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    text = (f"`dstmc scheduler` with {schedules} schedules `* * * * *` on redis://, for "
            f"{minutes + 1} minute boundaries; the delay of each request's `requested_at` (set "
            f"when it is published) after its minute.\n\n"
            f"| requests | median ms | p99 ms | max ms |\n|---|---|---|---|\n"
            f"| {len(delays)} | {p(0.5)} | **{p(0.99)}** | {delays[-1]} |\n\n"
            f"Goal: p99 under 1 s.\n")
    return "fire-delay", text, len(delays) >= schedules * minutes and p(0.99) < 1000


# ---- issue 5: dstmc monitor (health checks, failover proxy) in front of dstmc machine ----

SUM = "/?first=1&second=2"
POLL_MS, TIMEOUT_MS = 200, 100


def dstmc_machine(port, *extra):
    return Proc([BIN, "machine", "--listen", f"127.0.0.1:{port}", *extra], wait_port=port,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dstmc_monitor(port, backends, tmp, threads=2):
    args = [BIN, "monitor", "--listen", f"127.0.0.1:{port}", "--threads", str(threads),
            "--poll-ms", str(POLL_MS), "--timeout-ms", str(TIMEOUT_MS)]
    for b in backends:
        args += ["--backend", f"http://127.0.0.1:{b}"]
    with open(os.path.join(tmp, f"monitor-{port}.log"), "w") as log_:  # the child keeps a copy
        return Proc(args, wait_port=port, stdout=log_, stderr=log_)


def proc_cpu(pids):
    return sum(cpu_seconds(p) for p in pids)


def nginx_pids(ng):
    kids = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True, text=True).stdout
    return [ng.pid] + [int(x) for x in kids.split()]


class Watch:
    """What a user of the monitor sees: a client sending GETs back to back on one keep-alive
    connection (X-Dstmc-Backend of each answer), and a page's event stream (/monitor/events,
    its "B" and "VM" flags). Both note the monotonic time of every change they see."""

    def __init__(self, port):
        self.port = port
        self.routes = [(time.monotonic(), None)]  # (t, backend) at each change
        self.bulbs = [(time.monotonic(), None, None)]  # (t, B, VM) at each change
        self.requests = self.errors = 0
        self.done = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /monitor/events HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                          b"Accept: text/event-stream\r\n\r\n")  # 1.0: no chunks, just lines
        self.threads = [threading.Thread(target=self._client, daemon=True),
                        threading.Thread(target=self._events, daemon=True)]
        for t in self.threads:
            t.start()

    def _client(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        last = None
        while not self.done.is_set():
            try:
                conn.request("GET", SUM)
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                time.sleep(0.001)
                continue
            t = time.monotonic()
            self.requests += 1
            if r.status != 200:
                self.errors += 1
            b = r.getheader("X-Dstmc-Backend")
            if b != last:
                self.routes.append((t, b))
                last = b
        conn.close()

    def _events(self):
        last = None
        try:
            for line in self.sock.makefile("rb"):
                if not line.startswith(b"data:"):
                    continue
                t = time.monotonic()
                j = json.loads(line[5:])
                state = (tuple(j["B"]), tuple(j["VM"]))
                if state != last:
                    self.bulbs.append((t, *state))
                    last = state
        except (OSError, ValueError):
            pass

    def steady(self):
        """Both services up on the page, traffic on backend 0."""
        return self.bulbs[-1][1] == (1, 1) and self.routes[-1][1] == "0"

    def close(self):
        self.done.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for t in self.threads:
            t.join(15)


def first_after(events, t0, pred):
    return next((e[0] for e in events if e[0] >= t0 and pred(e)), None)


def wait_until(cond, timeout):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.002)
    return True


def failover_rounds(kind, w, machines, port, rounds):
    """rounds failures of machine 0 (SIGSTOP, or SIGKILL then a restart), each at a random
    moment against the pollers' rounds; the times (ms) from the signal to the first bulb event
    with B[0] = 0 and to the first answer from backend 1, then back to backend 0."""
    out = []
    for _ in range(rounds):
        if not wait_until(w.steady, 10):
            raise RuntimeError("the monitor did not settle on backend 0 with both up")
        time.sleep(0.1 + random.random() * POLL_MS / 1000)
        errors = w.errors
        t0 = time.monotonic()
        if kind == "stop":
            os.kill(machines[0].pid, signal.SIGSTOP)
        else:
            os.kill(machines[0].pid, signal.SIGKILL)
            machines[0].p.wait()
        got = lambda: (first_after(w.bulbs, t0, lambda e: e[1] and e[1][0] == 0),  # noqa: E731
                       first_after(w.routes, t0, lambda e: e[1] == "1"))
        wait_until(lambda: None not in got(), 5)
        t_bulb, t_route = got()
        t1 = time.monotonic()
        if kind == "stop":
            os.kill(machines[0].pid, signal.SIGCONT)
        else:
            machines[0] = dstmc_machine(port)
        back = lambda: (first_after(w.bulbs, t1, lambda e: e[1] == (1, 1)),  # noqa: E731
                        first_after(w.routes, t1, lambda e: e[1] == "0"))
        wait_until(lambda: None not in back(), 5)
        t_back = back()[1]
        vm_down = any(e[2] and e[2][0] == 0 for e in w.bulbs if e[0] >= t0)
        ms = lambda t, ref: None if t is None else (t - ref) * 1000  # noqa: E731
        out.append({"bulb": ms(t_bulb, t0), "route": ms(t_route, t0), "back": ms(t_back, t1),
                    "errors": w.errors - errors, "vm_down": vm_down})
    return out


def pin(pids, cpus):
    """Moves every thread of pids to cpus (a taskset list: "0", "0-1")."""
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True,
                       stdout=subprocess.DEVNULL)


def bench_monitor():
    lat_dur, rounds = (2, 5) if QUICK else (3, 20)
    m2, m4 = "dstmc monitor → machine (`--threads 2`)", "dstmc monitor → machine (`--threads 4`)"
    dk, ngk = "direct to the machine", "nginx `proxy_pass` → machine"
    with tempfile.TemporaryDirectory() as tmp:
        ports = {k: free_port() for k in ("m0", "m1", "mon2", "mon4", "ng", "fail")}
        machines = [dstmc_machine(ports["m0"]),
                    dstmc_machine(ports["m1"], "--random-min", "70", "--random-max", "100")]
        procs = []
        try:
            backends = [ports["m0"], ports["m1"]]
            procs.append(dstmc_monitor(ports["mon2"], backends, tmp, 2))
            procs.append(dstmc_monitor(ports["mon4"], backends, tmp, 4))
            os.makedirs(f"{tmp}/www")
            ng = nginx(f"{tmp}/www", ports["ng"], tmp, upstream=f"127.0.0.1:{ports['m0']}")
            procs.append(ng)
            paths = {dk: (ports["m0"], []), ngk: (ports["ng"], nginx_pids(ng)),
                     m2: (ports["mon2"], [procs[0].pid]), m4: (ports["mon4"], [procs[1].pid])}
            url = {k: f"http://127.0.0.1:{p}{SUM}" for k, (p, _) in paths.items()}
            for k in paths:  # every path answers, and the monitors from backend 0
                with urllib.request.urlopen(url[k], timeout=10) as r:
                    assert json.loads(r.read())["sum"] == 3, k
                    assert "monitor" not in k or r.headers["X-Dstmc-Backend"] == "0", k
            # 1. latency: one connection, each request sent when the last is answered
            lat_paths = [dk, ngk, m2]
            lat = {k: [] for k in lat_paths}
            for k in lat_paths:
                wrk(url[k], 1, conns=1, threads=1)  # warm-up
            for _ in range(REPS):  # interleaved
                for k in lat_paths:
                    lat[k].append(wrk(url[k], lat_dur, conns=1, threads=1))
            # the same with every process on one vCPU: the work, without the wake-ups of the
            # other vCPU (an idle vCPU here halts at once: haltpoll with guest_halt_poll_ns=0)
            all_pids = [m.pid for m in machines] + [p.pid for p in procs[:2]] + paths[ngk][1]
            pinned = {}
            pin(all_pids, "0")
            try:
                for k in lat_paths:
                    pinned[k] = wrk(url[k], lat_dur, conns=1, threads=1, prefix=["taskset",
                                                                                  "-c", "0"])
            finally:
                pin(all_pids, f"0-{os.cpu_count() - 1}")
            # 2. requests/s, interleaved runs
            wrk(url[m2], 2, conns=32)  # warm-up
            runs = {k: [] for k in paths}
            for _ in range(REPS):
                for k, (_, pids) in paths.items():
                    c0, mc0 = proc_cpu(pids), cpu_seconds(machines[0].pid)
                    r = wrk(url[k], conns=32)
                    r["cpu"] = (proc_cpu(pids) - c0) / DUR
                    r["mcpu"] = (cpu_seconds(machines[0].pid) - mc0) / DUR
                    runs[k].append(r)
            for p in procs[:2]:
                p.stop()
            # 3. failover: a fresh monitor, a user's client and event stream
            procs.append(dstmc_monitor(ports["fail"], backends, tmp, 2))
            w = Watch(ports["fail"])
            try:
                fail = {"stop": failover_rounds("stop", w, machines, ports["m0"], rounds),
                        "kill": failover_rounds("kill", w, machines, ports["m0"], rounds)}
            finally:
                w.close()
        finally:
            for p in procs + machines:
                p.stop()

    # ---- the text ----
    def mid(rs, key):
        return statistics.median(us(r[key]) for r in rs)

    base = {q: mid(lat[dk], q) for q in ("p50", "p90", "p99")}
    lrows = []
    for k in lat_paths:
        rs = lat[k]
        add = ("— | —" if k == dk else f"**{mid(rs, 'p50') - base['p50']:+.0f}** | "
               f"{mid(rs, 'p99') - base['p99']:+.0f}")
        each = " / ".join(f"{us(r['p50']):.0f}" for r in rs)
        lrows.append(f"| {k} | {each} | "
                     f"{statistics.median(r['requests'] for r in rs):,.0f} | "
                     f"{mid(rs, 'p50'):.0f} | {mid(rs, 'p90'):.0f} | {mid(rs, 'p99'):.0f} | "
                     f"{add} |")
    prows = [f"| {k} | {pinned[k]['requests']:,} | {us(pinned[k]['p50']):.0f} | "
             f"{us(pinned[k]['p99']):.0f} | "
             + ("— |" if k == dk else f"{us(pinned[k]['p50']) - us(pinned[dk]['p50']):+.0f} |")
             for k in lat_paths]
    added = mid(lat[m2], "p50") - base["p50"]
    added_ng = mid(lat[ngk], "p50") - base["p50"]
    added_pin = us(pinned[m2]["p50"]) - us(pinned[dk]["p50"])
    added_pin_ng = us(pinned[ngk]["p50"]) - us(pinned[dk]["p50"])
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
    per_run = {k: " / ".join(f"{r['rps']:,.0f}" for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
    per_req = {k: "—" if k == dk else f"{cpu[k] / med[k] * 1e6:.0f} µs" for k in runs}
    trows = [f"| {k} | {per_run[k]} | **{med[k]:,.0f}** | {v[-1]['p50']} | {v[-1]['p99']} | "
             f"{'—' if k == dk else f'{cpu[k]:.2f}'} | {per_req[k]} | "
             f"{statistics.median(r['mcpu'] for r in v):.2f} | "
             f"{sum(r['errors'] for r in v)} |" for k, v in runs.items()]
    gain = med[m4] / med[m2] - 1
    threads_note = ("within this box's run-to-run noise; more HTTP threads do not help, as the "
                    "forwarding runs on one libcurl thread and the vCPUs are taken"
                    if abs(gain) < 0.2 else "more HTTP threads help" if gain > 0 else
                    "more HTTP threads cost more than they bring on 2 vCPUs")
    bound, slack = POLL_MS + TIMEOUT_MS, 5

    def stat(rows, key):
        xs = [r[key] for r in rows if r[key] is not None]
        if not xs:
            return "not seen"
        miss = len(rows) - len(xs)
        return (f"{statistics.median(xs):.1f} / {max(xs):.1f}" +
                (f" ({miss} not seen in 5 s)" if miss else ""))

    def worst(rows, key):
        return max(float("inf") if r[key] is None else r[key] for r in rows)

    labels = {"stop": "machine 0 paused (`SIGSTOP`), then `SIGCONT`",
              "kill": "machine 0 killed (`SIGKILL`), then started again"}
    frows = [f"| {labels[k]} | {len(rows)} | **{stat(rows, 'bulb')}** | "
             f"**{stat(rows, 'route')}** | {stat(rows, 'back')} | "
             f"{sum(r['errors'] for r in rows)} | {sum(r['vm_down'] for r in rows)} |"
             for k, rows in fail.items()]
    fail_ok = all(worst(rows, key) <= bound + slack
                  for rows in fail.values() for key in ("bulb", "route"))
    text = (
        f"`dstmc monitor --backend http://127.0.0.1:A --backend http://127.0.0.1:B --listen "
        f"127.0.0.1:M --poll-ms {POLL_MS} --timeout-ms {TIMEOUT_MS}` (`--threads 2`, the "
        f"default, and `--threads 4`) in front of two `dstmc machine --listen 127.0.0.1:PORT`; "
        f"both up, so every request goes to backend 0. The reference in the same run: nginx "
        f"(2 workers) with `proxy_pass` to the same machine 0 through an `upstream` with "
        f"`keepalive 32`, `proxy_http_version 1.1` and `proxy_set_header Connection \"\"`. "
        f"Every request is `GET {SUM}` (a 33-byte JSON answer). Client, proxies and machines "
        f"share the 2 vCPUs.\n\n"
        f"**Latency added.** `wrk -t1 -c1 -d{lat_dur}s --latency` (one keep-alive connection, "
        f"each request sent when the last is answered), {REPS} interleaved runs per path after "
        f"a 1 s warm-up; wrk's percentiles in µs, medians over the runs:\n\n"
        f"| path | p50 per run | requests per run | p50 | p90 | p99 | added p50 | added p99 |\n"
        f"|---|---|---|---|---|---|---|---|\n" + "\n".join(lrows) +
        f"\n\nThe monitor adds **{added:.0f} µs** at the median (goal: under 100 µs); nginx "
        f"adds {added_ng:.0f} µs. A run's p50 depends on where the scheduler puts the threads: "
        f"an idle vCPU of this VM halts at once (cpuidle haltpoll with "
        f"`guest_halt_poll_ns=0`), so each wake-up across vCPUs costs tens of µs, and the "
        f"monitor has more of them per request than nginx: its HTTP thread hands the request "
        f"to its libcurl thread, which hands the answer back, on top of the hop to the machine "
        f"that nginx has too. The same paths with every "
        f"process and wrk on one vCPU (`taskset`), one {lat_dur} s run each, show the work "
        f"without those wake-ups:\n\n"
        f"| path, all on vCPU 0 | requests | p50 | p99 | added p50 |\n|---|---|---|---|---|\n"
        + "\n".join(prows) +
        f"\n\nOn one vCPU the monitor adds {added_pin:.0f} µs, nginx {added_pin_ng:.0f} µs.\n\n"
        f"**Requests/s.** `wrk -t2 -c32 -d{DUR}s --latency`, {REPS} interleaved runs per path; "
        f"CPU in cores (utime + stime over the run, median) of the proxy's processes and of "
        f"machine 0, and the proxy's CPU per request (median CPU / median rate):\n\n"
        f"| path | req/s per run | median req/s | p50 (last run) | p99 (last run) | proxy CPU | "
        f"proxy CPU per request | machine CPU | non-2xx |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(trows) +
        f"\n\nThrough the monitor: {med[m2] / med[dk]:.0%} of the direct rate with 2 threads, "
        f"{med[m4] / med[dk]:.0%} with 4 ({med[m4] / med[m2] - 1:+.0%}, {threads_note}); "
        f"through nginx: {med[ngk] / med[dk]:.0%}. The monitor makes "
        f"{med[m2] / med[ngk]:.0%} of nginx's rate and spends {per_req[m2]} of CPU per "
        f"request against nginx's {per_req[ngk]}: "
        f"each request crosses from an HTTP thread to the libcurl thread and back (locks, "
        f"wake-ups, more system calls) where nginx's worker does all in one event loop. wrk "
        f"takes about one of the 2 vCPUs, so the proxy and the machine share the other: behind "
        f"any proxy each request costs the CPU of two servers, and these rates are the box's "
        f"limit as much as the proxy's. For reference, no goal.\n\n"
        f"**Failover.** A fresh monitor (`--poll-ms {POLL_MS} --timeout-ms {TIMEOUT_MS}`); "
        f"a client sends `GET {SUM}` back to back on one keep-alive connection (Python "
        f"http.client) while a reader follows `/monitor/events`. Each round, at a random "
        f"moment against the pollers' rounds, machine 0's pid gets the signal at t0; the bulb "
        f"is the first \"status\" event after t0 with `B[0] = 0`, the routing the first "
        f"answer after t0 with `X-Dstmc-Backend: 1`. Then the machine comes back (`SIGCONT`, "
        f"or a new process on the same port) and the round waits until the answers come from "
        f"backend 0 again (\"back\": from then to the first such answer). Times in ms, "
        f"median / max:\n\n"
        f"| failure | rounds | t0 → bulb | t0 → routing | back on backend 0 | failed "
        f"requests | rounds with `VM[0] = 0` |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(frows) +
        f"\n\nThe bounds. A paused machine still accepts connections (its kernel does) and "
        f"its host answers the echo, so only `GET /ping` finds it out, by timing out: the "
        f"first poll round that starts after t0 starts within poll_ms of it, and its "
        f"`GET /ping` gives up timeout_ms later, so t0 → bulb ≤ poll_ms + timeout_ms = "
        f"**{bound} ms**, plus the echo's round trip, the event's way to the page and the "
        f"reader's wake-up (we allow {slack} ms for these); the forwarded request that hangs on "
        f"the paused machine is abandoned when the poller marks it down and retried on backend "
        f"1, so the routing changes with the bulb. A killed machine refuses connections: a "
        f"forwarded request fails at once and is retried on backend 1, so the routing changes "
        f"with the next answer; the next round's `GET /ping` is refused at once, so t0 → bulb "
        f"≤ poll_ms = {POLL_MS} ms. The machine flags (`VM`) stay up in both cases: the "
        f"machine is this host, which answers the echo whatever its processes do.\n\n"
        f"Goals: the monitor's p50 added latency under 100 µs; bulb and routing within "
        f"poll_ms + timeout_ms = {bound} ms (+ {slack} ms).\n")
    return "monitor", text, added < 100 and fail_ok


def write_doc(sections):
    doc = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    stamp = time.strftime("%Y-%m-%d")
    for name, text, ok in sections:
        verdict = "for reference, no goal" if ok is None else "goal met" if ok else "GOAL NOT MET"
        block = (f"<!-- BEGIN {name} -->\n_Measured {stamp} on {machine()}; {versions()}._\n\n"
                 f"{text}\nResult: {verdict}.\n<!-- END {name} -->")
        rx = re.compile(rf"<!-- BEGIN {name} -->.*?<!-- END {name} -->", re.S)
        doc = rx.sub(lambda _: block, doc) if rx.search(doc) else doc + "\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc)


def main():
    which = [a for a in sys.argv[1:] if not a.startswith("--")] or ["all"]
    table = {"get": bench_get, "ingest": bench_ingest, "series": bench_series,
             "memory": bench_memory, "engines": bench_engines,
             "speedtest-cli": bench_speedtest_cli, "server-cpu": bench_server_cpu,
             "fleet": bench_fleet, "fire-delay": bench_fire_delay, "monitor": bench_monitor,
             "toystore": lambda: __import__("toystore").bench_toystore(),  # bench/toystore.py
             "image": lambda: __import__("image").bench_image()}  # bench/image.py: needs dockerd
    names = [n for n in table if n != "image"] if which == ["all"] else which
    results = []
    for n in names:
        log(f"bench: {n} ...")
        r = table[n]()
        log(r[1])
        results.append(r)
    if not QUICK:
        write_doc(results)
    return 0 if all(ok is not False for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
