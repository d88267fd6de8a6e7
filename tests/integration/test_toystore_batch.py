"""test_toystore_batch.py - the catalog's POST /buys: the order leader's batch of buys.

One POST carries a list of buys; the catalog applies them in order under its write lock, makes
them durable with one journal sync and answers a result per buy, each what POST
/products/NAME/buy would have answered. Request ids are deduplicated per buy, so a retried
batch takes nothing twice; a body that does not parse is a 400 naming the buy and the field,
and changes nothing.
"""
import os
import signal
import tempfile
import threading

from harness import Client, Service, TestCase, wait_for
from toystore_store import Store, buy, read, stock

JSON = {"Content-Type": "application/json"}


def buys(client, *items):
    return client.post("/buys", json_body={"buys": [dict(i) for i in items]})


def results(r):
    """Each result as (code, quantity after) or (code, message)."""
    out = []
    for x in r.json()["data"]["results"]:
        if "data" in x:
            out.append((200, x["data"]["quantity"]))
        else:
            out.append((x["error"]["code"], x["error"]["message"]))
    return out


class CatalogBatchTest(TestCase):
    def test_applied_in_order_with_a_result_per_buy(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            cat = Client(s.catalog)
            r = buys(cat, {"name": "Tux", "quantity": 60}, {"name": "Tux", "quantity": 50},
                     {"name": "Nope", "quantity": 1}, {"name": "Tux Two", "quantity": 1},
                     {"name": "Tux", "quantity": 40}, {"name": "Uno", "quantity": 3})
            self.assertEqual(r.status, 200, r.body)
            # 60 of 100, then 50 of the 40 left is out of stock, then the last 40
            self.assertEqual(results(r), [(200, 40), (409, "out of stock"),
                                          (404, "product not found"), (404, "product not found"),
                                          (200, 0), (200, 97)])
            self.assertEqual(r.json()["data"]["results"][0]["data"],
                             {"name": "Tux", "price": 25.99, "quantity": 40})
            self.assertEqual((stock(cat, "Tux"), stock(cat, "Uno")), (0, 97))
            cat.close()

    def test_a_retried_batch_takes_nothing_twice(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            cat = Client(s.catalog)
            batch = [{"name": "Risk", "quantity": 3, "request_id": "r-1"},
                     {"name": "Risk", "quantity": 2, "request_id": "r-2"},
                     {"name": "Sand", "quantity": 5, "request_id": "r-3"}]
            self.assertEqual(results(buys(cat, *batch)), [(200, 97), (200, 95), (200, 95)])
            # the same batch again, and one id twice in a batch: a repeat takes nothing and
            # answers the toy as it is at its turn
            again = buys(cat, *batch, {"name": "Sand", "quantity": 1, "request_id": "r-4"},
                         {"name": "Sand", "quantity": 1, "request_id": "r-4"})
            self.assertEqual(results(again), [(200, 95), (200, 95), (200, 95), (200, 94),
                                              (200, 94)])
            # the single-buy endpoint shares the ids
            r = cat.post("/products/Risk/buy", json_body={"quantity": 3, "request_id": "r-1"})
            self.assertEqual(r.json()["data"]["quantity"], 95)
            self.assertEqual((stock(cat, "Risk"), stock(cat, "Sand")), (95, 94))
            # and after kill -9 (the journal holds them): the batch still takes nothing
            s.catalog.stop(sig=signal.SIGKILL)
            s.start_catalog()
            cat.close()
            cat = Client(s.catalog)
            self.assertEqual(results(buys(cat, *batch)), [(200, 95), (200, 95), (200, 94)])
            self.assertEqual((stock(cat, "Risk"), stock(cat, "Sand")), (95, 94))
            cat.close()

    def test_a_batch_invalidates_the_front_ends_cache(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            fe, cat = Client(s.frontend), Client(s.catalog)
            self.assertEqual(stock(fe, "Jenga"), 100)
            self.assertEqual(stock(fe, "Jenga"), 100)  # cached now
            self.assertGreaterEqual(s.ping()["cache"]["hits"], 1)
            self.assertEqual(results(buys(cat, {"name": "Jenga", "quantity": 7},
                                          {"name": "Jenga", "quantity": 1})), [(200, 93), (200, 92)])
            wait_for(lambda: stock(fe, "Jenga") == 92, what="the invalidation of Jenga")
            fe.close()
            cat.close()

    def test_bad_input_is_a_400_and_changes_nothing(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            cat = Client(s.catalog)
            good = {"name": "Tux", "quantity": 1, "request_id": "g-1"}
            cases = [
                (b"{", "not JSON"), (b"", "not JSON"), (b"[1]", "buys"), (b"{}", "buys"),
                (b'{"buys":{}}', "buys"), (b'{"buys":[]}', "buys"),
                (b'{"buys":[1]}', "buys[0]: the buy must be a JSON object"),
                (b'{"buys":[{"name":"Tux","quantity":1},{"quantity":1}]}', "buys[1]: name"),
                (b'{"buys":[{"name":"Tux","quantity":1},{"name":"Tux","quantity":0}]}',
                 "buys[1]: quantity"),
                (b'{"buys":[{"name":"Tux","quantity":"1"}]}', "buys[0]: quantity"),
                (b'{"buys":[{"name":"Tux","quantity":-3}]}', "buys[0]: quantity"),
                (b'{"buys":[{"name":"Tux","quantity":1000000000000}]}', "buys[0]: quantity"),
                (b'{"buys":[{"name":"' + b"x" * 65 + b'","quantity":1}]}', "buys[0]: name"),
                (b'{"buys":[{"name":"Tux","quantity":1,"request_id":"a b"}]}',
                 "buys[0]: request_id"),
                (b'{"buys":[{"name":"Tux","quantity":1,"request_id":5}]}', "buys[0]: request_id"),
                (b'{"buys":[{"name":"Tux","quantity":1}],"buys":[]}', "not JSON"),
                (b'{"buys":[' + b",".join([b'{"name":"Tux","quantity":1}'] * 1025) + b"]}",
                 "1 to 1024 buys"),
            ]
            for body, want in cases:
                r = cat.post("/buys", body=body, headers=JSON)
                self.assertEqual(r.status, 400, body[:80])
                self.assertEqual(r.json()["error"]["code"], 400)
                self.assertIn(want, r.json()["error"]["message"], body[:80])
            r = cat.post("/buys", body=b'{"buys":[' + b" " * (600 << 10) + b"]}", headers=JSON)
            self.assertEqual((r.status, r.json()["error"]["code"]), (413, 413))
            body = b'{"buys":[{"name":"Tux","quantity":1}]}'
            for ct in ("text/plain", None):
                r = cat.post("/buys", body=body, headers={"Content-Type": ct} if ct else {})
                self.assertEqual(r.status, 415, ct)
            r = cat.post("/buys", body=body, headers={**JSON, "Origin": "http://evil.example"})
            self.assertEqual(r.status, 403)
            self.assertEqual(cat.request("GET", "/buys").status, 405)
            self.assertEqual(stock(cat, "Tux"), 100)  # none of it took anything
            journal = read(s.db + ".journal")
            self.assertNotIn(b"\nb ", journal)
            # nor remembered an id: a good batch with that id still takes its stock
            self.assertEqual(results(buys(cat, good)), [(200, 99)])
            cat.close()


class OrderBatchingTest(TestCase):
    """The order service sends the buys that wait together as one batch; each keeps its own
    outcome and order number, and the catalog and the log agree."""

    def test_concurrent_buys_each_get_their_outcome(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "catalog.txt"), "w") as f:
                f.write("Tux 1 300\nWhale 2 5\n")
            with Store(tmp) as s:
                got, lock = [], threading.Lock()

                def buyer(k):
                    c = Client(s.order, timeout=30)
                    for i in range(25):
                        toy = ("Tux", "Whale", "Nope")[(k + i) % 3]
                        r = buy(c, toy, 1, request_id=f"k{k}-{i}")
                        with lock:
                            got.append((toy, r.status, r.json()))
                    c.close()

                ts = [threading.Thread(target=buyer, args=(k,)) for k in range(12)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(120)
                self.assertFalse(any(t.is_alive() for t in ts))
                self.assertEqual(len(got), 300)
                ok = [g for g in got if g[1] == 200]
                self.assertEqual({g[1] for g in got if g[0] == "Nope"}, {404})
                whale = [g[1] for g in got if g[0] == "Whale"]
                self.assertEqual((whale.count(200), whale.count(409)), (5, len(whale) - 5))
                self.assertTrue(all(g[1] == 200 for g in got if g[0] == "Tux"))
                numbers = sorted(g[2]["data"]["order_number"] for g in ok)
                self.assertEqual(numbers, list(range(len(ok))))
                cat = Client(s.catalog)
                tux = sum(1 for g in ok if g[0] == "Tux")
                self.assertEqual((stock(cat, "Tux"), stock(cat, "Whale")), (300 - tux, 0))
                cat.close()
                lines = read(s.log).decode().splitlines()
                self.assertEqual(len(lines), len(ok))
                by_number = {g[2]["data"]["order_number"]: g[0] for g in ok}
                for line in lines:
                    n, name = line.split(",")[:2]
                    self.assertEqual(by_number[int(n)], name)
