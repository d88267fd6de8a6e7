"""test_config.py - `dstmc <service> --check-config` checks what start checks, for every service.

Good configurations print the one OK line and start nothing; every bad value (cron, listen
address, URL, store, queue, target, path, two listeners on one port, a port in use) exits 2 with
one error naming the option (and its environment twin when the value came from there); a start
on a port in use exits 2 at once with the same message. No fixed port is ever bound: listeners
use port 0, and a port "in use" is one this test holds on 127.0.0.1.
"""
import os
import re
import socket
import subprocess
import tempfile

from harness import BIN, TestCase, run

LO0 = "127.0.0.1:0"

# Per service: arguments of a good configuration that listens on free ports only, and its
# listening options (option, "off" allowed) with what the good configuration gives them.
GOOD = {
    "up": ["--db", "sqlite::memory:", "--listen", LO0, "--server-http", LO0,
           "--server-iperf3", LO0],
    "api": ["--db", "sqlite::memory:", "--listen", LO0],
    "web": ["--listen", LO0],
    "logger": ["--once", "--target", "dummy:", "--api", "http://127.0.0.1:1"],
    "scheduler": ["--schedule", "*/5 * * * * dummy:"],
    "run": ["--target", "dummy:"],
    "server": ["--http", LO0, "--ookla", LO0, "--iperf3", LO0],
    "monitor": ["--backend", "http://127.0.0.1:1", "--listen", LO0],
    "machine": ["--listen", LO0],
}
LISTENERS = {
    "up": [("listen", False), ("server-http", True), ("server-ookla", True),
           ("server-iperf3", True)],
    "api": [("listen", False)],
    "web": [("listen", False)],
    "server": [("http", True), ("ookla", True), ("iperf3", True)],
    "monitor": [("listen", False)],
    "machine": [("listen", False)],
}


def with_opt(service, opt, value):
    """The good configuration of service with --opt set to value (replaced or added)."""
    args = list(GOOD[service])
    if f"--{opt}" in args:
        args[args.index(f"--{opt}") + 1] = value
    else:
        args += [f"--{opt}", value]
    return args


def check(service, *args, env=None):
    return run(service, *args, "--check-config", env=env)


class HeldPort:
    """A socket listening on 127.0.0.1 (port 0 unless given): the port in use."""

    def __init__(self, port=0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


class GoodConfigTest(TestCase):
    def test_every_service_says_ok_and_starts_nothing(self):
        for service, args in GOOD.items():
            with self.subTest(service=service):
                code, out, err = check(service, *args)
                self.assertEqual((code, out, err),
                                 (0, f"dstmc {service}: configuration OK\n", ""))

    def test_nothing_is_created(self):
        with tempfile.TemporaryDirectory() as d:
            db, outbox = os.path.join(d, "x.db"), os.path.join(d, "outbox")
            code, _, err = check("api", "--db", f"sqlite:{db}", "--listen", LO0)
            self.assertEqual(code, 0, err)
            code, _, err = check("logger", "--queue", "redis://127.0.0.1:1", "--outbox", outbox)
            self.assertEqual(code, 0, err)
            self.assertEqual(os.listdir(d), [])

    def test_off_listeners_are_left_out(self):
        code, _, err = check("server", "--http", LO0, "--ookla", "off", "--iperf3", "off")
        self.assertEqual(code, 0, err)
        code, _, err = check("up", *with_opt("up", "server-http", "off"))
        self.assertEqual(code, 0, err)


class BadValueTest(TestCase):
    def assertBad(self, service, args, *needles, env=None):
        code, out, err = check(service, *args, env=env)
        self.assertEqual(code, 2, (service, args, out, err))
        self.assertEqual(out, "", (service, args))
        self.assertEqual(len(err.splitlines()), 1, err)  # one error line, nothing else
        self.assertTrue(err.startswith(f"dstmc {service}: "), err)
        for n in needles:
            self.assertIn(n, err, (service, args))
        return err

    def test_cron(self):
        for service in ("scheduler", "up"):
            for spec, why in (("61 * * * *", "minute: '61' is out of 0-59"),
                              ("0 24 * * *", "hour: '24' is out of 0-23"),
                              ("0 0 32 * *", "day-of-month: '32' is out of 1-31"),
                              ("0 0 * 13 *", "month: '13' is out of 1-12"),
                              ("0 0 * * 8", "day-of-week: '8' is out of 0-7"),
                              ("0 0 30 2 *", "never fires"),
                              ("@sometimes", "@sometimes"),
                              ("* * * *", "--schedule"),
                              ("*/5 * * * * gopher://x", "gopher://x")):
                with self.subTest(service=service, spec=spec):
                    self.assertBad(service, with_opt(service, "schedule", spec),
                                   f"--schedule: '{spec}': ", why)
        # a value from the environment names its twin
        self.assertBad("scheduler", [], "--schedule (from DSTMC_SCHEDULE): '61 * * * *'",
                       env={"DSTMC_SCHEDULE": "61 * * * *"})

    def test_listen_addresses(self):
        for service, listeners in LISTENERS.items():
            for opt, _ in listeners:
                for bad, why in (("127.0.0.1:99999", "port must be a number from 0 to 65535"),
                                 ("localhost", "the port is missing"),
                                 ("::1:80", "put IPv6 in brackets"),
                                 ("a" * 70 + ".invalid:80", "cannot resolve")):
                    with self.subTest(service=service, opt=opt, value=bad):
                        self.assertBad(service, with_opt(service, opt, bad), f"--{opt}", why)
        self.assertBad("machine", [], "--listen (from DSTMC_LISTEN): 'x'",
                       env={"DSTMC_LISTEN": "x"})
        self.assertBad("machine", ["--listen", "192.0.2.1:8"],
                       "--listen: 192.0.2.1 is not an address of this machine")

    def test_urls_of_other_services(self):
        for service, opt in (("logger", "api"), ("run", "api"), ("scheduler", "api"),
                             ("web", "api"), ("server", "public-url"), ("monitor", "backend")):
            for bad, why in (("localhost:8080", "http"), ("ftp://h/", "http"),
                             ("http://h:0/", "port"), ("http://h:65536", "port"),
                             ("http://h:x/", "port")):
                args = with_opt(service, opt, bad)
                if opt == "backend":
                    args = ["--listen", LO0, "--backend", bad]
                with self.subTest(service=service, value=bad):
                    self.assertBad(service, args, f"--{opt}", why)
        self.assertBad("logger", with_opt("logger", "api", ""), "--api: a URL is needed")
        self.assertBad("logger", [], "--api (from speedTestApiUrl): 'nope'",
                       env={"speedTestApiUrl": "nope"})
        for ok in ("", "/backend", "https://api.example.net/x"):  # web: also a path, or none
            code, _, err = check("web", *with_opt("web", "api", ok))
            self.assertEqual(code, 0, (ok, err))

    def test_stores_queues_targets_and_paths(self):
        for service, args, needles in (
                ("api", with_opt("api", "db", "mysql://x"), ("--db", "unknown store URL")),
                ("up", with_opt("up", "db", "sqlite:/nonexistent/x.db"),
                 ("--db", "/nonexistent: No such file or directory")),
                ("api", with_opt("api", "db", "sqlite:/"), ("--db", "'/' is not a file")),
                ("api", with_opt("api", "queue", "kafka://x"), ("--queue", "kafka://x")),
                ("logger", with_opt("logger", "queue", "nope"), ("--queue", "nope")),
                ("scheduler", with_opt("scheduler", "queue", "redis://h:99999"), ("--queue",)),
                ("run", with_opt("run", "target", "gopher://x"), ("--target", "gopher://x")),
                ("logger", with_opt("logger", "target", "iperf3://h?streams=0"), ("--target",)),
                ("up", with_opt("up", "target", "ookla://"), ("--target",)),
                ("logger", with_opt("logger", "outbox", "/nonexistent/outbox"),
                 ("--outbox", "/nonexistent: No such file or directory")),
                ("logger", with_opt("logger", "outbox", "/dev/null"),
                 ("--outbox", "'/dev/null' is not a directory")),
                ("scheduler", with_opt("scheduler", "enable-file", "/nonexistent/on"),
                 ("--enable-file", "/nonexistent: No such file or directory")),
                ("scheduler", with_opt("scheduler", "enable-file", "/"),
                 ("--enable-file", "is a directory"))):
            with self.subTest(service=service, args=args):
                self.assertBad(service, args, *needles)

    def test_listeners_on_one_port_collide(self):
        p = 18123  # never bound: a collision is found before any bind
        for service, a, b, va, vb in (
                ("up", "listen", "server-http", f"127.0.0.1:{p}", f"0.0.0.0:{p}"),
                ("up", "server-http", "server-iperf3", f"127.0.0.1:{p}", f"127.0.0.1:{p}"),
                ("up", "listen", "server-ookla", f"[::]:{p}", f"127.0.0.1:{p}"),
                ("server", "http", "iperf3", f":{p}", f"127.0.0.1:{p}"),
                ("server", "http", "ookla", f"127.0.0.1:{p}", f"127.0.0.1:{p}")):
            args = with_opt(service, a, va)
            args += [f"--{b}", vb]
            with self.subTest(service=service, a=a, b=b):
                self.assertBad(service, args,
                               f"--{b}: port {p} is also taken by --{a}: {va} and {vb} overlap")
        # the same port on two addresses of one family is no collision
        code, _, err = check("server", "--http", "127.0.0.1:0", "--ookla", "off", "--iperf3",
                             "off")
        self.assertEqual(code, 0, err)


class PortInUseTest(TestCase):
    def expected(self, service, opt, off_ok, port, env=False):
        key = f"--{opt} (from DSTMC_{opt.upper().replace('-', '_')})" if env else f"--{opt}"
        return (f"dstmc {service}: {key}: port {port} on 127.0.0.1 is in use: "
                f"use --{opt}{' (or off)' if off_ok else ''}\n")

    def test_check_config_reports_every_listener(self):
        with HeldPort() as held:
            for service, listeners in LISTENERS.items():
                for opt, off_ok in listeners:
                    with self.subTest(service=service, opt=opt):
                        code, out, err = check(service,
                                               *with_opt(service, opt, f"127.0.0.1:{held.port}"))
                        self.assertEqual((code, out, err),
                                         (2, "", self.expected(service, opt, off_ok, held.port)))
            # the wildcard address takes the port on 127.0.0.1 too
            code, _, err = check("machine", "--listen", f"0.0.0.0:{held.port}")
            self.assertEqual((code, err), (2, f"dstmc machine: --listen: port {held.port} is in "
                                              "use: use --listen\n"))
            # from the environment
            code, _, err = check("web", env={"DSTMC_LISTEN": f"127.0.0.1:{held.port}"})
            self.assertEqual((code, err), (2, self.expected("web", "listen", False, held.port,
                                                            env=True)))

    def test_a_default_port_names_its_service(self):
        try:
            held = HeldPort(3001)  # dstmc machine's default port
        except OSError:
            held = None  # already in use here: the message is the same
        try:
            code, _, err = check("machine", "--listen", "127.0.0.1:3001")
            self.assertEqual((code, err), (2, "dstmc machine: --listen: port 3001 on 127.0.0.1 is "
                                              "in use: another dstmc machine? use --listen\n"))
        finally:
            if held:
                held.sock.close()

    def test_start_exits_at_once_with_the_same_message(self):
        with HeldPort() as held:
            for service, listeners in LISTENERS.items():
                opt, off_ok = listeners[0]
                args = with_opt(service, opt, f"127.0.0.1:{held.port}")
                with self.subTest(service=service):
                    # a hang would run into the timeout; the check comes before anything starts
                    p = subprocess.run([BIN, service, *args], capture_output=True, timeout=60,
                                       stdin=subprocess.DEVNULL)
                    self.assertEqual((p.returncode, p.stdout.decode(), p.stderr.decode()),
                                     (2, "", self.expected(service, opt, off_ok, held.port)))


class DefaultPortsTest(TestCase):
    DEFAULT = re.compile(r"^  --(\S+) HOST:PORT .*\(default: (?:[^:)]*|\[[^\]]*\]):(\d+)\)$")

    def defaults(self, service):
        p = subprocess.run([BIN, service, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        return {opt: int(port) for opt, port in
                (m.groups() for m in map(self.DEFAULT.match, p.stdout.splitlines()) if m)}

    def test_no_two_services_share_a_default_port(self):
        ports = {s: self.defaults(s) for s in LISTENERS}
        self.assertEqual(ports["monitor"], {"listen": 3000})  # the original's port
        self.assertEqual(set(ports["up"]), {"listen", "server-http", "server-iperf3"})  # ookla off
        for service, listeners in LISTENERS.items():
            self.assertLessEqual(set(ports[service]), {o for o, _ in listeners}, service)
        owner = {}
        for service in ("api", "web", "server", "monitor", "machine"):
            for opt, port in ports[service].items():
                self.assertNotIn(port, owner, f"{service} --{opt} and {owner.get(port)}")
                owner[port] = f"{service} --{opt}"
        # up is api + web UI + test server in one process: on their ports, instead of them
        self.assertEqual(ports["up"]["listen"], ports["api"]["listen"])
        self.assertEqual(ports["up"]["server-http"], ports["server"]["http"])
        self.assertEqual(ports["up"]["server-iperf3"], ports["server"]["iperf3"])
