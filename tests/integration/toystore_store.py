"""toystore_store.py - the toy store's tiers as test fixtures: Store (one order replica) and
Cluster (several, with the front end choosing the leader), and small request helpers.

Every service listens on 127.0.0.1:0; a tier that restarts takes its old port again, so the
others' URLs stay right.
"""
import os
import signal

from harness import Client, Service, wait_for


class Store:
    """A catalog, one order replica and a front end over files in one directory."""

    def __init__(self, tmp, lab2=False, restock="0", cache="on", start=True):
        self.tmp = tmp
        self.db = os.path.join(tmp, "catalog.txt")
        self.log = os.path.join(tmp, "orders.txt")
        self.lab2, self.restock, self.cache = lab2, restock, cache
        self.catalog = self.order = self.frontend = None
        self.ports = {}
        if start:
            try:
                self.start_catalog()
                self.start_order()
                self.start_frontend()
            except BaseException:
                self.stop(check=False)  # what did start: no process outlives a failed test
                raise

    def _listen(self, tier):
        return f"127.0.0.1:{self.ports.get(tier, 0)}"

    def start_catalog(self):
        args = ["--listen", self._listen("catalog"), "--db", self.db,
                "--restock-interval", self.restock]
        self.catalog = Service("toystore", "catalog", *args, *(["--lab2"] if self.lab2 else []))
        self.ports["catalog"] = self.catalog.port
        return self.catalog

    def start_order(self):
        self.order = Service("toystore", "order", "--listen", self._listen("order"), "--id", "1",
                             "--db", self.log, "--catalog", self.catalog_url)
        self.ports["order"] = self.order.port
        return self.order

    def start_frontend(self):
        self.frontend = Service("toystore", "frontend", "--listen", self._listen("frontend"),
                                "--catalog", self.catalog_url,
                                "--order", f"1=http://127.0.0.1:{self.ports['order']}",
                                "--cache", self.cache)
        self.ports["frontend"] = self.frontend.port
        if self.cache == "on":
            wait_for(lambda: self.ping()["cache"]["events"], what="the front end's event stream")
        return self.frontend

    @property
    def catalog_url(self):
        return f"http://127.0.0.1:{self.ports['catalog']}"

    def ping(self):
        c = Client(self.frontend)
        try:
            return c.get("/ping").json()["data"]
        finally:
            c.close()

    def stop(self, check=True):
        for s in (self.frontend, self.order, self.catalog):
            if s and s.proc.poll() is None:
                s.stop(check=check)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stock(client, name):
    r = client.get(f"/products/{name}")
    return r.json()["data"]["quantity"] if r.status == 200 else None


def buy(client, name, quantity, path="/orders", **extra):
    return client.post(path, json_body={"name": name, "quantity": quantity, **extra})


def read(path):
    with open(path, "rb") as f:
        return f.read()



class Cluster(Store):
    """A catalog, replicas order replicas (ids 1..replicas, each its own log) and a front end
    that health-checks them; started once a leader is chosen and every replica knows it."""

    def __init__(self, tmp, replicas=3, restock="0", cache="on", timeout_ms="60000",
                 frontend=True):
        super().__init__(tmp, restock=restock, cache=cache, start=False)
        self.ids = list(range(1, replicas + 1))
        self.logs = {i: os.path.join(tmp, f"orders{i}.txt") for i in self.ids}
        self.replicas = {}
        self.timeout_ms = timeout_ms
        try:
            self.start_catalog()
            for i in self.ids:
                self.start_replica(i)
            if frontend:  # without one, the test plays the front end (PUT /leader)
                self.start_frontend()
                self.wait_leader(max(self.ids))
        except BaseException:
            self.stop(check=False)
            raise

    def start_replica(self, i):
        # a follower is left out of an acknowledgement only when it dies, not when a loaded
        # box makes its fsync slow
        svc = Service("toystore", "order", "--listen", self._listen(("order", i)), "--id", str(i),
                      "--db", self.logs[i], "--catalog", self.catalog_url,
                      "--peer-timeout-ms", "30000")
        self.replicas[i] = svc
        self.ports[("order", i)] = svc.port
        return svc

    def start_frontend(self):
        orders = []
        for i in self.ids:
            orders += ["--order", f"{i}=http://127.0.0.1:{self.ports[('order', i)]}"]
        self.frontend = Service("toystore", "frontend", "--listen", self._listen("frontend"),
                                "--catalog", self.catalog_url, *orders, "--cache", self.cache,
                                "--timeout-ms", self.timeout_ms, "--health-interval-ms", "100")
        self.ports["frontend"] = self.frontend.port
        if self.cache == "on":
            wait_for(lambda: self.ping()["cache"]["events"], what="the front end's event stream")
        return self.frontend

    def kill(self, i):
        self.replicas[i].stop(sig=signal.SIGKILL)

    def replica_ping(self, i):
        c = Client(self.replicas[i])
        try:
            return c.get("/ping").json()["data"]
        finally:
            c.close()

    def live(self):
        return [i for i, s in self.replicas.items() if s.proc.poll() is None]

    def settled(self, want):
        """The front end has want lead, and every live replica is caught up and knows it."""
        orders = self.ping()["orders"]
        if orders["leader"] != want:
            return False
        for i in self.live():
            d = self.replica_ping(i)
            if (d["leader"], d["ready"], d["epoch"]) != (want, True, orders["epoch"]):
                return False
        return self.replica_ping(want)["leading"]

    def wait_leader(self, want):
        wait_for(lambda: self.settled(want), what=f"replica {want} leading, known to all")

    def stop(self, check=True):
        for s in [self.frontend, *self.replicas.values(), self.catalog]:
            if s and s.proc.poll() is None:
                s.stop(check=check)
