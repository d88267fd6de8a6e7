"""test_store_full.py - a full disk under `dstmc api`: SQLite on a small tmpfs the test mounts
itself (root only: skipped, saying why, when mounting is refused), PostgreSQL answering SQLSTATE
53100 ("could not extend file"). Ingest answers 507 naming the cause, nothing is half-written,
/readyz says so, and once space is freed ingest works again without a restart."""
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest
import uuid

from harness import TOKEN, Client, TestCase, api, run, wait_for
from pgserver import PgServer

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
MAX_POSTS = 3000  # a 2 MiB disk is full long before: each post adds 20 rows


def result(i=0):
    return {"id": str(uuid.uuid4()), "time": T0 + i * 60_000, "status": "ok", "probe": "home",
            "engine": "dummy", "target": "dummy:", "download_bps": 100e6 + i,
            "upload_bps": 20e6, "ping_ms": 10.0, "jitter_ms": 1.0,
            "location": "x" * 200}  # bigger rows: the disk fills sooner


def fill(path):
    """Writes path until the file system has no byte left (ENOSPC)."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            for _ in range(1 << 16):
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break


class SqliteFullTest(TestCase):
    def setUp(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("mounting a small tmpfs needs root")
        self.dir = tempfile.mkdtemp(prefix="dstmc-full-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", self.dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise unittest.SkipTest(f"cannot mount a tmpfs ({r.stderr.strip()})")
        self.addCleanup(subprocess.run, ["umount", self.dir], capture_output=True)
        self.db = os.path.join(self.dir, "x.db")
        self.svc = api("--db", "sqlite:" + self.db)
        self.addCleanup(self.svc.stop)
        self.c = Client(self.svc, token=TOKEN)
        self.addCleanup(self.c.close)

    def stored_ids(self):
        """The ids in the file, read beside the API; and the file's integrity check."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            ids = {row[0] for row in db.execute("SELECT id FROM results")}
            check = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
        return ids, check

    def test_full_disk_507_nothing_half_written_then_back(self):
        accepted = [result(i) for i in range(3)]
        self.assertEqual(self.c.post("/api/v1/results", json_body=accepted).status, 201)
        filler = os.path.join(self.dir, "filler")
        fill(filler)

        refused = None
        for n in range(MAX_POSTS):  # the WAL's slack goes first, then a write needs a page
            batch = [result(100 + 20 * n + k) for k in range(20)]
            r = self.c.post("/api/v1/results", json_body=batch)
            if r.status == 201:
                accepted += batch
                continue
            refused = (r, batch)
            break
        self.assertIsNotNone(refused, f"no refusal in {MAX_POSTS} posts on a full disk")
        r, batch = refused
        self.assertEqual(r.status, 507, r.text)
        self.assertEqual(r.json()["error"]["message"], "store: disk full")
        one = result(99_999)
        r = self.c.post("/api/v1/results", json_body=one)  # a probe's single result too
        self.assertEqual(r.status, 507, r.text)
        r = self.c.get("/readyz")
        self.assertEqual((r.status, r.json()["store"]), (503, "disk full"), r.text)
        self.svc.wait_line("database or disk is full")  # read by a thread: wait, not race
        # reads still work, and the file holds exactly the accepted rows, intact
        self.assertEqual(self.c.get("/api/v1/results?limit=1").status, 200)
        ids, check = self.stored_ids()
        self.assertEqual(ids, {x["id"] for x in accepted})
        self.assertEqual(check, [("ok",)])

        os.unlink(filler)  # space again: no restart
        wait_for(lambda: self.c.get("/readyz").status == 200, what="/readyz ready again")
        for x in (batch, one):  # what a probe's outbox sends again
            r = self.c.post("/api/v1/results", json_body=x)
            self.assertEqual(r.status, 201, r.text)
        self.assertEqual(self.svc.proc.poll(), None)
        self.svc.stop()
        ids, check = self.stored_ids()
        self.assertEqual(ids, {x["id"] for x in accepted + batch + [one]})
        self.assertEqual(check, [("ok",)])


DISK_FULL = """
CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file "base/5/16384": No space left on device'
    USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION disk_full();
"""


class PgFullTest(TestCase):
    """PostgreSQL's own full disk cannot be made safely (its WAL would PANIC the server): a
    trigger raises what the server raises then, SQLSTATE 53100 with its message."""

    def setUp(self):
        self.pg = PgServer()
        self.addCleanup(self.pg.close)
        self.svc = api("--db", self.pg.url())
        self.addCleanup(self.svc.stop)
        self.c = Client(self.svc, token=TOKEN)
        self.addCleanup(self.c.close)

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.pg.bin, "psql"), "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-h", self.pg.dir, "-p", str(self.pg.port), "-U",
                            "dstmc", "-d", "postgres", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_disk_full_507_then_back(self):
        before = [result(i) for i in range(3)]
        self.assertEqual(self.c.post("/api/v1/results", json_body=before).status, 201)
        self.psql(DISK_FULL)
        for body in ([result(10), result(11)], result(12)):  # a batch and a single result
            r = self.c.post("/api/v1/results", json_body=body)
            self.assertEqual(r.status, 507, r.text)
            self.assertEqual(r.json()["error"]["message"], "store: disk full")
        # the server's message is in the log (read by a thread: wait for it, do not race it)
        self.svc.wait_line("could not extend file")
        # a probe keeps what was refused so in its outbox (507 is worth a retry)
        box = os.path.join(self.pg.dir, "outbox")
        os.mkdir(box)
        code, out, err = run("logger", "--once", "--api", self.svc.url, "--target", "dummy:",
                           "--agent", "attic", "--outbox", box)
        self.assertNotEqual(code, 0, err)
        self.assertIn("disk full", out + err)
        self.assertEqual(len([f for f in os.listdir(box) if f.endswith(".json")]), 1, err)
        self.assertEqual(self.psql("SELECT count(*) FROM results").split(), ["count", "-------",
                                                                              "3", "(1", "row)"])
        self.psql("DROP TRIGGER disk_full ON results")
        after = result(13)
        r = self.c.post("/api/v1/results", json_body=after)
        self.assertEqual(r.status, 201, r.text)
        got = self.c.get("/api/v1/results?limit=100").json()["results"]
        self.assertEqual({x["id"] for x in got}, {x["id"] for x in before + [after]})


if __name__ == "__main__":
    unittest.main()
