#!/usr/bin/env python3
"""store.py - the store's benchmarks, SQLite and PostgreSQL side by side (issue 12, point 7).

    python3 bench/store.py [--quick]

1. `dstmc store copy` of 1,000,000 results SQLite -> PostgreSQL, with the API's batch insert
   (`--no-bulk`) and with the bulk path (COPY into a temporary table), one after the other, each
   into a fresh database: wall time, the CPU of dstmc and of the PostgreSQL server, the load.
2. Five years of 5-minute results from ten probes (5,256,000) made in a SQLite file by one SQL
   statement, copied into PostgreSQL; the store size per million results on both;
   `GET /api/v1/series` for the last day, week, month, year and five years (the API's own
   steps) on both, after rolling up (`dstmc api --retention-interval 1` until no mark is left;
   timed). No figure before rolling: `dstmc api` starts its roller with it (the interval is 1 s
   to a day), so the API never serves a store left unrolled for long.
Writes the section between `<!-- BEGIN store -->` and `<!-- END store -->` of docs/benchmarks.md
(not with --quick, which makes a tenth of each). Every process started here is stopped by its
pid; PostgreSQL is a private server (tests/integration/pgserver.py: initdb into a temp dir,
fsync off as in the tests).
"""
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import bench  # noqa: E402  (helpers: Proc, dstmc_api, free_port, http_get, write_doc)
from pgserver import PgServer  # noqa: E402

QUICK = "--quick" in sys.argv
BIN = bench.BIN
STEP = 300_000  # 5 minutes
PROBES = 10
YEARS_N = 5 * 365 * 288 * PROBES  # 5,256,000
COPY_N = 1_000_000
T0 = 1_577_836_800_000  # 2020-01-01T00:00:00Z
DAY = 86_400_000
RANGES = [("day", DAY), ("week", 7 * DAY), ("month", 30 * DAY), ("year", 365 * DAY),
          ("five years", 5 * 365 * DAY)]
AIM_SERIES_MS, AIM_COPY_S = 50, 60
log = bench.log

COLS = ("id, time_ms, status, error, probe, location, engine, target, download_bps, upload_bps,"
        " ping_ms, jitter_ms, loss_pct, bytes_down, bytes_up, duration_s, streams, server_id,"
        " server_host, server_name, server_sponsor, server_country, server_lat, server_lon,"
        " server_distance_m, client_ip, client_isp, client_country, client_lat, client_lon,"
        " received_ms")
# Row i: probe i % 10, every 5 minutes per probe (a second apart between probes); every 50th
# failed; every column a real probe fills (server, client, target, bytes).
VALUES = (
    "printf('%08x-0000-4000-8000-%012x', i / 4294967296, i), {t0} + (i / 10) * 300000 + (i % 10)"
    " * 1000, CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'ok' END, CASE WHEN i % 50 = 0 THEN"
    " 'timeout: no answer from speedtest.example.net' END, 'probe-' || (i % 10), 'home office',"
    " 'speedtest', 'speedtest://auto', CASE WHEN i % 50 THEN 9.4e7 + (i % 1000) * 1234.5678 END,"
    " CASE WHEN i % 50 THEN 1.9e7 + (i % 777) * 31.4159 END, CASE WHEN i % 50 THEN 8.5 + (i % 13)"
    " * 0.37 END, CASE WHEN i % 50 THEN 0.9 + (i % 7) * 0.11 END, 0.0, 117000000 + i, 23000000"
    " + i, 20.3, 8, 21541 + i % 20, 'speedtest.example.net:8080', 'Example', 'Example ISP', 'DE',"
    " 52.52, 13.405, 12345.6, '203.0.113.' || (i % 250), 'Example Telecom', 'DE', 52.5, 13.4,"
    " {t0} + (i / 10) * 300000 + 2000")


def make_sqlite(path, n):
    """A dstmc SQLite store (schema by dstmc) with n generated results, by one statement."""
    subprocess.run([BIN, "token", "new", "--db", "sqlite:" + path, "--name", "bench"],
                   check=True, capture_output=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.execute(f"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {n - 1})"
               f" INSERT INTO results ({COLS}) SELECT {VALUES.format(t0=T0)} FROM c")
    db.commit()
    db.close()


def sqlite_size(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def proc_cpu(pid):
    """utime + stime of pid and of its children it waited for (PostgreSQL's backends)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def psql(pg, db, sql):
    p = subprocess.run([os.path.join(pg.bin, "psql"), "-X", "-q", "-A", "-t", "-d", pg.url(db),
                        "-c", sql], capture_output=True, text=True, check=True, timeout=600)
    return p.stdout.strip()


def timed_copy(pg, src, db, *extra):
    """`dstmc store copy` into a fresh database db: wall, dstmc CPU, server CPU, loads."""
    psql(pg, "postgres", f"CREATE DATABASE {db}")
    load0, c0 = os.getloadavg()[0], proc_cpu(pg.proc.pid)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run([BIN, "store", "copy", "sqlite:" + src, pg.url(db), *extra],
                       capture_output=True, text=True, timeout=3600)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"store copy {extra}: exit {p.returncode}: {p.stderr[-2000:]}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    end = time.monotonic() + 10  # the backend's CPU counts once the postmaster reaped it
    while psql(pg, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = "
               f"'{db}'") != "0" and time.monotonic() < end:
        time.sleep(0.1)
    return {"wall": dt, "client": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
            "server": proc_cpu(pg.proc.pid) - c0, "load0": load0, "load1": os.getloadavg()[0]}


def bench_copy(tmp, pg, n):
    src = os.path.join(tmp, "copy.db")
    log(f"store: making {n:,} results for the copy ...")
    make_sqlite(src, n)
    runs = {}
    for name, extra in (("API batch insert (`--no-bulk`)", ["--no-bulk"]),
                        ("bulk path (COPY)", [])):
        log(f"store: copy of {n:,} results, {name} ...")
        runs[name] = timed_copy(pg, src, "copy_" + ("bulk" if not extra else "api"), *extra)
        log(f"  {runs[name]}")
    os.unlink(src)
    return runs


END = [T0 + 5 * 365 * DAY]  # the data's end (less with --quick)


def series_ms(port, span, reps):
    """The median of reps GETs of the span that ends with the data (the API picks the step)."""
    end = END[0]
    url = f"http://127.0.0.1:{port}/api/v1/series?from={end - span}&to={end}"
    times = []
    for _ in range(reps):
        t = time.monotonic()
        bench.http_get(url)
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times)


def series_all(db, reps):
    port = bench.free_port()
    api = bench.dstmc_api(port, db, "--retention-interval", "86400")
    try:
        bench.http_get(f"http://127.0.0.1:{port}/api/v1/series?from={T0}&to={T0 + DAY}")  # warm
        return {name: series_ms(port, span, reps) for name, span in RANGES}
    finally:
        api.stop()


def roll(db, marks, done=None):
    """Runs dstmc api's roller (a pass a second) until marks() is 0; the seconds it took."""
    port = bench.free_port()
    t = time.monotonic()
    api = bench.dstmc_api(port, db, "--retention-interval", "1")
    try:
        end = t + 3600
        while marks() != 0:
            if time.monotonic() > end:
                raise SystemExit("roll: marks left after an hour")
            time.sleep(1)
        while done is not None and not done():  # the roller's ANALYZE after a backlog
            if time.monotonic() > end:
                raise SystemExit("roll: not analyzed after an hour")
            time.sleep(1)
        return time.monotonic() - t
    finally:
        api.stop()


def bench_years(tmp, pg, n):
    big = os.path.join(tmp, "years.db")
    out = {}
    END[0] = T0 + n // PROBES * STEP
    log(f"store: making {n:,} results (five years, ten probes) ...")
    t = time.monotonic()
    make_sqlite(big, n)
    out["make"] = time.monotonic() - t
    log("store: copying them into PostgreSQL ...")
    out["pgcopy"] = timed_copy(pg, big, "years")
    sq, pgu = "sqlite:" + big, pg.url("years")

    def sq_marks():
        db = sqlite3.connect(big)
        try:
            return db.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0]
        finally:
            db.close()

    def pg_marks():
        return int(psql(pg, "years", "SELECT count(*) FROM rollup_dirty"))

    def pg_vacuumed():  # the roller vacuums the marks once it caught up with a backlog
        return psql(pg, "years", "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables"
                    " WHERE relname = 'rollup_dirty'").strip() == "t"

    reps = 3
    for name, url, marks, done in (("SQLite", sq, sq_marks, None),
                                   ("PostgreSQL", pgu, pg_marks, pg_vacuumed)):
        log(f"store: rolling {name} up ...")
        out[name, "roll"] = roll(url, marks, done)
        log(f"  {out[name, 'roll']:.0f} s; series after rolling ...")
        out[name, "rolled"] = series_all(url, reps)
        log(f"  {out[name, 'rolled']}")
    out["SQLite", "size"] = sqlite_size(big)
    out["PostgreSQL", "size"] = int(psql(
        pg, "years", "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE"
        " c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"))
    out["rollups"] = int(psql(pg, "years", "SELECT count(*) FROM rollups"))
    return out


def text_of(n_copy, runs, n_years, y):
    lines = [f"**`store copy` of {n_copy:,} results SQLite → PostgreSQL** (`python3 bench/store.py`;"
             " each run into a fresh database of one private PostgreSQL with `fsync=off`, as in"
             " the tests; `--batch 5000`; the source: every column a probe fills, one SQL"
             " statement made it). CPU: dstmc's, and the PostgreSQL server's (its backends, reaped"
             " by the postmaster); load: the 1-minute load average before and after the run.", "",
             "| insert path | wall | results/s | dstmc CPU | PostgreSQL CPU | load before → after |",
             "|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name} | **{r['wall']:.1f} s** | {n_copy / r['wall']:,.0f} |"
                     f" {r['client']:.1f} s | {r['server']:.1f} s |"
                     f" {r['load0']:.1f} → {r['load1']:.1f} |")
    bulk = runs["bulk path (COPY)"]
    lines += ["", f"**Five years of 5-minute results from ten probes** ({n_years:,} results,"
              f" made in {y['make']:.0f} s; into PostgreSQL by `store copy` in"
              f" {y['pgcopy']['wall']:.0f} s). `GET /api/v1/series?from&to` for the span that"
              " ends with the data (the API's own step: 5 min, 30 min, 3 h, 1 day, 7 days), the"
              " median of 3 after one warm-up request, on `dstmc api`, rolled first: after the"
              " bulk insert every (probe, hour) is marked, and `dstmc api --retention-interval 1`"
              f" rolled every (probe, day) up (SQLite in {y['SQLite', 'roll']:.0f} s, PostgreSQL"
              f" in {y['PostgreSQL', 'roll']:.0f} s; {y['rollups']:,} rollup rows). No figure"
              " before rolling: the API starts its roller with it (`--retention-interval` is 1 s"
              " to a day), so it does not serve a store left unrolled.", "",
              "| range | SQLite | PostgreSQL |", "|---|---|---|"]
    worst = 0
    for name, _ in RANGES:
        vals = [y["SQLite", "rolled"][name], y["PostgreSQL", "rolled"][name]]
        worst = max(worst, *vals)
        lines.append(f"| {name} | " + " | ".join(f"**{v:.1f} ms**" for v in vals) + " |")
    per_m = {k: y[k, "size"] / (n_years / 1e6) / 1e6 for k in ("SQLite", "PostgreSQL")}
    lines += ["", f"**Store size per million results** (the five years, rolled up): SQLite"
              f" {per_m['SQLite']:.0f} MB (the file), PostgreSQL {per_m['PostgreSQL']:.0f} MB"
              " (`pg_total_relation_size` of its tables: heap, indexes, TOAST)."]
    copy_ok, series_ok = bulk["wall"] < AIM_COPY_S, worst < AIM_SERIES_MS
    lines += ["", f"Aims: `store copy` of a million under {AIM_COPY_S} s:"
              f" {'met' if copy_ok else 'NOT MET'} ({bulk['wall']:.1f} s with the bulk path);"
              f" the series under {AIM_SERIES_MS} ms for every range once rolled:"
              f" {'met' if series_ok else 'NOT MET'} (slowest {worst:.1f} ms)."]
    return "\n".join(lines) + "\n", copy_ok and series_ok


def main():
    n_copy, n_years = (COPY_N // 10, YEARS_N // 10) if QUICK else (COPY_N, YEARS_N)
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dstmc-bench-store-") as tmp:
        pg = PgServer()
        try:
            runs = bench_copy(tmp, pg, n_copy)
            years = bench_years(tmp, pg, n_years)
        finally:
            pg.close()
    text, ok = text_of(n_copy, runs, n_years, years)
    text += f"\nThe whole bench took {time.monotonic() - t:.0f} s.\n"
    print(text)
    if not QUICK:
        bench.write_doc([("store", text, ok)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
