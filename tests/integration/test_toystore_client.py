"""test_toystore_client.py - `dstmc toystore client` (the toy store's client) against a fake front end.

The fake (toystore_fake.py) serves the handout's public API on 127.0.0.1, port 0, counts the TCP
connections it accepts and records every request, so each test checks what the client really
sent, on how many connections, and what it reports (--json) and exits with.
"""
import json
import os
import signal
import subprocess
import time
import unittest

from harness import BIN, WAIT
from toystore_fake import FakeFrontend


def run_client(fake, *args, rc=0, json_out=True):
    """Runs the client to its end against fake; checks its exit status; returns (summary, stderr)
    where summary is the parsed --json object (or the text with json_out=False)."""
    cmd = [BIN, "toystore", "client", "--frontend", fake.url, *args] + (["--json"] if json_out else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=4 * WAIT)
    bad = [x for x in p.stderr.splitlines() if "Sanitizer" in x or "runtime error:" in x]
    assert not bad, f"sanitizer report: {bad[:5]}"
    assert p.returncode == rc, f"{cmd} exited {p.returncode}, not {rc}: {p.stdout} {p.stderr}"
    return (json.loads(p.stdout) if json_out else p.stdout), p.stderr


class ClientModes(unittest.TestCase):
    def setUp(self):
        self.fake = FakeFrontend()
        self.addCleanup(self.fake.close)

    def test_session_mode_buys_and_checks_its_orders_on_one_connection(self):
        s, _ = run_client(self.fake, "--iterations", "40", "--seed", "1")
        gets = self.fake.paths("GET")
        posts = self.fake.paths("POST")
        lookups = [p for p in gets if p.startswith("/orders/")]
        self.assertEqual(s["query"]["count"], 40)
        self.assertEqual(s["query"]["ok"], 40)
        self.assertEqual(len(gets) - len(lookups), 40)
        self.assertEqual(s["buy"]["count"], len(posts))
        self.assertTrue(0 < len(posts) < 40, posts)  # p = 0.5 over 40 in-stock queries
        self.assertEqual(s["orders"]["made"], len(self.fake.orders))
        self.assertEqual(sorted(lookups), sorted(f"/orders/{n}" for n in
                                                 range(len(self.fake.orders))))
        self.assertEqual(s["check"]["ok"], len(self.fake.orders))
        self.assertEqual(s["orders"]["mismatched"], 0)
        self.assertEqual(self.fake.connections, 1)  # the whole session, checks included
        self.assertEqual(s["requests"], 40 + 2 * len(posts))
        self.assertGreater(s["rate"], 0)
        self.assertTrue(0 < s["load_s"] <= s["elapsed_s"], s)
        self.assertGreater(s["load_rate"], 0)
        self.assertEqual(s["toys"], ["Tux", "Whale", "Elephant", "Bird", "Risk", "Sand", "Jenga",
                                     "Uno", "Pinball", "Clue"])
        for kind in ("query", "buy", "check"):
            k = s[kind]
            self.assertTrue(0 < k["p50_ms"] <= k["p99_ms"] <= k["max_ms"], k)

    def test_p0_never_buys(self):
        s, _ = run_client(self.fake, "--iterations", "30", "--p", "0", "--seed", "2")
        self.assertEqual(self.fake.paths("POST"), [])
        self.assertEqual(s["buy"]["count"], 0)
        self.assertEqual(s["query"]["ok"], 30)
        self.assertIsNone(s["buy"]["p50_ms"])

    def test_p1_buys_after_every_query_in_stock_and_never_else(self):
        self.fake.stock = {"Tux": 100, "Gone": 0}
        s, _ = run_client(self.fake, "--iterations", "30", "--p", "1", "--toys", "Tux,Gone",
                          "--no-check", "--seed", "3")
        reqs = [(m, p, b) for (_, m, p, b) in self.fake.requests]
        queried = [p for (m, p, _) in reqs if m == "GET"]
        self.assertIn("/products/Tux", queried)
        self.assertIn("/products/Gone", queried)  # both were drawn: the check below bites
        for i, (m, p, _) in enumerate(reqs):
            if m != "GET":
                continue
            nxt = reqs[i + 1] if i + 1 < len(reqs) else None
            if p == "/products/Tux":
                self.assertEqual(nxt[:2], ("POST", "/orders"), reqs[i:i + 2])
                self.assertEqual(nxt[2], {"name": "Tux", "quantity": 1})
            else:
                self.assertTrue(nxt is None or nxt[0] == "GET", reqs[i:i + 2])
        self.assertEqual(s["buy"]["ok"], queried.count("/products/Tux"))
        self.assertEqual(s["check"]["count"], 0)  # --no-check

    def test_query_mode(self):
        s, _ = run_client(self.fake, "--mode", "query", "--toy", "Whale", "--iterations", "25")
        self.assertEqual(self.fake.paths(), ["/products/Whale"] * 25)
        self.assertEqual(s["query"]["ok"], 25)
        self.assertEqual(s["buy"]["count"] + s["check"]["count"], 0)
        self.assertEqual(self.fake.connections, 1)

    def test_buy_mode_with_checks(self):
        s, _ = run_client(self.fake, "--mode", "buy", "--toy", "Bird", "--iterations", "12",
                          "--buy-quantity", "2")
        bodies = [b for (_, m, _, b) in self.fake.requests if m == "POST"]
        self.assertEqual(bodies, [{"name": "Bird", "quantity": 2}] * 12)
        self.assertEqual(self.fake.stock["Bird"], 100 - 24)
        self.assertEqual(s["orders"]["made"], 12)
        self.assertEqual(s["check"]["ok"], 12)
        self.assertEqual(len([p for p in self.fake.paths("GET") if p.startswith("/orders/")]),
                         12)
        self.assertEqual(self.fake.connections, 1)

    def test_buy_quantity_range(self):
        run_client(self.fake, "--mode", "buy", "--iterations", "40", "--buy-quantity", "1-10",
                   "--seed", "4", "--no-check")
        qs = [b["quantity"] for (_, m, _, b) in self.fake.requests if m == "POST"]
        self.assertEqual(len(qs), 40)
        self.assertTrue(all(1 <= q <= 10 for q in qs), qs)
        self.assertGreater(len(set(qs)), 3, qs)

    def test_k_clients_k_connections(self):
        s, _ = run_client(self.fake, "--clients", "4", "--iterations", "15", "--seed", "5")
        self.assertEqual(self.fake.connections, 4)
        per_conn = {}
        for (c, m, p, _) in self.fake.requests:
            if m == "GET" and p.startswith("/products/"):
                per_conn[c] = per_conn.get(c, 0) + 1
        self.assertEqual(sorted(per_conn.values()), [15] * 4)
        self.assertEqual(s["query"]["ok"], 60)
        self.assertEqual(s["check"]["ok"], len(self.fake.orders))

    def test_seed_makes_a_run_repeatable(self):
        def requests(seed):
            with FakeFrontend() as fake:
                run_client(fake, "--iterations", "30", "--buy-quantity", "1-10", "--seed", seed)
                return [(m, p, b) for (_, m, p, b) in fake.requests]
        first = requests("42")
        self.assertEqual(requests("42"), first)
        self.assertNotEqual(requests("43"), first)

    def test_answered_errors_are_counted_not_failures(self):
        self.fake.stock = {"Tux": 100, "Few": 3}
        s, _ = run_client(self.fake, "--mode", "buy", "--toy", "Few", "--iterations", "5")
        self.assertEqual(s["buy"]["ok"], 3)
        self.assertEqual(s["buy"]["out_of_stock"], 2)  # the fake says 400 "out of stock"
        self.assertEqual(s["buy"]["rejected"], 0)
        self.assertEqual(s["check"]["ok"], 3)
        s, _ = run_client(self.fake, "--iterations", "20", "--toys", "Tux,Nope", "--seed", "6")
        self.assertGreater(s["query"]["not_found"], 0)
        self.assertEqual(s["query"]["ok"] + s["query"]["not_found"], 20)

    def test_text_summary(self):
        out, _ = run_client(self.fake, "--iterations", "5", "--seed", "7", json_out=False)
        self.assertRegex(out, r"(?m)^query\s+5\s+5\s+0\s")
        self.assertRegex(out, r"(?m)^rate: \d+ requests in ")
        self.assertIn("seed 7", out)


class ClientChecksAndFaults(unittest.TestCase):
    def test_wrong_order_lookup_fails_naming_the_order(self):
        with FakeFrontend(lie_about={1}) as fake:
            s, err = run_client(fake, "--mode", "buy", "--iterations", "3", rc=1)
        self.assertEqual(s["orders"]["mismatched"], 1)
        self.assertEqual(s["orders"]["mismatched_numbers"], [1])
        self.assertEqual(s["check"]["ok"], 2)
        self.assertRegex(err, r"order 1 does not match: .*Tux x2, made as Tux x1")

    def test_unknown_order_is_a_mismatch(self):
        with FakeFrontend(forget=True) as fake:
            s, err = run_client(fake, "--mode", "buy", "--iterations", "2", rc=1)
        self.assertEqual(s["orders"]["mismatched"], 2)
        self.assertIn("order 0 does not match", err)

    def test_garbage_and_closed_connections_are_clear_errors(self):
        for misbehave, kind, text in (("garbage", "bad_reply", "not JSON"),
                                      ("close", "transport", "Empty reply"),
                                      ("huge", "bad_reply", "over 65536 bytes"),
                                      ("nonhttp", "transport", "GET /products/Tux")):
            with self.subTest(misbehave), FakeFrontend(misbehave=misbehave) as fake:
                out, _ = run_client(fake, "--mode", "query", "--iterations", "4", rc=1,
                                    json_out=False)
                self.assertRegex(out, rf"query: 4 {kind} \(first: .*{text}")
                self.assertEqual(len(fake.requests), 4)  # it went on, and stopped at N

    def test_no_front_end(self):
        with FakeFrontend() as fake:
            url = fake.url
        p = subprocess.run([BIN, "toystore", "client", "--frontend", url, "--iterations", "2", "--json"],
                           capture_output=True, text=True, timeout=4 * WAIT)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["query"]["transport"], 2)

    def test_sigterm_stops_early_and_prints_the_summary(self):
        with FakeFrontend() as fake:
            proc = subprocess.Popen([BIN, "toystore", "client", "--frontend", fake.url, "--json",
                                     "--iterations", "5000000", "--p", "0.3"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                end = time.monotonic() + WAIT
                while len(fake.orders) < 5 and time.monotonic() < end:
                    time.sleep(0.05)  # polling a condition, with a deadline
                self.assertGreaterEqual(len(fake.orders), 5)
                proc.send_signal(signal.SIGTERM)
                out, _ = proc.communicate(timeout=WAIT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        self.assertEqual(proc.returncode, 0)
        s = json.loads(out)
        self.assertTrue(s["stopped"])
        self.assertLess(s["query"]["count"], 5000000)
        self.assertEqual(s["orders"]["made"], s["buy"]["ok"])
        self.assertEqual(s["orders"]["checked"] + s["orders"]["unchecked"], s["orders"]["made"])


class ClientConfig(unittest.TestCase):
    def cli(self, *args, env=None):
        full = dict(os.environ)
        full.update(env or {})
        return subprocess.run([BIN, "toystore", "client", *args], capture_output=True, text=True,
                              timeout=WAIT, env=full)

    def test_check_config_and_errors(self):
        p = self.cli("--frontend", "http://127.0.0.1:9", "--check-config")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "dstmc toystore client: configuration OK"))
        p = self.cli("--check-config", env={"DSTMC_FRONTEND": "http://127.0.0.1:9"})
        self.assertEqual(p.returncode, 0)
        for args, needle in ((["--check-config"], "--frontend: required"),
                             (["--frontend", "ftp://x"], "--frontend"),
                             (["--buy-quantity", "0"], "--buy-quantity"),
                             (["--buy-quantity", "3-1"], "--buy-quantity"),
                             (["--p", "1.5"], "--p"),
                             (["--mode", "shop"], "--mode"),
                             (["--toys", "Tux,,Whale"], "--toys"),
                             (["--clients", "1000", "--iterations", "1000000"], "--iterations")):
            with self.subTest(args):
                full = args if "--frontend" in args or args == ["--check-config"] else \
                    ["--frontend", "http://127.0.0.1:9", *args]
                p = self.cli(*full)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(needle, p.stderr)

    def test_help(self):
        p = self.cli("--help")
        self.assertEqual(p.returncode, 0)
        for flag in ("--frontend", "--mode", "--clients", "--p", "--buy-quantity", "--seed",
                     "--[no-]check", "--[no-]json", "DSTMC_FRONTEND"):
            self.assertIn(flag, p.stdout)


if __name__ == "__main__":
    unittest.main()
