"""test_store_schema.py - a store written by a newer dstmc (its schema version above this
build's) on SQLite and on PostgreSQL: `dstmc api` refuses to start, the message names both
versions, and the store is left exactly as it was."""
import os
import shutil
import sqlite3
import subprocess
import tempfile

from harness import TestCase, api, run
from pgserver import PgServer


class NewerSchemaTest(TestCase):
    def made_by_api(self, url):
        """A store as this build leaves it: `dstmc api` started once on it and stopped."""
        svc = api("--db", url)
        svc.stop()

    def refused(self, url, newer, known):
        code, out, err = run("api", "--db", url, "--listen", "127.0.0.1:0", timeout=120)
        self.assertNotEqual(code, 0, err)
        self.assertNotIn("listening on", err)
        self.assertRegex(err, rf"schema version {newer}, newer than this dstmc knows "
                              rf"\({known}\); refusing to open it \(upgrade dstmc\)")

    def test_sqlite(self):
        tmp = tempfile.mkdtemp(prefix="dstmc-schema-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "x.db")
        self.made_by_api("sqlite:" + path)
        db = sqlite3.connect(path)
        known = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        with db:
            db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (known + 1,))
        before = list(db.iterdump())
        db.close()

        self.refused("sqlite:" + path, known + 1, known)
        db = sqlite3.connect(path)
        self.assertEqual(list(db.iterdump()), before)
        db.close()

    def test_postgresql(self):
        pg = PgServer()
        self.addCleanup(pg.close)
        self.made_by_api(pg.url())

        def psql(*args):
            r = subprocess.run([os.path.join(pg.bin, args[0]), "-h", pg.dir, "-p", str(pg.port),
                                "-U", "dstmc", *args[1:], "postgres"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        known = int(psql("psql", "-XAtc", "SELECT max(version) FROM schema_migrations"))
        psql("psql", "-Xqc", f"INSERT INTO schema_migrations VALUES ({known + 1}, 0)")

        def dump():  # without the random key of pg_dump's \restrict lines
            return [x for x in psql("pg_dump", "--no-owner").splitlines()
                    if not x.startswith(("\\restrict", "\\unrestrict"))]

        before = dump()
        self.assertIn(f"{known + 1}\t0", before)  # the COPY of schema_migrations
        self.refused(pg.url(), known + 1, known)
        self.assertEqual(dump(), before)
