"""test_toystore_replication.py - Lab 3's order replicas: the front end's leader, propagation,
catch-up, request ids across replicas, and the Jepsen-style check of issue 11.

Three order replicas (ids 1..3) behind one front end (toystore_store.Cluster). Leaders are
killed with SIGKILL and restarted on their old ports; every wait is for a condition, with the
harness's generous deadline.
"""
import os
import random
import re
import tempfile
import threading
import time

from harness import WAIT, Client, TestCase, wait_for
from toystore_store import Cluster, buy, read, stock


def lines(path):
    return read(path).decode().splitlines()


def same_logs(cl):
    texts = {i: read(cl.logs[i]) for i in cl.ids}
    return len(set(texts.values())) == 1


class LeaderTest(TestCase):
    def test_a_follower_catching_up_is_not_left_out(self):
        """Right after a start the followers are catching up (they were never told of a
        leader here); the leader's first buy is answered only once both have it. A leader that
        answered without them lost the order when it died, and its successor gave the number
        again (test_toystore_up caught it under load)."""
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp, frontend=False) as cl:
            reps = [{"id": i, "url": f"http://127.0.0.1:{cl.ports[('order', i)]}", "live": True}
                    for i in cl.ids]
            c3 = Client(cl.replicas[3])
            r = c3.request("PUT", "/leader", json_body={"epoch": 1, "id": 3, "replicas": reps})
            self.assertEqual(r.status, 200, r.body)
            for i in (1, 2):
                self.assertFalse(cl.replica_ping(i)["ready"])
            r = buy(c3, "Tux", 2, path="/orders?epoch=1", request_id="first-buy")
            self.assertEqual(r.json(), {"data": {"order_number": 0}})
            for i in cl.ids:
                self.assertEqual([x.split(",")[:3] for x in lines(cl.logs[i])],
                                 [["0", "Tux", "2"]], f"replica {i}'s log")
            for i in (1, 2):
                d = cl.replica_ping(i)
                self.assertEqual((d["ready"], d["epoch"], d["leader"]), (True, 1, 3))
            c3.close()

    def test_highest_live_id_leads_and_every_replica_knows(self):
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            info = cl.ping()["orders"]
            self.assertEqual(info["leader"], 3)
            self.assertEqual([(r["id"], r["live"]) for r in info["replicas"]],
                             [(3, True), (2, True), (1, True)])
            for i in cl.ids:
                d = cl.replica_ping(i)
                self.assertEqual((d["leader"], d["epoch"], d["leading"]),
                                 (3, info["epoch"], i == 3))
            # a follower refuses a buy, naming the leader
            c = Client(cl.replicas[2])
            r = buy(c, "Tux", 1, request_id="direct-1")
            self.assertEqual((r.status, r.json()["error"]["message"]),
                             (421, "not the leader (replica 3 leads)"))
            c.close()
            # a buy through the front end is in every replica's log before it is answered
            fe = Client(cl.frontend)
            r = buy(fe, "Tux", 2)
            self.assertEqual(r.json(), {"data": {"order_number": 0}})
            for i in cl.ids:
                self.assertEqual(lines(cl.logs[i])[0].split(",")[:3], ["0", "Tux", "2"])
            self.assertTrue(same_logs(cl))
            # the front end's calls name the epoch: only its leader serves them
            e = info["epoch"]
            c2, c3 = Client(cl.replicas[2]), Client(cl.replicas[3])
            self.assertEqual(c2.get(f"/orders/0?epoch={e}").status, 421)
            self.assertEqual(c2.get("/orders/0").status, 200)  # a direct lookup: answered
            self.assertEqual(c3.get(f"/orders/0?epoch={e}").status, 200)
            self.assertEqual(c3.get(f"/orders/0?epoch={e + 1}").status, 421)
            self.assertEqual(buy(c3, "Tux", 1, path=f"/orders?epoch={e + 1}").status, 421)
            # a leader restarted before the front end noticed refuses until it is told
            cl.kill(3)
            cl.start_replica(3)
            c3.close()
            c3 = Client(cl.replicas[3])
            r = buy(c3, "Tux", 1, path=f"/orders?epoch={e}", request_id="fast-restart")
            self.assertEqual(r.status, 421)  # epoch e is over for it: a new one is coming
            self.assertEqual(read(cl.logs[3]).count(b"\n"), 1)
            c2.close()
            c3.close()
            fe.close()

    def test_killing_the_leader_moves_buys_to_the_next(self):
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            fe = Client(cl.frontend)
            self.assertEqual(buy(fe, "Uno", 1).status, 200)
            cl.kill(3)
            r = buy(fe, "Uno", 2)  # the front end finds 3 gone and retries on 2
            self.assertEqual((r.status, r.json()), (200, {"data": {"order_number": 1}}))
            self.assertEqual(cl.ping()["orders"]["leader"], 2)
            self.assertEqual(fe.get("/orders/0").json()["data"],
                             {"number": 0, "name": "Uno", "quantity": 1})
            self.assertEqual(read(cl.logs[1]), read(cl.logs[2]))
            self.assertEqual(len(lines(cl.logs[2])), 2)
            cl.kill(2)
            r = buy(fe, "Uno", 3)
            self.assertEqual((r.status, r.json()), (200, {"data": {"order_number": 2}}))
            self.assertEqual(cl.ping()["orders"]["leader"], 1)
            self.assertEqual(stock(fe, "Uno"), 94)
            fe.close()

    def test_a_returning_replica_catches_up(self):
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            fe = Client(cl.frontend)
            cl.kill(1)  # a follower misses orders 0..2
            for q in (1, 2, 3):
                self.assertEqual(buy(fe, "Risk", q).status, 200)
            cl.start_replica(1)
            wait_for(lambda: same_logs(cl), what="replica 1 caught up")
            self.assertEqual(len(lines(cl.logs[1])), 3)
            cl.kill(3)  # the leader misses orders 3..4, and comes back to lead
            for q in (4, 5):
                self.assertEqual(buy(fe, "Risk", q).status, 200)
            cl.start_replica(3)
            cl.wait_leader(3)
            self.assertTrue(same_logs(cl))
            r = buy(fe, "Risk", 6)
            self.assertEqual(r.json(), {"data": {"order_number": 5}})
            self.assertEqual([ln.split(",")[2] for ln in lines(cl.logs[1])],
                             ["1", "2", "3", "4", "5", "6"])
            self.assertTrue(same_logs(cl))
            fe.close()

    def test_a_tail_nobody_acknowledged_is_replaced(self):
        """A leader that wrote an order and died before propagating it: when it comes back,
        that line (never acknowledged) gives way to the order the new leader wrote there."""
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            fe = Client(cl.frontend)
            self.assertEqual(buy(fe, "Bird", 1).status, 200)
            cl.kill(3)
            with open(cl.logs[3], "a") as f:
                f.write("1,Bird,7,ghost-never-acknowledged\n2,Bird,7,ghost-2\n")
            r = buy(fe, "Clue", 1)
            self.assertEqual(r.json(), {"data": {"order_number": 1}})
            cl.start_replica(3)
            cl.wait_leader(3)
            self.assertTrue(same_logs(cl))
            self.assertNotIn(b"ghost", read(cl.logs[3]))
            self.assertEqual(fe.get("/orders/1").json()["data"]["name"], "Clue")
            self.assertEqual(buy(fe, "Bird", 1).json(), {"data": {"order_number": 2}})
            self.assertTrue(same_logs(cl))
            fe.close()

    def test_request_id_travels_with_the_order(self):
        """A buy retried on the new leader under the same request id answers the first
        outcome: the id came with the propagated order."""
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            c3, cat = Client(cl.replicas[3]), Client(cl.catalog)
            first = buy(c3, "Jenga", 4, request_id="retry-me")
            self.assertEqual(first.json(), {"data": {"order_number": 0}})
            c3.close()
            cl.kill(3)
            cl.wait_leader(2)
            c2 = Client(cl.replicas[2])
            again = buy(c2, "Jenga", 4, request_id="retry-me")
            self.assertEqual(again.json(), first.json())
            self.assertEqual(stock(cat, "Jenga"), 96)
            self.assertEqual(len(lines(cl.logs[2])), 1)
            c2.close()
            cat.close()


    def test_bad_replication_requests(self):
        """The internal endpoints refuse what they cannot use and change nothing."""
        with tempfile.TemporaryDirectory() as tmp, Cluster(tmp) as cl:
            fe = Client(cl.frontend)
            self.assertEqual(buy(fe, "Tux", 1).status, 200)
            before = read(cl.logs[1])
            epoch = cl.ping()["orders"]["epoch"]
            c = Client(cl.replicas[1])
            for body in (b"{", b"[]", b'{"epoch":0,"id":3}', b'{"epoch":1,"id":-1}',
                         b'{"epoch":9007199254740993,"id":3}', b'{"epoch":1,"id":3,"replicas":7}'):
                r = c.request("PUT", "/leader", body=body,
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, body)
            for path, method in (("/leader", "PUT"), ("/replicate", "POST")):
                r = c.request(method, path, body=b'{"epoch":99,"id":1}')  # no JSON type: 415
                self.assertEqual(r.status, 415, path)
            # an epoch the front end did not make: it chooses again, above it
            r = c.request("PUT", "/leader", json_body={"epoch": epoch + 5, "id": 3})
            self.assertEqual(r.status, 200)
            wait_for(lambda: cl.ping()["orders"]["epoch"] > epoch + 5, what="a newer epoch")
            cl.wait_leader(3)
            epoch = cl.ping()["orders"]["epoch"]
            r = c.request("PUT", "/leader", json_body={"epoch": epoch - 1, "id": 1})
            self.assertEqual(r.status, 409)  # an older epoch
            good = {"epoch": epoch, "leader": 3, "first": 0, "end": 1}
            for extra in ({"lines": "0,Tux,1\n"[:-1]}, {"lines": "zz\n"}, {"lines": 5},
                          {"lines": "1,Tux,1\n"}, {"lines": "0,Tux,1\n", "end": 0}):
                r = c.post("/replicate", json_body={**good, **extra})
                self.assertEqual(r.status, 400, extra)
            r = c.post("/replicate", json_body={**good, "epoch": epoch - 1, "lines": ""})
            self.assertEqual(r.status, 409)  # a deposed leader's batch
            for q in ("", "?from=x", "?from=-1"):
                self.assertEqual(c.get("/orders" + q).status, 400, q)
            d = c.get("/orders?from=99").json()["data"]
            self.assertEqual((d["first"], d["next"], d["lines"]), (99, 1, ""))
            self.assertEqual(read(cl.logs[1]), before)
            self.assertEqual(cl.replica_ping(1)["leader"], 3)
            self.assertTrue(same_logs(cl))
            c.close()
            fe.close()

TOYS = {"Tux": 6, "Whale": 5, "Uno": 4}


class JepsenTest(TestCase):
    def test_concurrent_buyers_through_two_leader_kills(self):
        """8 clients buy the last units of three toys (restock every second) while the leader
        is killed with SIGKILL and restarted twice. No client sees a failure, no toy is sold
        twice, no order number is given twice, every acknowledged order is in every log, and
        the logs end byte-identical."""
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "catalog.txt"), "w") as f:
                f.write("".join(f"{n} 9.99 {q}\n" for n, q in TOYS.items()))
            with Cluster(tmp, restock="1") as cl:
                self._run(cl)

    def _run(self, cl):
        acked, failures = [], []
        lock = threading.Lock()
        stop = threading.Event()
        end = time.monotonic() + 8 * WAIT

        def client(seed):
            rnd = random.Random(seed)
            c = Client(cl.frontend, timeout=2 * WAIT)
            try:
                while not stop.is_set() and time.monotonic() < end:
                    name, qty = rnd.choice(list(TOYS)), rnd.randint(1, 20)
                    try:
                        r = buy(c, name, qty)
                    except OSError as e:
                        with lock:
                            failures.append(f"{name}: {e!r}")
                        c.close()
                        continue
                    if r.status == 200:
                        with lock:
                            acked.append((r.json()["data"]["order_number"], name, qty))
                    elif not (r.status == 409 and r.json()["error"]["message"] == "out of stock"):
                        with lock:
                            failures.append(f"{name}: {r.status} {r.body[:200]!r}")
            finally:
                c.close()

        def more(n):
            with lock:
                start = len(acked)
            wait_for(lambda: len(acked) >= start + n, what=f"{n} more acknowledged buys")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        try:
            more(20)
            for _ in range(2):
                leader = wait_for(lambda: cl.ping()["orders"]["leader"], what="a leader")
                cl.kill(leader)
                more(20)  # on the next leader
                cl.start_replica(leader)
                cl.wait_leader(3)  # caught up, and the highest leads again
                more(20)
        finally:
            stop.set()
            for t in threads:
                t.join(3 * WAIT)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(failures, [])
        numbers = [n for n, _, _ in acked]
        self.assertEqual(len(numbers), len(set(numbers)))  # no order number twice
        wait_for(lambda: same_logs(cl), what="the replicas' logs identical")
        logs = {i: lines(cl.logs[i]) for i in cl.ids}
        for i in cl.ids:  # every acknowledged order, as acknowledged, in every log
            for n, name, qty in acked:
                self.assertEqual(logs[i][n].split(",")[:3], [str(n), name, str(qty)])
        self.assertEqual([int(x.split(",")[0]) for x in logs[1]], list(range(len(logs[1]))))
        # no oversell: initial + restocks - acknowledged = final, per toy (catalog stopped, so
        # neither its file nor its count of restocks moves any more)
        cl.frontend.stop()
        cl.catalog.stop()
        final = {}
        for ln in read(cl.db).decode().splitlines():
            name, _, qty = ln.split()
            final[name] = int(qty)
        for name, initial in TOYS.items():
            restocks = sum(1 for ln in cl.catalog.lines
                           if re.search(rf"restocked {name} to 100$", ln))
            sold = sum(q for _, n, q in acked if n == name)
            self.assertEqual(initial + 100 * restocks - sold, final[name],
                             (name, initial, restocks, sold, final[name]))
            self.assertGreater(restocks, 0, name)  # the last units were bought, again and again
