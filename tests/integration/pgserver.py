"""pgserver.py - a private PostgreSQL for a test: initdb into a temp dir, a Unix socket there,
a free port; started and stopped by its pid.

The binaries: $DSTMC_PG_BIN, else the newest /usr/lib/postgresql/N/bin (Debian's postgresql,
which scripts/deps.sh installs); without them the test is skipped, saying why. Root cannot run
PostgreSQL: as root the server runs as the "postgres" user (else "nobody").
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import WAIT, free_port, wait_for


def pg_bin():
    env = os.environ.get("DSTMC_PG_BIN")
    if env:
        return env
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    dirs.sort(key=lambda d: int(d.split("/")[4]) if d.split("/")[4].isdigit() else 0)
    return dirs[-1] if dirs else None


class PgServer:
    """initdb (trust, no fsync) and `postgres` on a socket in a fresh /tmp directory only."""

    def __init__(self):
        self.bin = pg_bin()
        if not self.bin or not os.access(os.path.join(self.bin, "postgres"), os.X_OK):
            raise unittest.SkipTest("no PostgreSQL binaries (/usr/lib/postgresql/*/bin or "
                                    "$DSTMC_PG_BIN): run scripts/deps.sh")
        self.user = None
        if os.getuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
        self.dir = tempfile.mkdtemp(prefix="dstmc-pg-", dir="/tmp")
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.port = free_port()
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "dstmc", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self.start()

    def _popen(self, prog, *args, log):
        kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} \
            if self.user else {}
        with open(os.path.join(self.dir, log), "ab") as out:
            return subprocess.Popen([os.path.join(self.bin, prog), *args], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)

    def _run(self, prog, *args):
        p = self._popen(prog, *args, log=prog + ".log")
        if p.wait(timeout=4 * WAIT) != 0:
            raise AssertionError(f"{prog} failed: see {self.dir}/{prog}.log")

    def ready(self):
        """The postmaster says "ready" in line 8 of its pid file once it takes connections."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].startswith("ready")

    def start(self):
        """Starts the postmaster (the same port and data directory every time); waits until
        it is ready."""
        self.proc = self._popen("postgres", "-D", self.data, "-k", self.dir, "-p",
                                str(self.port), "-c", "listen_addresses=", "-c", "fsync=off",
                                log="postgres.log")
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"postgres exited: see {self.dir}/postgres.log")
            return self.ready()
        wait_for(up, 2 * WAIT, "postgres ready")

    def stop(self):
        """A fast shutdown by its pid (SIGINT: clients are cut off), SIGKILL past the
        deadline."""
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def url(self, db="postgres"):
        return f"postgresql:///{db}?host={self.dir}&port={self.port}&user=dstmc"

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
