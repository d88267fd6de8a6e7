"""test_toystore_status.py - the front end's live page: GET /status/ and its files, /status/data
(the toys and their stock, the orders it acknowledged, the replicas and who leads) and
/status/events (the same, pushed).

Stores from toystore_store (Store: one order replica; Cluster: three); every wait is for a
condition, with the harness's generous deadline.
"""
import json
import tempfile

from harness import WAIT, Client, SSEReader, TestCase, wait_for
from toystore_store import Cluster, Store, buy, stock


def status(client):
    r = client.get("/status/data")
    assert r.status == 200, r.body
    assert r.header("content-type").startswith("application/json"), r.headers
    return r.json()["data"]


def toys(st):
    return {t["name"]: t["quantity"] for t in st["toys"]}


def leader_of(st):
    return [r["id"] for r in st["replicas"] if r["leader"]]


class StatusDataTest(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.store = Store(self.tmp.name)
        self.addCleanup(self.store.stop)
        self.c = Client(self.store.frontend)
        self.addCleanup(self.c.close)
        # the front end chooses its leader by its first health checks: they may be under way
        wait_for(lambda: status(self.c)["leader"] == 1, what="the front end's order leader")

    def test_shows_the_catalog_stock_falling_after_a_buy_and_counts_orders(self):
        st = status(self.c)
        catalog = Client(self.store.catalog)
        self.addCleanup(catalog.close)
        self.assertEqual(st["toys"], catalog.get("/products").json()["data"])
        self.assertEqual(len(st["toys"]), 10)
        self.assertEqual(toys(st)["Tux"], 100)
        self.assertIsNone(st["catalog_error"])
        self.assertEqual(st["orders"]["total"], 0)
        self.assertEqual((st["leader"], leader_of(st)), (1, [1]))
        self.assertTrue(st["cache"]["on"])

        for q in (3, 2):
            self.assertEqual(buy(self.c, "Tux", q).status, 200)
        self.assertEqual(buy(self.c, "Nope", 1).status, 404)  # not an order: not counted
        st = status(self.c)
        self.assertEqual(toys(st)["Tux"], 95)
        self.assertEqual(toys(st)["Whale"], 100)
        self.assertEqual(st["orders"]["total"], 2)
        # the two orders show in the last 60 s once their second is over, and the rate is the
        # mean of the last window_s seconds of that history
        st = wait_for(lambda: (lambda s: s if sum(s["orders"]["per_second"]) == 2 else None)(
            status(self.c)), what="the two orders in the per-second history")
        o = st["orders"]
        self.assertEqual(len(o["per_second"]), 60)
        self.assertAlmostEqual(o["per_s"], sum(o["per_second"][-o["window_s"]:]) / o["window_s"])

        # a buy made at the catalog itself: the stock falls, this front end acknowledged nothing
        r = catalog.post("/products/Whale/buy", json_body={"quantity": 4})
        self.assertEqual(r.status, 200, r.body)
        st = status(self.c)
        self.assertEqual(toys(st)["Whale"], 96)
        self.assertEqual(st["orders"]["total"], 2)

    def test_a_catalog_that_does_not_answer_is_named_not_hidden(self):
        self.store.catalog.stop()
        st = status(self.c)
        self.assertIsNone(st["toys"])
        self.assertTrue(st["catalog_error"])
        self.assertEqual(st["leader"], 1)  # the rest of the status still comes

    def test_the_page_is_read_only(self):
        for path in ("/status/data", "/status/", "/status/events"):
            r = self.c.post(path, json_body={})
            self.assertEqual(r.status, 405, path)
            self.assertIn("GET", r.header("allow"))
        self.assertEqual(stock(self.c, "Tux"), 100)


class StatusPageTest(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.store = Store(self.tmp.name)
        self.addCleanup(self.store.stop)
        self.c = Client(self.store.frontend)
        self.addCleanup(self.c.close)

    def test_status_redirects_to_the_page(self):
        r = self.c.get("/status")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("location"), "/status/")

    def test_the_page_and_its_files_with_their_types_and_no_inline_script(self):
        r = self.c.get("/status/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/html"), r.headers)
        csp = r.header("content-security-policy")
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertIn("connect-src 'self'", csp)
        html = r.text
        self.assertIn('<script src="live.js"></script>', html)  # shared with the monitor's page
        self.assertIn('<script src="status.js" defer></script>', html)
        self.assertEqual(html.count("<script"), 2)  # nothing inline: the policy would block it
        self.assertNotIn("http://", html.replace("http://www.w3.org/2000/svg", ""))
        self.assertEqual(self.c.get("/status/index.html").body, r.body)
        for f, ctype in (("live.js", "text/javascript"), ("status.js", "text/javascript"),
                         ("status.css", "text/css"),
                         ("style.css", "text/css"), ("monitor.css", "text/css")):
            r = self.c.get(f"/status/{f}")
            self.assertEqual(r.status, 200, f)
            self.assertTrue(r.header("content-type").startswith(ctype), (f, r.headers))
            self.assertEqual(r.header("x-content-type-options"), "nosniff")
            self.assertGreater(len(r.body), 100, f)
        r = self.c.get("/status/app.js")  # the dashboard's script is no file of this page
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"]["code"], 404)

    def test_events_deliver_the_status(self):
        ev = SSEReader(self.store.frontend, "/status/events")
        self.addCleanup(ev.close)
        self.assertEqual(ev.resp.status, 200)
        self.assertTrue(ev.resp.getheader("Content-Type").startswith("text/event-stream"))
        first = json.loads(ev.next_event(want="status")["data"])["data"]
        self.assertEqual(toys(first)["Tux"], 100)
        self.assertEqual(first["leader"], 1)
        self.assertEqual(buy(self.c, "Tux", 7).status, 200)
        for _ in range(100):  # one a second: the buy shows within a few
            st = json.loads(ev.next_event(want="status")["data"])["data"]
            if toys(st)["Tux"] == 93:
                break
        self.assertEqual((toys(st)["Tux"], st["orders"]["total"]), (93, 1))


class StatusLeaderTest(TestCase):
    def test_the_leader_shown_changes_when_it_is_killed(self):
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            c = Client(cl.frontend)
            try:
                # the front end's last round of health checks sees every replica caught up
                st = wait_for(lambda: (lambda s: s if all(r["ready"] for r in s["replicas"])
                                       else None)(status(c)), what="every replica shown ready")
                self.assertEqual((st["leader"], leader_of(st)), (3, [3]))
                self.assertEqual([(r["id"], r["live"], r["ready"]) for r in st["replicas"]],
                                 [(3, True, True), (2, True, True), (1, True, True)])
                ev = SSEReader(cl.frontend, "/status/events")
                try:
                    ev.next_event(want="status")
                    cl.kill(3)
                    # the event stream says so (the push on a change of leader)
                    for _ in range(200):
                        pushed = json.loads(ev.next_event(want="status")["data"])["data"]
                        if pushed["leader"] == 2:
                            break
                    self.assertEqual(leader_of(pushed), [2])
                finally:
                    ev.close()
                st = wait_for(lambda: (lambda s: s if s["leader"] == 2 and not
                                       s["replicas"][0]["live"] else None)(status(c)),
                              what="replica 2 leading and 3 shown down")
                self.assertGreater(st["epoch"], 0)
                self.assertEqual([(r["id"], r["live"], r["leader"]) for r in st["replicas"]],
                                 [(3, False, False), (2, True, True), (1, True, False)])
                self.assertEqual(buy(c, "Tux", 1).status, 200)  # and buys go on, counted
                self.assertEqual(status(c)["orders"]["total"], 1)
            finally:
                c.close()
