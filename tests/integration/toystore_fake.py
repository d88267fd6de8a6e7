"""toystore_fake.py - a small fake of the toy store's front end: its public API, in memory.

GET /products/<name>, POST /orders {"name","quantity"} and GET /orders/<n> exactly as the
handout (issue 11) gives them, on a ThreadingHTTPServer speaking HTTP/1.1 keep-alive on
127.0.0.1, port 0. It counts the TCP connections it accepts and records every request (which
connection, method, path, JSON body), so a test can see what a client really sent and on how
many connections. Misbehaviours for the client's error paths: `lie_about` (order numbers whose
lookup answers another quantity), `forget` (every order lookup answers 404), and `misbehave`:
"garbage" (200 with a body that is not JSON), "close" (closes the connection without an
answer), "nonhttp" (answers bytes that are not HTTP) or "huge" (200 with a 1 MiB body).

Only the standard library. `python3 toystore_fake.py` runs one and prints its URL.
"""
import http.server
import json
import threading
import urllib.parse

LAB3_TOYS = ["Tux", "Whale", "Elephant", "Bird", "Risk", "Sand", "Jenga", "Uno", "Pinball", "Clue"]


class FakeFrontend:
    def __init__(self, stock=None, out_of_stock_code=400, lie_about=(), forget=False,
                 misbehave=None):
        self.stock = dict(stock) if stock is not None else {t: 100 for t in LAB3_TOYS}
        self.out_of_stock_code = out_of_stock_code
        self.lie_about = set(lie_about)
        self.forget = forget
        self.misbehave = misbehave
        self.orders = []  # (name, quantity); the order number is the index
        self.requests = []  # (connection number, method, path, JSON body or None)
        self.connections = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many requests
            timeout = 60  # an idle connection's thread ends eventually
            disable_nagle_algorithm = True  # headers and body are two writes

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.connections += 1
                    self.conn = fake.connections

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._serve(self, "GET", None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                fake._serve(self, "POST", self.rfile.read(n))

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # K clients connect at once (the default backlog is 5)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def paths(self, method=None):
        with self.lock:
            return [p for (_, m, p, _) in self.requests if method is None or m == method]

    # --- the API ---

    def _serve(self, h, method, raw):
        body = None
        if raw is not None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with self.lock:
            self.requests.append((h.conn, method, h.path, body))
        if self.misbehave == "close":
            h.close_connection = True
            return
        if self.misbehave == "nonhttp":
            h.wfile.write(b"this is not HTTP\r\n\r\n")
            h.close_connection = True
            return
        if self.misbehave == "huge":
            return self._reply(h, 200, b" " * (1 << 20), "application/json")
        if self.misbehave == "garbage":
            return self._reply(h, 200, b"<html>not json", "text/html")
        path = urllib.parse.unquote(h.path)
        if method == "GET" and path.startswith("/products/"):
            return self._product(h, path[len("/products/"):])
        if method == "POST" and path == "/orders":
            return self._buy(h, body)
        if method == "GET" and path.startswith("/orders/"):
            return self._order(h, path[len("/orders/"):])
        return self._error(h, 404, "not found")

    def _product(self, h, name):
        with self.lock:
            if name not in self.stock:
                return self._error(h, 404, "product not found")
            data = {"name": name, "price": 25.99, "quantity": self.stock[name]}
        self._json(h, 200, {"data": data})

    def _buy(self, h, body):
        if (not isinstance(body, dict) or not isinstance(body.get("name"), str) or
                not isinstance(body.get("quantity"), int) or body["quantity"] < 1):
            return self._error(h, 400, "bad request: name and a positive quantity expected")
        name, quantity = body["name"], body["quantity"]
        with self.lock:
            if name not in self.stock:
                return self._error(h, 404, "product not found")
            if self.stock[name] < quantity:
                return self._error(h, self.out_of_stock_code, "out of stock")
            self.stock[name] -= quantity
            self.orders.append((name, quantity))
            number = len(self.orders) - 1
        self._json(h, 200, {"data": {"order_number": number}})

    def _order(self, h, text):
        with self.lock:
            if self.forget or not text.isdigit() or int(text) >= len(self.orders):
                return self._error(h, 404, "order not found")
            number = int(text)
            name, quantity = self.orders[number]
        if number in self.lie_about:
            quantity += 1
        self._json(h, 200, {"data": {"number": number, "name": name, "quantity": quantity}})

    def _error(self, h, code, message):
        self._json(h, code, {"error": {"code": code, "message": message}})

    def _json(self, h, code, obj):
        self._reply(h, code, json.dumps(obj).encode(), "application/json")

    @staticmethod
    def _reply(h, code, data, ctype):
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


if __name__ == "__main__":
    import signal
    fake = FakeFrontend()
    print(f"listening on {fake.url}", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    fake.close()
