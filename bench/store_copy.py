#!/usr/bin/env python3
"""store_copy.py - `dstmc store copy` of N results SQLite -> PostgreSQL (issue 12, point 7).

    python3 bench/store_copy.py [N] [--batch B]      (N: 1000000 by default)

Makes a SQLite store with N results of realistic width (every column a real probe fills: server,
client, target, bytes), starts a private PostgreSQL (tests/integration/pgserver.py: initdb into a
temp dir, fsync off as in the tests), and times one copy into it, then a second copy (nothing
new) and `dstmc store copy` back into a fresh SQLite file. Prints the figures; the lead copies
them into docs/benchmarks.md. Every process started here is stopped by its pid.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("DSTMC_BIN", os.path.join(ROOT, "build", "dstmc"))
from pgserver import PgServer  # noqa: E402

BIN = os.environ["DSTMC_BIN"]
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make(path, n):
    subprocess.run([BIN, "token", "new", "--db", "sqlite:" + path, "--name", "bench"],
                   check=True, capture_output=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    chunk = 50_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            rows.append((str(uuid.UUID(int=i + 1)), T0 + i * 30_000, "ok" if i % 50 else "failed",
                         None if i % 50 else "timeout: no answer from speedtest.example.net",
                         "probe-%d" % (i % 10), "home office", "speedtest", "dummy:",
                         9.4e7 + i % 1000 * 1234.5678, 1.9e7 + i % 777 * 31.4159,
                         8.5 + i % 13 * 0.37, 0.9 + i % 7 * 0.11, 0.0, 117_000_000 + i,
                         23_000_000 + i, 20.3, 8, 21541 + i % 20, "speedtest.example.net:8080",
                         "Example", "Example ISP", "DE", 52.52, 13.405, 12345.6,
                         "203.0.113.%d" % (i % 250), "Example Telecom", "DE", 52.5, 13.4, T0))
        db.executemany(
            "INSERT INTO results (id, time_ms, status, error, probe, location, engine, target,"
            " download_bps, upload_bps, ping_ms, jitter_ms, loss_pct, bytes_down, bytes_up,"
            " duration_s, streams, server_id, server_host, server_name, server_sponsor,"
            " server_country, server_lat, server_lon, server_distance_m, client_ip, client_isp,"
            " client_country, client_lat, client_lon, received_ms)"
            " VALUES (%s)" % ",".join("?" * 31), rows)
        db.commit()
    db.close()


def timed(*args):
    t = time.monotonic()
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=1800)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"{args}: exit {p.returncode}: {p.stderr[-2000:]}")
    return dt, p.stdout


def main():
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), 1_000_000))
    batch = sys.argv[sys.argv.index("--batch") + 1] if "--batch" in sys.argv else "5000"
    with tempfile.TemporaryDirectory(prefix="dstmc-bench-copy-") as d:
        src, back = os.path.join(d, "src.db"), os.path.join(d, "back.db")
        log(f"making {n} results in {src} ...")
        make(src, n)
        log(f"source: {os.path.getsize(src) / 1e6:.0f} MB")
        pg = PgServer()
        try:
            dt, out = timed("store", "copy", "sqlite:" + src, pg.url(), "--batch", batch)
            log(out.strip())
            print(f"store copy, {n} results SQLite -> PostgreSQL (batch {batch}): {dt:.1f} s,"
                  f" {n / dt:,.0f} results/s")
            dt2, out = timed("store", "copy", "sqlite:" + src, pg.url())
            print(f"the same copy again (nothing new): {dt2:.2f} s")
            dt3, out = timed("store", "copy", pg.url(), "sqlite:" + back, "--batch", batch)
            print(f"store copy, {n} results PostgreSQL -> SQLite (batch {batch}): {dt3:.1f} s,"
                  f" {n / dt3:,.0f} results/s")
        finally:
            pg.close()


if __name__ == "__main__":
    main()
