"""test_toystore_up.py - `dstmc toystore up`: the whole toy store as supervised child processes.

up starts the catalog, the order replicas and the front end, each this binary again, and
prints the front end's URL; a child that dies is started again on its old port; SIGTERM stops
every child. Pids come from up's "started NAME (pid N)" lines, and are checked by /proc.
"""
import os
import re
import signal
import tempfile

from harness import WAIT, Client, Service, TestCase, run, wait_for

STARTED = re.compile(r"started (\S+) \(pid (\d+)\)")
URL = re.compile(r"^toy store: (http://\S+/)$")


def alive(pid):
    """Whether pid is a running process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


class Up:
    """`dstmc toystore up` on 127.0.0.1:0 over a data directory."""

    def __init__(self, data_dir, *extra):
        self.svc = Service("toystore", "up", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                           "--restock-interval", "0", *extra)
        try:
            self.url = URL.match(self.svc.wait_line(URL, stream="stdout")).group(1)
        except BaseException:
            self.svc.stop(check=False)
            raise

    def pids(self):
        """The last pid up named for each child: {"catalog": pid, "order-1": pid, ...}."""
        out = {}
        for line in list(self.svc.lines):
            m = STARTED.search(line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def client(self):
        return Client(self.url.rstrip("/"))

    def stop(self, sig=signal.SIGTERM, check=True):
        return self.svc.stop(sig=sig, check=check)


class TestToystoreUp(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "data")  # up creates it
        self.addCleanup(self.tmp.cleanup)

    def start(self, *extra):
        up = Up(self.dir, *extra)
        self.addCleanup(lambda: up.svc.proc.poll() is None and up.stop(check=False))
        return up

    def buy(self, c, name="Tux", qty=1):
        r = c.post("/orders", json_body={"name": name, "quantity": qty})
        self.assertEqual(r.status, 200, r.body)
        return r.json()["data"]["order_number"]

    def test_up_serves_queries_and_buys_from_its_data_dir(self):
        up = self.start("--lab2")
        self.assertEqual(up.url, f"http://127.0.0.1:{up.svc.port}/")
        self.assertEqual(sorted(up.pids()),
                         ["catalog", "frontend", "order-1", "order-2", "order-3"])
        c = up.client()
        try:
            wait_for(lambda: c.get("/ping").json()["data"]["cache"]["events"],
                     what="the front end's event stream")
            r = c.get("/products/Tux")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"data": {"name": "Tux", "price": 25.99, "quantity": 80}})
            n = self.buy(c, "Tux", 3)
            self.assertEqual(c.get("/products/Tux").json()["data"]["quantity"], 77)
            r = c.get(f"/orders/{n}")
            self.assertEqual(r.json()["data"], {"number": n, "name": "Tux", "quantity": 3})
        finally:
            c.close()
        self.assertEqual(up.stop(), 0)
        files = sorted(os.listdir(self.dir))
        self.assertEqual(files, ["catalog.txt", "catalog.txt.journal", "orders-1.txt",
                                 "orders-2.txt", "orders-3.txt"])
        with open(os.path.join(self.dir, "catalog.txt")) as f:
            self.assertIn("Tux 25.99 77", f.read().splitlines())
        logs = ""
        for i in (1, 2, 3):
            with open(os.path.join(self.dir, f"orders-{i}.txt")) as f:
                logs += f.read()
        self.assertIn(f"{n},Tux,3,", logs)

    def test_a_killed_replica_is_restarted_and_buys_keep_working(self):
        up = self.start()
        c = up.client()
        try:
            first = self.buy(c)
            old = up.pids()
            os.kill(old["order-3"], signal.SIGKILL)
            wait_for(lambda: up.pids()["order-3"] != old["order-3"], what="order-3 restarted")
            new = up.pids()["order-3"]
            self.assertTrue(alive(new))
            self.assertFalse(alive(old["order-3"]))
            wait_for(lambda: sum(1 for x in list(up.svc.lines)
                                 if x.startswith("[order-3] listening on http://127.0.0.1:")) == 2,
                     what="the new order-3 listening")
            ports = {x.rsplit(":", 1)[1] for x in list(up.svc.lines)
                     if x.startswith("[order-3] listening on http://127.0.0.1:")}
            self.assertEqual(len(ports), 1, "order-3 came back on another port")
            # the others were not touched
            for name in ("catalog", "order-1", "order-2", "frontend"):
                self.assertEqual(up.pids()[name], old[name])
            numbers = [self.buy(c) for _ in range(5)]
            self.assertEqual(len(set(numbers + [first])), 6)
            for n in numbers:
                self.assertEqual(c.get(f"/orders/{n}").status, 200)
            # the catalog too: restarted, and the stock it had on disk still there
            stock = c.get("/products/Tux").json()["data"]["quantity"]
            os.kill(old["catalog"], signal.SIGKILL)
            wait_for(lambda: up.pids()["catalog"] != old["catalog"], what="catalog restarted")

            def answers():
                r = c.get("/products/Tux")
                return r.status == 200 and r.json()["data"]["quantity"] == stock
            wait_for(answers, what="queries answered again after the catalog's restart")
            self.buy(c)
        finally:
            c.close()
        self.assertEqual(up.stop(), 0)

    def test_sigterm_stops_every_child(self):
        up = self.start("--replicas", "2")
        pids = up.pids()
        self.assertEqual(sorted(pids), ["catalog", "frontend", "order-1", "order-2"])
        for pid in pids.values():
            self.assertTrue(alive(pid))
        self.assertEqual(up.stop(), 0)
        for name, pid in pids.items():
            self.assertFalse(alive(pid), f"{name} (pid {pid}) still runs after up stopped")
        self.assertTrue(any("stopping (signal 15)" in x for x in up.svc.lines))

    def test_sigint_stops_every_child_and_only_up_gets_it(self):
        up = self.start("--replicas", "1")
        pids = up.pids()
        pgid = os.getpgid(up.svc.proc.pid)
        for name, pid in pids.items():  # each child in a group of its own: a Ctrl-C reaches up
            self.assertEqual(os.getpgid(pid), pid, name)
            self.assertNotEqual(os.getpgid(pid), pgid, name)
        self.assertEqual(up.stop(sig=signal.SIGINT, check=False), 0)
        for name, pid in pids.items():
            self.assertFalse(alive(pid), f"{name} (pid {pid}) still runs after up stopped")
        self.assertFalse([x for x in up.svc.lines if "Sanitizer" in x or "runtime error:" in x])

    def test_kill_9_of_up_takes_its_children_along(self):
        up = self.start("--replicas", "1")
        pids = up.pids()
        self.assertEqual(len(pids), 3)
        up.stop(sig=signal.SIGKILL, check=False)
        for name, pid in pids.items():
            wait_for(lambda: not alive(pid), what=f"{name} (pid {pid}) gone after up's kill -9")

    def test_help_and_check_config(self):
        rc, out, _ = run("toystore", "up", "--help")
        self.assertEqual(rc, 0)
        for opt in ("--listen", "--data-dir", "--replicas", "lab2", "--restock-interval",
                    "--cache"):
            self.assertIn(opt, out)
        rc, out, err = run("toystore", "up", "--check-config", "--listen", "127.0.0.1:0",
                           "--data-dir", self.dir)
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("configuration OK", out)
        self.assertFalse(os.path.exists(self.dir), "--check-config created the data dir")
        for bad in (["--replicas", "0"], ["--replicas", "6"], ["--cache", "maybe"],
                    ["--listen", "nohost"], ["--restock-interval", "-1"]):
            rc, _, err = run("toystore", "up", "--check-config", "--data-dir", self.dir, *bad)
            self.assertEqual(rc, 2, bad)
            self.assertIn(bad[0], err)

    def test_a_corrupted_catalog_stops_the_start_naming_the_line(self):
        os.mkdir(self.dir)
        path = os.path.join(self.dir, "catalog.txt")
        text = "Tux 25.99 80\nWhale x 94\n"
        with open(path, "w") as f:
            f.write(text)
        for args in (["--check-config"], []):
            rc, out, err = run("toystore", "up", "--listen", "127.0.0.1:0", "--data-dir",
                               self.dir, *args, timeout=WAIT)
            self.assertEqual(rc, 2, err)
            self.assertIn("catalog.txt:2", err)
            self.assertNotIn("started", err)  # no child was started
        with open(path) as f:
            self.assertEqual(f.read(), text)
        self.assertEqual(sorted(os.listdir(self.dir)), ["catalog.txt"])


if __name__ == "__main__":
    import unittest
    unittest.main()
