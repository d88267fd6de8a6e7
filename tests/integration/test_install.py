"""test_install.py - `make install` (PREFIX, DESTDIR) and the systemd units it installs.

What lands where, with which modes and with the paths filled in; a second install keeps the
operator's environment file; uninstall takes the rest away. Every unit passes
`systemd-analyze verify` (offline: no systemd runs here) with no warning at all, and a unit with a
misspelt key does not; the hardening every unit must have is there, and CAP_NET_RAW only where the
ping needs it (the monitor).
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, TestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNITS = sorted(u for u in os.listdir(os.path.join(ROOT, "deploy", "systemd"))
               if u.endswith(".service"))


def make_install(*args, target="install"):
    """Runs make TARGET with the binary under test (no rebuild: -o build)."""
    build = os.path.dirname(os.path.abspath(BIN))
    p = subprocess.run(["make", "-s", "-o", "build", target, f"BUILD={build}", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"make {target} {args}: {p.returncode}: {p.stderr[-2000:]}")
    return p


def read(path):
    with open(path) as f:
        return f.read()


def tree(top):
    """Every file under top, relative, with its mode."""
    out = {}
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, top)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


class InstallTest(TestCase):
    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="dstmc-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def test_what_lands_where(self):
        make_install(f"DESTDIR={self.dest}", "PREFIX=/usr/local")
        files = tree(self.dest)
        docs = {f"usr/local/share/doc/dstmc/{d}" for d in
                ["README.md", "dstmc.txt"] + os.listdir(os.path.join(ROOT, "docs"))
                if d.endswith((".md", ".txt"))}
        want = ({"usr/local/bin/dstmc", "etc/dstmc/dstmc.env"} | docs |
                {f"usr/local/lib/systemd/system/{u}" for u in UNITS})
        self.assertEqual(set(files), want)
        self.assertIn("dstmc.service", UNITS)
        for svc in ("api", "web", "scheduler", "logger", "server", "monitor"):
            self.assertIn(f"dstmc-{svc}.service", UNITS)
        self.assertEqual(files["usr/local/bin/dstmc"], 0o755)
        self.assertEqual(files["etc/dstmc/dstmc.env"], 0o600)  # it may hold the token
        for u in UNITS:
            self.assertEqual(files[f"usr/local/lib/systemd/system/{u}"], 0o644)
            text = read(os.path.join(self.dest, "usr/local/lib/systemd/system", u))
            self.assertNotRegex(text, r"@[A-Z]+@", u)  # every @PLACEHOLDER@ filled in
            self.assertRegex(text, r"(?m)^ExecStart=/usr/local/bin/dstmc \w+$", u)
            self.assertIn("EnvironmentFile=-/etc/dstmc/dstmc.env", text, u)
        p = subprocess.run([os.path.join(self.dest, "usr/local/bin/dstmc"), "api", "--help"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertIn("STATE_DIRECTORY", p.stdout)
        help_txt = read(os.path.join(self.dest, "usr/local/share/doc/dstmc/dstmc.txt"))
        self.assertIn("usage: dstmc <service>", help_txt)

    def test_the_operators_env_file_is_kept_and_uninstall(self):
        env = os.path.join(self.dest, "etc/dstmc/dstmc.env")
        make_install(f"DESTDIR={self.dest}", "PREFIX=/usr")
        with open(env, "w") as f:
            f.write("DSTMC_LISTEN=0.0.0.0:9000\n")
        make_install(f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(read(env), "DSTMC_LISTEN=0.0.0.0:9000\n")
        self.assertTrue(os.path.exists(os.path.join(self.dest, "usr/lib/systemd/system/dstmc.service")))
        make_install(f"DESTDIR={self.dest}", "PREFIX=/usr", target="uninstall")
        self.assertEqual(set(tree(self.dest)), {"etc/dstmc/dstmc.env"})


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class UnitsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        # Installed for real under a temporary prefix, so that verify finds the binary the
        # units name (with DESTDIR the paths in them would not exist here).
        cls.top = tempfile.mkdtemp(prefix="dstmc-units-")
        make_install(f"PREFIX={cls.top}/usr", f"SYSCONFDIR={cls.top}/etc")
        cls.unitdir = os.path.join(cls.top, "usr/lib/systemd/system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.top, True)

    def verify(self, path):
        p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, (p.stdout + p.stderr).strip()

    def test_every_unit_verifies_without_a_word(self):
        for u in UNITS:
            rc, out = self.verify(os.path.join(self.unitdir, u))
            self.assertEqual((rc, out), (0, ""), u)

    def test_a_misspelt_key_is_caught(self):
        bad = os.path.join(self.top, "dstmc-bad.service")
        text = read(os.path.join(self.unitdir, "dstmc.service"))
        with open(bad, "w") as f:
            f.write(text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
        rc, out = self.verify(bad)
        self.assertIn("Unknown key 'ProtectSytem'", out)

    def test_hardening(self):
        for u in UNITS:
            text = read(os.path.join(self.unitdir, u))
            keys = dict(re.findall(r"(?m)^(\w+)=(.*)$", text))
            for k, v in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                         ("NoNewPrivileges", "yes"), ("ProtectHome", "yes"),
                         ("PrivateTmp", "yes")):
                self.assertEqual(keys.get(k), v, f"{u}: {k}")
            self.assertRegex(keys.get("StateDirectory", ""), r"^dstmc(-\w+)?$", u)
            caps = keys.get("CapabilityBoundingSet")
            self.assertEqual(caps, "CAP_NET_RAW" if u == "dstmc-monitor.service" else "", u)
            self.assertEqual(keys.get("AmbientCapabilities"), caps, u)
