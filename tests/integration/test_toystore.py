"""test_toystore.py - `dstmc toystore catalog|order|frontend`: the Lab 2/3 toy store, tier by tier.

The original suite's 13 functional cases (MaxyZhu75's test_func.py, mapped to the handout's API),
then what it never tested: persistence across restarts and kill -9 of each tier, restock, the
cache against the catalog's push, concurrent sessions, request-id deduplication, bad input, and
each service's options. Replication has its own file (test_toystore_replication.py).
"""
import os
import signal
import tempfile
import threading
import time

from harness import WAIT, Client, Service, TestCase, raw_request, run, wait_for
from toystore_store import Store, buy, read, stock

LAB2 = {"Tux": (25.99, 80), "Whale": (34.99, 94), "Elephant": (29.99, 87), "Bird": (39.99, 98)}
LAB3 = ["Tux", "Whale", "Elephant", "Bird", "Risk", "Sand", "Jenga", "Uno", "Pinball", "Clue"]


class FunctionalTest(TestCase):
    """The original suite's 13 cases, on Lab 2's catalog, and what follows from them."""

    def test_the_thirteen_cases(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp, lab2=True) as s:
            fe, cat, order = Client(s.frontend), Client(s.catalog), Client(s.order)
            # 1-2: query through the front end, valid and not
            r = fe.get("/products/Tux")
            self.assertEqual((r.status, r.json()),
                             (200, {"data": {"name": "Tux", "price": 25.99, "quantity": 80}}))
            self.assertEqual(r.header("content-type"), "application/json")
            r = fe.get("/products/Ostrich")
            self.assertEqual((r.status, r.json()),
                             (404, {"error": {"code": 404, "message": "product not found"}}))
            # 3-4: straight to the catalog
            self.assertEqual(cat.get("/products/Whale").json()["data"],
                             {"name": "Whale", "price": 34.99, "quantity": 94})
            self.assertEqual(cat.get("/products/Ostrich").json(),
                             {"error": {"code": 404, "message": "product not found"}})
            # 5-7: straight to the order service: the first order is number 0
            r = buy(order, "Whale", 1)
            self.assertEqual((r.status, r.json()), (200, {"data": {"order_number": 0}}))
            r = buy(order, "Ostrich", 1)
            self.assertEqual((r.status, r.json()["error"]["message"]), (404, "product not found"))
            r = buy(order, "Whale", 10000000)
            self.assertEqual((r.status, r.json()),
                             (409, {"error": {"code": 409, "message": "out of stock"}}))
            # 8-10: through the front end
            r = buy(fe, "Elephant", 1)
            self.assertEqual((r.status, r.json()), (200, {"data": {"order_number": 1}}))
            r = buy(fe, "Ostrich", 1)
            self.assertEqual((r.status, r.json()),
                             (404, {"error": {"code": 404, "message": "product not found"}}))
            r = buy(fe, "Elephant", 100000)
            self.assertEqual((r.status, r.json()),
                             (409, {"error": {"code": 409, "message": "out of stock"}}))
            # 11-13: the order service's call to the catalog
            r = cat.post("/products/Bird/buy", json_body={"quantity": 1})
            self.assertEqual((r.status, r.json()["data"]["quantity"]), (200, 97))
            r = cat.post("/products/Ostrich/buy", json_body={"quantity": 1})
            self.assertEqual((r.status, r.json()["error"]["message"]), (404, "product not found"))
            r = cat.post("/products/Bird/buy", json_body={"quantity": 100000})
            self.assertEqual((r.status, r.json()["error"]["message"]), (409, "out of stock"))
            # the stock fell by what was bought, and nothing else
            self.assertEqual({n: stock(fe, n) for n in LAB2},
                             {"Tux": 80, "Whale": 93, "Elephant": 86, "Bird": 97})
            # consecutive numbers; each order can be read back
            nums = [buy(fe, "Tux", q).json()["data"]["order_number"] for q in (2, 3)]
            self.assertEqual(nums, [2, 3])
            self.assertEqual(stock(fe, "Tux"), 75)
            self.assertEqual(fe.get("/orders/3").json(),
                             {"data": {"number": 3, "name": "Tux", "quantity": 3}})
            self.assertEqual(fe.get("/orders/0").json()["data"]["name"], "Whale")
            r = fe.get("/orders/4")
            self.assertEqual((r.status, r.json()),
                             (404, {"error": {"code": 404, "message": "order not found"}}))
            self.assertEqual(read(s.log).decode().count("\n"), 4)
            # on disk: the journal has the change (the file gets the table at a clean stop)
            self.assertIn(b"\nb Tux 75 ", read(s.db + ".journal"))
            for c in (fe, cat, order):
                c.close()

    def test_lab3_catalog_and_lab2_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            with Store(tmp) as s:
                c = Client(s.catalog)
                toys = c.get("/products").json()["data"]
                c.close()
                self.assertEqual([t["name"] for t in toys], LAB3)
                self.assertTrue(all(t["quantity"] == 100 for t in toys), toys)
            os.unlink(os.path.join(tmp, "catalog.txt"))  # its journal is set aside
            with Store(tmp, lab2=True) as s:
                c = Client(s.catalog)
                toys = c.get("/products").json()["data"]
                c.close()
                self.assertEqual({t["name"]: (t["price"], t["quantity"]) for t in toys}, LAB2)
                self.assertEqual(read(s.db), b"Tux 25.99 80\nWhale 34.99 94\n"
                                             b"Elephant 29.99 87\nBird 39.99 98\n")
            self.assertTrue(os.path.exists(s.db + ".journal.old"))

    def test_the_original_file_is_read_as_is(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "catalog.txt"), "w") as f:
                f.write("Tux 25.99 80\nWhale 34.99 94\nElephant 29.99 87\nBird 39.99 0\n")
            with Store(tmp) as s:
                fe = Client(s.frontend)
                self.assertEqual(fe.get("/products/Bird").json()["data"]["quantity"], 0)
                self.assertEqual(buy(fe, "Bird", 1).status, 409)
                self.assertEqual(fe.get("/products/Uno").status, 404)
                fe.close()

    def test_concurrent_sessions(self):
        """8 keep-alive sessions buy at once: every number once, 0..N-1, stock exact."""
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            got, errors = [], []
            lock = threading.Lock()

            def session():
                c = Client(s.frontend)
                try:
                    for _ in range(10):
                        self.assertEqual(stock(c, "Jenga") is not None, True)
                        r = buy(c, "Jenga", 1)
                        with lock:
                            (got if r.status == 200 else errors).append(
                                r.json().get("data", {}).get("order_number", r.status))
                finally:
                    c.close()

            ts = [threading.Thread(target=session) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(2 * WAIT)
            self.assertEqual(errors, [])
            self.assertEqual(sorted(got), list(range(80)))
            fe = Client(s.frontend)
            self.assertEqual(stock(fe, "Jenga"), 20)
            lines = read(s.log).decode().splitlines()
            self.assertEqual([int(x.split(",")[0]) for x in lines], list(range(80)))
            fe.close()


class DurabilityTest(TestCase):
    def test_restart_keeps_stock_and_numbers(self):
        with tempfile.TemporaryDirectory() as tmp:
            with Store(tmp) as s:
                fe = Client(s.frontend)
                self.assertEqual(buy(fe, "Uno", 5).json()["data"]["order_number"], 0)
                fe.close()
            with Store(tmp) as s:
                fe = Client(s.frontend)
                self.assertEqual(stock(fe, "Uno"), 95)
                self.assertEqual(buy(fe, "Uno", 1).json()["data"]["order_number"], 1)
                self.assertEqual(fe.get("/orders/0").json()["data"],
                                 {"number": 0, "name": "Uno", "quantity": 5})
                fe.close()

    def test_kill_9_of_each_tier_loses_no_acknowledged_buy(self):
        """Buyers run through kill -9 and restart of the catalog, the order service and the
        front end; every buy they were told of is in the log and the stock."""
        with tempfile.TemporaryDirectory() as tmp:
            # stock enough for every buy the whole test can make (3 buyers paced to 100/s each
            # for at most 4 * WAIT): a sold-out Pinball would stop the acknowledgements it counts
            stocked = 100000
            with open(os.path.join(tmp, "catalog.txt"), "w") as f:
                f.write(f"Pinball 19.99 {stocked}\n")
            self._kill_9_of_each_tier(tmp, stocked)

    def _kill_9_of_each_tier(self, tmp, stocked):
        with Store(tmp) as s:
            acked, errors, stop = [], [], threading.Event()
            lock = threading.Lock()

            def buyer():
                c = Client(s.frontend, timeout=10)
                deadline = time.monotonic() + 4 * WAIT
                while not stop.is_set() and time.monotonic() < deadline:
                    try:
                        r = buy(c, "Pinball", 1)
                    except OSError:
                        c.close()
                        time.sleep(0.05)  # the front end is down: a moment before the next
                        continue
                    if r.status == 200:
                        with lock:
                            acked.append(r.json()["data"]["order_number"])
                    elif r.status != 503:  # a tier is down: that answer and nothing else
                        with lock:
                            errors.append((r.status, r.body))
                        break
                    time.sleep(0.01)  # pacing, not a synchronisation
                c.close()

            ts = [threading.Thread(target=buyer) for _ in range(3)]
            for t in ts:
                t.start()

            def more(n):
                with lock:
                    start = len(acked)
                wait_for(lambda: len(acked) >= start + n or errors,
                         what=f"{n} more acknowledged buys")
                self.assertEqual(errors, [])

            more(5)
            for tier in ("catalog", "order", "frontend"):
                svc = getattr(s, tier)
                svc.stop(sig=signal.SIGKILL)
                getattr(s, f"start_{tier}")()
                more(5)
            stop.set()
            for t in ts:
                t.join(2 * WAIT)
            self.assertEqual(errors, [])
            fe = Client(s.frontend)
            self.assertEqual(len(set(acked)), len(acked))  # no number given twice
            for n in acked:
                self.assertEqual(fe.get(f"/orders/{n}").json()["data"]["name"], "Pinball")
            # a buy cut by a kill may have taken stock without an order; never the reverse
            left = stock(fe, "Pinball")
            self.assertLessEqual(left, stocked - len(acked))
            lines = read(s.log).decode().splitlines()
            self.assertEqual([int(x.split(",")[0]) for x in lines], list(range(len(lines))))
            self.assertLessEqual(len(acked), len(lines))
            fe.close()

    def test_sigterm_during_buys_is_a_clean_stop(self):
        """A catalog stopped while buyers keep it busy drains and exits 0: a buy finishing in
        the drain publishes its invalidation (it crashed on a freed event hub, 10 of 10 runs)."""
        with tempfile.TemporaryDirectory() as tmp:
            s = Store(tmp, start=False)
            cat = s.start_catalog()
            done, stop = [0], threading.Event()
            lock = threading.Lock()

            def buyer():
                c = Client(cat, timeout=10)
                deadline = time.monotonic() + 2 * WAIT
                while not stop.is_set() and time.monotonic() < deadline:
                    try:
                        r = c.post("/products/Tux/buy", json_body={"quantity": 1})
                    except OSError:
                        break  # the catalog has gone: the stop under test
                    if r.status != 200:
                        break  # sold out (or refused while stopping): enough
                    with lock:
                        done[0] += 1
                c.close()

            ts = [threading.Thread(target=buyer) for _ in range(12)]
            for t in ts:
                t.start()
            try:
                wait_for(lambda: done[0] >= 12, what="buys under way")
                cat.stop()  # SIGTERM amid the buys: exit 0, no sanitizer report
            finally:
                stop.set()
                for t in ts:
                    t.join(WAIT)
                s.stop(check=False)

    def test_torn_last_order_line_is_dropped(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "orders.txt"), "w") as f:
                f.write("0,Tux,1\n1,Whale,2,abc\n2,Ti")
            with Store(tmp) as s:
                s.order.wait_line(r"dropping a last line a crash cut short")
                fe = Client(s.frontend)
                self.assertEqual(buy(fe, "Tux", 1).json()["data"]["order_number"], 2)
                fe.close()
            self.assertEqual(read(os.path.join(tmp, "orders.txt")).decode().splitlines()[:2],
                             ["0,Tux,1", "1,Whale,2,abc"])

    def test_request_id_answers_once(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            order, cat = Client(s.order), Client(s.catalog)
            first = buy(order, "Risk", 3, request_id="req-1")
            again = buy(order, "Risk", 3, request_id="req-1")
            self.assertEqual(first.json(), {"data": {"order_number": 0}})
            self.assertEqual(again.json(), first.json())
            self.assertEqual(stock(cat, "Risk"), 97)
            oos = buy(order, "Risk", 1000, request_id="req-2")
            self.assertEqual(buy(order, "Risk", 1000, request_id="req-2").json(), oos.json())
            # the catalog too takes stock once per request id
            for _ in range(2):
                r = cat.post("/products/Risk/buy", json_body={"quantity": 2, "request_id": "c-1"})
                self.assertEqual(r.json()["data"]["quantity"], 95)
            self.assertEqual(stock(cat, "Risk"), 95)
            self.assertEqual(read(s.log).decode().count("\n"), 1)
            # and after a restart of the order service, from its log
            s.order.stop()
            s.start_order()
            order.close()
            order = Client(s.order)
            self.assertEqual(buy(order, "Risk", 3, request_id="req-1").json(), first.json())
            self.assertEqual(stock(cat, "Risk"), 95)
            order.close()
            cat.close()


class RestockAndCacheTest(TestCase):
    def test_restock(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp, restock="1") as s:
            fe = Client(s.frontend)
            self.assertEqual(stock(fe, "Sand"), 100)  # cached now
            self.assertEqual(buy(fe, "Sand", 100).status, 200)
            # sold out, then back to 100: on disk, and the push reached the front end's cache
            wait_for(lambda: stock(fe, "Sand") == 100, what="Sand restocked")
            wait_for(lambda: b"Sand 9.99 100\n" in read(s.db), what="the restock on disk")
            s.catalog.wait_line(r"restocked Sand to 100")
            fe.close()

    def test_no_stale_read(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            fe, order = Client(s.frontend), Client(s.order)
            self.assertEqual(stock(fe, "Clue"), 100)
            hits = s.ping()["cache"]["hits"]
            self.assertEqual(stock(fe, "Clue"), 100)
            self.assertGreater(s.ping()["cache"]["hits"], hits)  # the cache answered
            for i in range(1, 6):  # through the front end: the next read sees it at once
                self.assertEqual(buy(fe, "Clue", 1).status, 200)
                self.assertEqual(stock(fe, "Clue"), 100 - i)
            # straight to the order service: the catalog's push drops the front end's entry
            self.assertEqual(buy(order, "Clue", 10).status, 200)
            wait_for(lambda: stock(fe, "Clue") == 85, what="the push of a buy made elsewhere")
            fe.close()
            order.close()

    def test_cache_off_while_the_stream_is_lost(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            fe = Client(s.frontend)
            self.assertEqual(stock(fe, "Bird"), 100)
            s.catalog.stop()
            wait_for(lambda: not s.ping()["cache"]["events"], what="the stream seen lost")
            self.assertEqual(fe.get("/products/Bird").status, 503)  # never the cached 100
            with open(s.db, "w") as f:  # changed while nobody watched
                f.write("Bird 39.99 7\n")
            s.start_catalog()
            wait_for(lambda: s.ping()["cache"]["events"], what="the stream back")
            self.assertEqual(stock(fe, "Bird"), 7)
            fe.close()

    def test_cache_off(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp, cache="off") as s:
            fe = Client(s.frontend)
            for _ in range(3):
                self.assertEqual(stock(fe, "Tux"), 100)
            self.assertEqual(s.ping()["cache"]["hits"], 0)
            self.assertFalse(s.ping()["cache"]["on"])
            fe.close()


class BadInputTest(TestCase):
    def test_bad_requests(self):
        with tempfile.TemporaryDirectory() as tmp, Store(tmp) as s:
            fe = Client(s.frontend)
            cases = [
                (b"{", "not JSON"), (b"[1]", "JSON object"), (b'{"name":"Tux"}', "quantity"),
                (b'{"quantity":1}', "name"), (b'{"name":"","quantity":1}', "name"),
                (b'{"name":5,"quantity":1}', "name"), (b'{"name":"Tux","quantity":"1"}', "quantity"),
                (b'{"name":"Tux","quantity":1.5}', "quantity"),
                (b'{"name":"Tux","quantity":true}', "quantity"),
                (b'{"name":"Tux","quantity":0}', "quantity"),
                (b'{"name":"Tux","quantity":-3}', "quantity"),
                (b'{"name":"Tux","quantity":1000000000000}', "quantity"),
                (b'{"name":"Tux","quantity":99999999999999999999999}', "not JSON"),
                (b'{"name":"' + b"x" * 65 + b'","quantity":1}', "name"),
                (b'{"name":"Tux","quantity":1,"name":"Uno"}', "not JSON"),
                (b"", "not JSON"),
            ]
            order = Client(s.order)
            for body, field in cases:
                for c, path in ((fe, "/orders"), (order, "/orders")):
                    r = c.post(path, body=body, headers={"Content-Type": "application/json"})
                    self.assertEqual(r.status, 400, body)
                    self.assertEqual(r.json()["error"]["code"], 400)
                    self.assertIn(field, r.json()["error"]["message"], body)
            cat = Client(s.catalog)
            r = cat.post("/products/Tux/buy", body=b'{"quantity":-1}',
                         headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400)
            # what a page of another site can send: a simple request, or one the browser marks
            good = b'{"name":"Tux","quantity":1}'
            for c, path in ((fe, "/orders"), (order, "/orders"), (cat, "/products/Tux/buy")):
                for ct in ("text/plain", "application/x-www-form-urlencoded", None):
                    r = c.post(path, body=good, headers={"Content-Type": ct} if ct else {})
                    self.assertEqual(r.status, 415, (path, ct))
                for h in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                    r = c.post(path, body=good, headers={"Content-Type": "application/json", **h})
                    self.assertEqual((r.status, r.json()["error"]["code"]), (403, 403), (path, h))
            order.close()
            cat.close()
            self.assertEqual(stock(fe, "Tux"), 100)  # none of it changed anything
            self.assertEqual(read(s.log), b"")
            # names no toy can have, paths and methods
            r = buy(fe, "Tux Two/../x", 1)
            self.assertEqual((r.status, r.json()["error"]["message"]), (404, "product not found"))
            self.assertEqual(fe.get("/products/%00x").status, 404)
            self.assertEqual(fe.get("/orders/abc").status, 404)
            self.assertEqual(fe.get("/orders/-1").status, 404)
            self.assertEqual(fe.get("/orders/99999999999999999999999").status, 404)
            r = fe.get("/nothing/here")
            self.assertEqual((r.status, r.json()["error"]["code"]), (404, 404))
            r = fe.request("DELETE", "/orders")
            self.assertEqual((r.status, r.json()["error"]["code"]), (405, 405))
            self.assertEqual(fe.request("PUT", "/products/Tux").status, 405)
            r = fe.post("/orders", body=b"{" + b" " * 10000 + b"}")
            self.assertEqual((r.status, r.json()["error"]["code"]), (413, 413))
            garbage = raw_request(s.frontend.host, s.frontend.port, b"\x00\xffNOT HTTP\r\n\r\n")
            self.assertNotIn(b" 200 ", garbage[:20])
            self.assertEqual(stock(fe, "Tux"), 100)  # and the front end still answers
            fe.close()

    def test_corrupted_catalog_at_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "catalog.txt")
            text = b"Tux 25.99 80\nWhale 34.99 94\nElephant x 87\nBird 39.99 98\n"
            with open(db, "wb") as f:
                f.write(text)
            for extra in ([], ["--check-config"]):
                code, _, err = run("toystore", "catalog", "--listen", "127.0.0.1:0", "--db", db,
                                   *extra)
                self.assertEqual(code, 2, err)
                self.assertIn(f"{db}:3: price 'x' is not a number", err)
                self.assertEqual(read(db), text)  # nothing overwritten
            self.assertFalse(os.path.exists(db + ".tmp"))
            log = os.path.join(tmp, "orders.txt")
            with open(log, "w") as f:
                f.write("0,Tux,1\n5,Tux,1\n")
            for extra in ([], ["--check-config"]):
                code, _, err = run("toystore", "order", "--listen", "127.0.0.1:0", "--db", log,
                                   *extra)
                self.assertEqual(code, 2, err)
                self.assertIn(f"{log}:2: order number 5, expected 1", err)
            self.assertEqual(read(log), b"0,Tux,1\n5,Tux,1\n")


class CatalogJournalTest(TestCase):
    """The catalog's journal (catalog.txt.journal): every acknowledged change and request id
    survives kill -9, across compactions; a bad journal stops the start and is left alone."""

    def test_kill_9_keeps_every_acknowledged_change_and_request_id(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "catalog.txt")
            start = {"Tux": 100000, "Whale": 100000}
            with open(db, "w") as f:
                f.write("Tux 1.5 100000\nWhale 2 100000\n")
            # 4 KiB of journal (about 90 buys) between compactions: several during the run
            args = ["--listen", "127.0.0.1:0", "--db", db, "--restock-interval", "0",
                    "--journal-max", "4"]
            cat = Service("toystore", "catalog", *args)
            sent, acked, errors = {}, set(), []
            lock = threading.Lock()

            def buyer(k):
                c = Client(cat.url, timeout=10)
                for i in range(20000):
                    rid, toy, q = f"b{k}-{i}", ("Tux", "Whale")[i % 2], 1 + i % 3
                    with lock:
                        sent[rid] = (toy, q)
                    try:
                        r = c.post(f"/products/{toy}/buy",
                                   json_body={"quantity": q, "request_id": rid})
                    except OSError:
                        break  # the kill under test
                    if r.status != 200:
                        with lock:
                            errors.append((r.status, r.body))
                        break
                    with lock:
                        acked.add(rid)
                c.close()

            ts = [threading.Thread(target=buyer, args=(k,)) for k in range(6)]
            try:
                for t in ts:
                    t.start()
                wait_for(lambda: len(acked) >= 600 or errors, what="600 acknowledged buys")
                cat.stop(sig=signal.SIGKILL)
            finally:
                for t in ts:
                    t.join(2 * WAIT)
                cat.stop(check=False)
            self.assertEqual(errors, [])
            cat = Service("toystore", "catalog", *args)
            try:
                c = Client(cat.url)

                def taken(rids):
                    out = {name: 0 for name in start}
                    for rid in rids:
                        out[sent[rid][0]] += sent[rid][1]
                    return out

                cut = [rid for rid in sent if rid not in acked]
                for name in start:
                    left = stock(c, name)
                    # every acknowledged buy is there; a buy cut short may be too
                    self.assertLessEqual(left, start[name] - taken(acked)[name])
                    self.assertGreaterEqual(left, start[name] - taken(sent)[name])
                # every request id again: the journal remembers each that took stock
                for rid, (toy, q) in sent.items():
                    r = c.post(f"/products/{toy}/buy", json_body={"quantity": q, "request_id": rid})
                    self.assertEqual(r.status, 200, r.body)
                for name in start:
                    self.assertEqual(stock(c, name), start[name] - taken(sent)[name], cut)
                c.close()
                cat.stop()  # a clean stop writes the table to the file
            finally:
                cat.stop(check=False)
            want = "".join(f"{n} {p} {start[n] - taken(sent)[n]}\n"
                           for n, p in (("Tux", "1.5"), ("Whale", "2")))
            self.assertEqual(read(db).decode(), want)
            self.assertNotIn(b"\nb ", read(db + ".journal"))  # only ids left in the journal

    def test_corrupted_journal_at_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "catalog.txt")
            with open(db, "wb") as f:
                f.write(b"Tux 25.99 80\n")
            journal = b"dstmc catalog journal 1\nb Tux 79 a\nb Tux -1 b\nb Tux 77 c\n"
            with open(db + ".journal", "wb") as f:
                f.write(journal)
            for extra in ([], ["--check-config"]):
                code, _, err = run("toystore", "catalog", "--listen", "127.0.0.1:0", "--db", db,
                                   *extra)
                self.assertEqual(code, 2, err)
                self.assertIn(f"{db}.journal:3: quantity '-1' is not a whole number", err)
                self.assertEqual(read(db), b"Tux 25.99 80\n")  # nothing overwritten
                self.assertEqual(read(db + ".journal"), journal)


class OptionsTest(TestCase):
    def test_help_and_check_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "c.txt")
            for svc, want, args in (
                    ("catalog", "--restock-interval", ["--db", db]),
                    ("order", "--peer", ["--db", os.path.join(tmp, "o.txt"), "--peer",
                                         "2=http://127.0.0.1:1"]),
                    ("frontend", "--cache", ["--order", "1=http://127.0.0.1:1"])):
                code, out, _ = run("toystore", svc, "--help")
                self.assertEqual(code, 0)
                self.assertIn(want, out)
                self.assertIn("DSTMC_LISTEN", out)
                code, out, err = run("toystore", svc, "--listen", "127.0.0.1:0", "--check-config",
                                     *args)
                self.assertEqual((code, out.strip()), (0, f"dstmc toystore {svc}: configuration OK"),
                                 err)
            self.assertFalse(os.path.exists(db))  # --check-config creates nothing
            code, _, err = run("toystore", "frontend", "--check-config", "--listen", "127.0.0.1:0")
            self.assertEqual(code, 2)
            self.assertIn("--order", err)
            code, _, err = run("toystore", "order", "--check-config", "--listen", "127.0.0.1:0",
                               "--id", "2", "--peer", "2=http://x:1")
            self.assertEqual(code, 2)
            self.assertIn("own --id", err)
            code, _, err = run("toystore", "frontend", "--check-config", "--listen", "127.0.0.1:0",
                               "--order", "1=ftp://h/")
            self.assertEqual(code, 2)
            self.assertIn("--order: '1=ftp://h/'", err)
            code, _, err = run("toystore", "catalog", "--restock-interval", "x")
            self.assertEqual(code, 2)
            code, _, err = run("toystore", "nope")
            self.assertEqual(code, 2)
            self.assertIn("unknown service", err)
            code, out, _ = run("toystore", "--help")
            self.assertEqual(code, 0)
            self.assertIn("frontend", out)

    def test_env_twins_and_ping(self):
        with tempfile.TemporaryDirectory() as tmp:
            cat = Service("toystore", "catalog", env={"DSTMC_LISTEN": "127.0.0.1:0",
                                                     "DSTMC_DB": os.path.join(tmp, "c.txt")})
            with cat:
                order = Service("toystore", "order", "--listen", "127.0.0.1:0", "--id", "3",
                                "--peer", "1=http://127.0.0.1:1/", "--peer", "2=http://h:2",
                                env={"DSTMC_DB": os.path.join(tmp, "o.txt"),
                                     "DSTMC_CATALOG": cat.url})
                with order:
                    c = Client(order)
                    d = c.get("/ping").json()["data"]
                    self.assertEqual((d["id"], d["next_order"]), (3, 0))
                    self.assertEqual(d["peers"], [{"id": 1, "url": "http://127.0.0.1:1"},
                                                  {"id": 2, "url": "http://h:2"}])
                    # peers and no leader chosen yet: it takes no buy
                    r = buy(c, "Tux", 1)
                    self.assertEqual((r.status, r.json()["error"]["message"]),
                                     (421, "not the leader (replica -1 leads)"))
                    self.assertEqual((d["epoch"], d["leader"], d["ready"]), (0, -1, False))
                    c.close()
