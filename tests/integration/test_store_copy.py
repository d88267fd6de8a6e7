"""test_store_copy.py - `dstmc store copy|export|import|backup` on real files and a private
PostgreSQL: SQLite -> PostgreSQL -> SQLite row for row, a copy killed midway and run again,
export -> import, and a backup taken while the API takes results."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import uuid

from harness import TOKEN, Client, Service, TestCase, api, run, wait_for
from pgserver import PgServer

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
SKIP = ("seq", "received_ms")  # the target numbers its rows and notes when it got them


def make_store(path, n, seed=0):
    """A SQLite store made by dstmc (a token in it), with n results of every kind of column
    written behind its back, and two settings. Returns the token's text."""
    code, out, err = run("token", "new", "--db", "sqlite:" + path, "--name", "probe attic",
                         "--scope", "ingest")
    assert code == 0, err
    db = sqlite3.connect(path)
    rows = []
    for i in range(n):
        k = seed + i
        rows.append((str(uuid.UUID(int=(seed << 64) + i + 1)), T0 + k * 60_000,
                     "failed" if k % 5 == 4 else "ok",
                     'refused "x", \\ ünï' if k % 5 == 4 else None,
                     "attic" if k % 2 else "cellar", None if k % 3 else "home",
                     None if k % 7 == 0 else 1e8 / 3 + k, 2.5e7 + k, 0.1 + k % 40,
                     None if k % 4 else 123456789012 + k, k % 3 == 0, k % 4 == 1, T0))
    db.executemany("INSERT INTO results (id, time_ms, status, error, probe, location,"
                   " download_bps, upload_bps, ping_ms, bytes_down, demo, excluded, received_ms)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("INSERT INTO settings (key, value, updated_ms) VALUES ('schedules', ?, 5)",
               (json.dumps({"paused": False, "schedules": [{"cron": "*/5 * * * *"}]}),))
    db.execute("INSERT INTO settings (key, value, updated_ms)"
               " VALUES ('thresholds', '{\"down\":1e8}', 6)")
    db.commit()
    db.close()
    return out.strip()


def sqlite_rows(path):
    """Every result (but SKIP) in seq order, the settings (not the copy's own; values as JSON:
    an import writes them anew), the credentials."""
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(results)") if r[1] not in SKIP]
    rows = db.execute("SELECT %s FROM results ORDER BY seq" % ", ".join(cols)).fetchall()
    settings = [(k, json.loads(v), t) for k, v, t in
                db.execute("SELECT key, value, updated_ms FROM settings"
                           " WHERE key NOT LIKE 'dstmc.copy.%' ORDER BY key")]
    creds = db.execute("SELECT * FROM credentials ORDER BY id").fetchall()
    db.close()
    return rows, settings, creds


def psql(pg, sql):
    """One query on the test's PostgreSQL; its rows as lists of text."""
    p = subprocess.run([os.path.join(pg.bin, "psql"), "-h", pg.dir, "-p", str(pg.port), "-U",
                        "dstmc", "-d", "postgres", "-XAtq", "-F", "\t", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [line.split("\t") for line in p.stdout.splitlines()]


def summary(out):
    """{kind: (copied, existing)} from a copy's or an import's summary."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in
            re.finditer(r"^\s+(\w+)\s+(\d+) \w+, (\d+) already there$", out, re.M)}


class StoreCopyTest(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dstmc-copy-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def path(self, name):
        return os.path.join(self.dir, name)

    def pg(self):
        pg = PgServer()
        self.addCleanup(pg.close)
        return pg

    def test_sqlite_to_postgresql_to_sqlite_row_for_row(self):
        a, c = self.path("a.db"), self.path("c.db")
        make_store(a, 3000)
        pg = self.pg()
        code, out, err = run("store", "copy", "sqlite:" + a, pg.url(), "--batch", "700")
        self.assertEqual(code, 0, err)
        self.assertEqual(summary(out), {"setting": (2, 0), "credential": (1, 0),
                                        "result": (3000, 0), "rollup": (0, 0)}, out)
        self.assertEqual(psql(pg, "SELECT count(*), count(DISTINCT id), sum(demo),"
                                  " sum(excluded) FROM results"),
                         [["3000", "3000", "1000", "750"]])
        code, out, err = run("store", "copy", pg.url(), "sqlite:" + c)
        self.assertEqual(code, 0, err)
        self.assertEqual(sqlite_rows(c), sqlite_rows(a))  # every column of every row, in order

        code, out, err = run("store", "copy", "sqlite:" + a, pg.url())  # again: nothing new
        self.assertEqual(code, 0, err)
        self.assertIn("nothing new", out)
        self.assertEqual(summary(out), {"setting": (0, 2), "credential": (0, 1),
                                        "result": (0, 0), "rollup": (0, 0)}, out)
        # onto itself, under another name: refused, nothing written
        code, out, err = run("store", "copy", "sqlite:" + a,
                             "sqlite:" + os.path.join(self.dir, ".", "a.db"))
        self.assertEqual(code, 1)
        self.assertIn("one store under two names", err)

    def test_killed_midway_then_run_again(self):
        a = self.path("a.db")
        n = 200_000
        make_store(a, n)
        pg = self.pg()
        svc = Service("store", "copy", "sqlite:" + a, pg.url(), "--batch", "1000", listen=False)
        self.addCleanup(svc.stop, check=False)
        line = svc.wait_line(r"result (\d+)/%d " % n, deadline=120)
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait()
        part = int(psql(pg, "SELECT count(*) FROM results")[0][0])
        self.assertGreater(part, 0, line)
        self.assertLess(part, n, "the copy ended before the kill: make the set larger")

        code, out, err = run("store", "copy", "sqlite:" + a, pg.url(), "--batch", "1000",
                             timeout=600)
        self.assertEqual(code, 0, err)
        copied, existing = summary(out)["result"]
        self.assertEqual(copied, n - part, out)
        self.assertLessEqual(existing, 1000, out)  # went on from the last batch's mark
        self.assertEqual(psql(pg, "SELECT count(*), count(DISTINCT id) FROM results"),
                         [[str(n), str(n)]])
        ids = {r[0] for r in sqlite3.connect(a).execute("SELECT id FROM results")}
        self.assertEqual({r[0] for r in psql(pg, "SELECT id FROM results")}, ids)

    def test_export_import_round_trip_and_a_bad_line(self):
        a, d, f = self.path("a.db"), self.path("d.db"), self.path("a.jsonl")
        make_store(a, 1234)
        code, out, err = run("store", "export", "--db", "sqlite:" + a, f)
        self.assertEqual(code, 0, err)
        with open(f) as fh:
            lines = [json.loads(x) for x in fh]
        self.assertEqual([x["kind"] for x in lines[:4]],
                         ["header", "setting", "setting", "credential"])
        self.assertEqual(lines[-1], {"kind": "end", "setting": 2, "credential": 1,
                                     "result": 1234, "rollup": 0})
        code, out, err = run("store", "export", "--db", "sqlite:" + a, f)
        self.assertEqual(code, 1)  # never over a file

        code, out, err = run("store", "import", "--db", "sqlite:" + d, f)
        self.assertEqual(code, 0, err)
        self.assertEqual(summary(out)["result"], (1234, 0), out)
        self.assertEqual(sqlite_rows(d), sqlite_rows(a))
        code, out, err = run("store", "import", "--db", "sqlite:" + d, f)  # again
        self.assertEqual(code, 0, err)
        self.assertIn("nothing new", out)
        self.assertEqual(summary(out)["result"], (0, 1234), out)

        pg = self.pg()  # the same file into PostgreSQL, from stdin
        with open(f, "rb") as fh:
            p = subprocess.run([os.environ.get("DSTMC_BIN") or "../../build/dstmc", "store",
                                "import", "--db", pg.url(), "-"], stdin=fh,
                               capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(psql(pg, "SELECT count(*) FROM results"), [["1234"]])

        bad = self.path("bad.jsonl")
        good = [json.dumps({"kind": "result", "id": str(uuid.uuid4()), "probe": "p",
                            "time": T0 + i}) for i in range(3)]
        with open(bad, "w") as fh:
            fh.write("\n".join([good[0], good[1], '{"kind":"result","probe":"p"}', good[2]]))
        e = self.path("e.db")
        code, out, err = run("store", "import", "--db", "sqlite:" + e, bad)
        self.assertEqual(code, 1)
        self.assertIn(bad + ":3: id:", err)
        got = {r[0] for r in sqlite3.connect(e).execute("SELECT id FROM results")}
        self.assertEqual(got, {json.loads(g)["id"] for g in good[:2]})

    def test_backup_while_the_api_takes_results(self):
        db, dest = self.path("live.db"), self.path("backup.db")
        svc = api("--db", "sqlite:" + db)
        self.addCleanup(svc.stop)
        acked, stop = [], threading.Event()

        def writer():
            c = Client(svc, token=TOKEN)
            try:
                for i in range(100_000):  # bounded; stopped once the backup is done
                    if stop.is_set():
                        break
                    r = {"id": str(uuid.uuid4()), "time": T0 + i, "status": "ok",
                         "probe": "w", "download_bps": 1e8}
                    if c.post("/api/v1/results", json_body=r).status == 201:
                        acked.append(r["id"])
            finally:
                c.close()
        t = threading.Thread(target=writer)
        t.start()
        self.addCleanup(t.join, 60)
        self.addCleanup(stop.set)
        wait_for(lambda: len(acked) >= 200, what="200 results acknowledged")
        before = set(acked)
        code, out, err = run("store", "backup", "--db", "sqlite:" + db, dest)
        self.assertEqual(code, 0, err)
        during = len(acked)
        wait_for(lambda: len(acked) >= during + 50, what="more results after the backup")
        stop.set()
        t.join(60)

        b = sqlite3.connect(dest)
        self.assertEqual(b.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        have = {r[0] for r in b.execute("SELECT id FROM results")}
        b.close()
        self.assertLessEqual(before, have)  # every result acknowledged before it began
        self.assertLess(len(have), len(acked))  # and the API went on meanwhile
        code, out, err = run("store", "backup", "--db", "sqlite:" + db, dest)
        self.assertEqual(code, 1)
        self.assertIn("DEST exists", err)

    def test_backup_of_postgresql_points_to_pg_dump(self):
        pg = self.pg()
        code, out, err = run("store", "backup", "--db", pg.url(), self.path("x"))
        self.assertEqual(code, 1)
        self.assertIn("pg_dump", err)
        self.assertFalse(os.path.exists(self.path("x")))
