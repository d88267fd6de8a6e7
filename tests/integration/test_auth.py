"""test_auth.py - who may do what: tokens and scopes, the first-start link, sessions and CSRF,
trusted networks for result ingest, foreign pages, JSON-only writes, --private, failed attempts.

Every API here runs on 127.0.0.1; a second loopback address (127.0.0.2) plays another client.
"""
import http.client
import json
import os
import re
import sqlite3
import tempfile
import uuid

from harness import AUTH, TOKEN, WAIT, Client, TestCase, api, run

T0 = 1_767_225_600_000


def result(**over):
    r = {"id": str(uuid.uuid4()), "time": T0, "status": "ok", "probe": "p", "engine": "dummy",
         "download_bps": 1e8, "upload_bps": 2e7, "ping_ms": 9.0}
    r.update(over)
    return r


def request(svc, method, path, body=None, headers=None, source="127.0.0.1"):
    """One request on its own connection from the loopback address source."""
    conn = http.client.HTTPConnection(svc.host, svc.port, timeout=WAIT,
                                      source_address=(source, 0))
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def no_operator(**env):
    """The environment of an API without the operator's token."""
    return {"DSTMC_TOKEN": "", **env}


class FirstStartTest(TestCase):
    def test_the_link_is_printed_once_and_logs_in(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            svc = api("--db", db, env=no_operator())
            try:
                line = svc.wait_line(r"#token=dstmc_")
                link = re.search(r"(http://\S+)/#token=(dstmc_[0-9a-f_]+)", line)
                self.assertTrue(link, line)
                self.assertEqual(link.group(1), svc.url)
                tok = link.group(2)
                # the link's token opens a session whose cookie and CSRF token can write
                st, hs, body = request(svc, "POST", "/api/v1/session", {"token": tok})
                self.assertEqual(st, 200, body)
                cookie = hs["set-cookie"]
                # named by the port: two dstmc on one host keep their own logins
                self.assertTrue(cookie.startswith(f"dstmc_session_{svc.port}=dstmc_"), cookie)
                for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"):
                    self.assertIn(attr, cookie)
                self.assertNotIn("Secure", cookie)  # plain http here
                me = json.loads(body)
                self.assertEqual((me["authenticated"], me["name"], me["scopes"], me["via"]),
                                 (True, "first-start", ["admin"], "session"))
                sess = {"Cookie": cookie.split(";")[0], "X-CSRF-Token": me["csrf"]}
                st, _, body = request(svc, "POST", "/api/v1/schedules/pause", None,
                                      {**sess, "Content-Type": "application/json"})
                self.assertEqual(st, 200, body)
            finally:
                svc.stop()
            # only the hash is stored: the secret appears nowhere in the database
            secret = tok.split("_")[2]
            with sqlite3.connect(os.path.join(d, "dstmc.db")) as con:
                rows = con.execute("SELECT * FROM credentials").fetchall()
            self.assertTrue(rows)
            self.assertNotIn(secret, repr(rows))
            code, out, _ = run("token", "list", "--db", db, "--json")
            self.assertEqual(code, 0)
            self.assertEqual([(t["name"], t["scopes"]) for t in json.loads(out)],
                             [("first-start", "admin")])
            # a second start: a token exists, no new link
            svc = api("--db", db, env=no_operator())
            try:
                self.assertFalse([x for x in svc.lines if "#token=" in x])
                self.assertEqual(request(svc, "GET", "/ping")[0], 200)
                self.assertFalse([x for x in svc.lines if "#token=" in x])
            finally:
                svc.stop()

    def test_no_link_with_an_operator_token(self):
        with api() as svc:  # DSTMC_TOKEN = TOKEN
            self.assertEqual(request(svc, "GET", "/ping")[0], 200)
            self.assertFalse([x for x in svc.lines if "#token=" in x])


class OperatorTokenTest(TestCase):
    def test_from_the_environment_or_a_file_never_argv(self):
        with api() as svc:
            st, _, _ = request(svc, "POST", "/api/v1/run", {}, AUTH)
            self.assertEqual(st, 202)
            with open(f"/proc/{svc.proc.pid}/cmdline", "rb") as f:
                self.assertNotIn(TOKEN.encode(), f.read())
        code, _, err = run("api", "--check-config", "--token", TOKEN)
        self.assertEqual(code, 2)
        self.assertIn("--token: a secret is not taken on the command line", err)
        self.assertIn("DSTMC_TOKEN", err)
        self.assertIn("--token-file", err)
        for service in ("up", "logger", "run", "scheduler"):
            code, _, err = run(service, "--check-config", f"--token={TOKEN}")
            self.assertEqual(code, 2, service)
            self.assertIn("a secret is not taken on the command line", err, service)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "token")
            with open(path, "w") as f:
                f.write("from-a-file-0123456789\n")
            with api("--token-file", path, env=no_operator()) as svc:
                auth = {"Authorization": "Bearer from-a-file-0123456789"}
                self.assertEqual(request(svc, "POST", "/api/v1/run", {}, auth)[0], 202)
                self.assertEqual(request(svc, "POST", "/api/v1/run", {}, AUTH)[0], 401)
            for args, env, needle in (
                    (["--token-file", os.path.join(d, "missing")], no_operator(),
                     "--token-file: "),
                    (["--token-file", path], {}, "not both"),
                    ([], {"DSTMC_TOKEN": "short"}, "16 to 4096 printable characters")):
                code, _, err = run("api", "--check-config", *args,
                                   env={"DSTMC_TOKEN": TOKEN, **env})
                self.assertEqual(code, 2, args)
                self.assertIn(needle, err, args)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_clients_send_theirs(self):
        with api("--trust-ingest", "none") as svc:
            code, out, err = run("logger", "--once", "--dummy", "--api", svc.url)
            self.assertNotEqual(code, 0)
            code, out, err = run("logger", "--once", "--dummy", "--api", svc.url,
                                 env={"DSTMC_TOKEN": TOKEN})
            self.assertEqual(code, 0, out + err)
            code, out, err = run("run", "--target", "dummy:", "--api", svc.url,
                                 env={"DSTMC_TOKEN": TOKEN})
            self.assertEqual(code, 0, out + err)
            c = Client(svc)
            self.assertEqual(len(c.get("/api/v1/results").json()["results"]), 2)
            c.close()


class ScopesTest(TestCase):
    def test_each_scope_and_revoke(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            toks = {}
            for scope in ("read", "ingest", "admin", "read,ingest"):
                code, out, err = run("token", "new", "--db", db, "--name", f"t {scope}",
                                     "--scope", scope)
                self.assertEqual(code, 0, err)
                self.assertRegex(out.strip(), r"^dstmc_[0-9a-f]{12}_[0-9a-f]{64}$")
                self.assertIn("shown only this once", err)
                self.assertNotIn(out.strip(), err)
                toks[scope] = out.strip()
            with api("--db", db, "--trust-ingest", "none", "--private") as svc:
                def do(scope, method, path, body=None):
                    h = {"Authorization": f"Bearer {toks[scope]}"} if scope else {}
                    return request(svc, method, path, body, h)[0]
                sched = {"schedules": [{"cron": "@hourly"}]}
                want = {  # scope: (read, ingest, admin)
                    "read": (200, 403, 403), "ingest": (403, 201, 403),
                    "admin": (200, 201, 200), "read,ingest": (200, 201, 403), None: (401, 401, 401)}
                for scope, (r, i, a) in want.items():
                    self.assertEqual(do(scope, "GET", "/api/v1/results"), r, scope)
                    self.assertEqual(do(scope, "POST", "/api/v1/results", result()), i, scope)
                    self.assertEqual(do(scope, "PUT", "/api/v1/schedules", sched), a, scope)
                # revoked: refused at once, by the running API
                tid = toks["admin"].split("_")[1]
                code, _, err = run("token", "revoke", tid, "--db", db)
                self.assertEqual(code, 0, err)
                self.assertEqual(do("admin", "GET", "/api/v1/results"), 401)
                self.assertEqual(do("read", "GET", "/api/v1/results"), 200)
            code, out, _ = run("token", "list", "--db", db, "--json")
            listed = {t["name"]: t for t in json.loads(out)}
            self.assertEqual(set(listed), {"t read", "t ingest", "t read,ingest"})
            self.assertTrue(listed["t read"]["last_used"])  # its uses are noted
            code, _, err = run("token", "revoke", tid, "--db", db)
            self.assertEqual(code, 1)
            self.assertIn("no token or session", err)

    def test_cli_errors(self):
        for args, needle in ((["new", "--scope", "admin"], "--name"),
                             (["new", "--name", "x", "--scope", "write"], "'write' is not a scope"),
                             (["revoke"], "which one"), (["frobnicate"], "usage"), ([], "usage")):
            code, out, err = run("token", *args, "--db", "sqlite::memory:")
            self.assertEqual(code, 2, args)
            self.assertIn(needle, err, args)


class TrustedIngestTest(TestCase):
    def test_loopback_posts_results_without_a_token(self):
        """Unmodified clients of the original API keep working where the operator allows
        them; every other write needs a credential from everywhere."""
        with api() as svc:
            self.assertEqual(request(svc, "POST", "/api/v1/results", result())[0], 201)
            self.assertEqual(request(svc, "POST", "/api/v1/probes/p/heartbeat", {})[0], 204)
            original = {"user": "teodoran", "device": 1, "timestamp": "2026-01-01T00:00:00Z",
                        "data": {"speeds": {"download": 100.5, "upload": 20.25},
                                 "client": {"ip": "10.0.0.2", "latitude": 59.9,
                                            "longitude": 10.7, "isp": "ISP", "country": "NO"},
                                 "server": {"host": "host.example", "latitude": 59.9, "longitude": 10.7,
                                            "country": "NO", "distance": 10, "ping": 9,
                                            "id": 1}}}
            st, _, body = request(svc, "POST", "/SpeedTest", original, source="127.0.0.2")
            self.assertEqual(st, 200, body)
            for method, path, body in (("POST", "/api/v1/run", {}),
                                       ("PUT", "/api/v1/schedules", {"schedules": []}),
                                       ("POST", "/api/v1/schedules/pause", None)):
                st, hs, _ = request(svc, method, path, body)
                self.assertEqual(st, 401, path)
                self.assertEqual(hs.get("www-authenticate"), "Bearer")
        for trust in ("none", "10.0.0.0/8,fd00::/8"):
            with api("--trust-ingest", trust) as svc:
                self.assertEqual(request(svc, "POST", "/api/v1/results", result())[0], 401)
                self.assertEqual(request(svc, "POST", "/api/v1/results", result(), AUTH)[0], 201)
        with api("--trust-ingest", "127.0.0.2") as svc:
            self.assertEqual(request(svc, "POST", "/api/v1/results", result())[0], 401)
            self.assertEqual(request(svc, "POST", "/api/v1/results", result(),
                                     source="127.0.0.2")[0], 201)
        code, _, err = run("api", "--check-config", "--trust-ingest", "10.0.0.0/33")
        self.assertEqual(code, 2)
        self.assertIn("--trust-ingest: '10.0.0.0/33' has a prefix length out of range", err)


class SessionTest(TestCase):
    def login(self, svc, token=TOKEN, headers=None):
        st, hs, body = request(svc, "POST", "/api/v1/session", {"token": token}, headers)
        self.assertEqual(st, 200, body)
        me = json.loads(body)
        return {"Cookie": hs["set-cookie"].split(";")[0]}, me["csrf"], hs["set-cookie"]

    def test_csrf_logout_and_revocation(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            with api("--db", db) as svc:
                cookie, csrf, _ = self.login(svc)
                st, _, body = request(svc, "GET", "/api/v1/session", None, cookie)
                me = json.loads(body)
                self.assertEqual((me["authenticated"], me["name"], me["csrf"]),
                                 (True, "operator", csrf))
                sched = {"schedules": [{"cron": "@daily"}]}
                self.assertEqual(request(svc, "PUT", "/api/v1/schedules", sched, cookie)[0], 403)
                self.assertEqual(request(svc, "PUT", "/api/v1/schedules", sched,
                                         {**cookie, "X-CSRF-Token": "0" * 64})[0], 403)
                self.assertEqual(request(svc, "PUT", "/api/v1/schedules", sched,
                                         {**cookie, "X-CSRF-Token": csrf})[0], 200)
                # the cookie alone changes nothing that needs a credential
                self.assertEqual(request(svc, "POST", "/api/v1/run", {}, cookie)[0], 403)
                # a session is not a bearer token, a token of another kind is no login
                sess_text = cookie["Cookie"].split("=", 1)[1]
                self.assertEqual(request(svc, "POST", "/api/v1/run", {},
                                         {"Authorization": f"Bearer {sess_text}"})[0], 401)
                self.assertEqual(request(svc, "POST", "/api/v1/session",
                                         {"token": sess_text})[0], 401)
                # logging out ends it: the cookie is cleared and no longer works
                st, hs, _ = request(svc, "DELETE", "/api/v1/session", None, cookie)
                self.assertEqual(st, 204)
                self.assertIn("Max-Age=0", hs["set-cookie"])
                self.assertEqual(request(svc, "PUT", "/api/v1/schedules", sched,
                                         {**cookie, "X-CSRF-Token": csrf})[0], 401)
                st, _, body = request(svc, "GET", "/api/v1/session", None, cookie)
                self.assertFalse(json.loads(body)["authenticated"])
                # revoking a token ends the sessions opened with it
                code, tok, _ = run("token", "new", "--db", db, "--name", "ui", "--scope", "admin")
                cookie, csrf, _ = self.login(svc, tok.strip())
                w = {**cookie, "X-CSRF-Token": csrf}
                self.assertEqual(request(svc, "POST", "/api/v1/run", {}, w)[0], 202)
                run("token", "revoke", tok.split("_")[1], "--db", db)
                self.assertEqual(request(svc, "POST", "/api/v1/run", {}, w)[0], 401)
                # behind a TLS proxy the cookie is Secure
                _, _, raw = self.login(svc, headers={"X-Forwarded-Proto": "https"})
                self.assertIn("; Secure", raw)
                self.assertEqual(request(svc, "POST", "/api/v1/session", {"token": "nope"})[0],
                                 401)
                self.assertEqual(request(svc, "POST", "/api/v1/session", {"tok": "x"})[0], 400)


class ForeignPageTest(TestCase):
    def test_writes_from_other_origins_and_not_json_are_refused(self):
        with api("--cors-origin", "http://dash.example:8088") as svc:
            own = f"http://127.0.0.1:{svc.port}"
            body = {"schedules": [{"cron": "@hourly"}]}
            for h in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                      {"Origin": f"http://127.0.0.1:{svc.port + 1}", "Sec-Fetch-Site": "same-site"},
                      {"Sec-Fetch-Site": "cross-site"}):
                st, _, text = request(svc, "PUT", "/api/v1/schedules", body, {**AUTH, **h})
                self.assertEqual(st, 403, h)
                self.assertIn("another origin", json.loads(text)["error"]["message"])
                # trusted ingest does not help a foreign page either
                self.assertEqual(request(svc, "POST", "/api/v1/results", result(), h)[0], 403)
            svc.wait_line(r"warn  api: refused PUT /api/v1/schedules from a page of "
                          r"http://evil\.example")
            for h in ({"Origin": own, "Sec-Fetch-Site": "same-origin"},
                      {"Origin": "http://dash.example:8088", "Sec-Fetch-Site": "cross-site"}, {}):
                st, hs, _ = request(svc, "PUT", "/api/v1/schedules", body, {**AUTH, **h})
                self.assertEqual(st, 200, h)
            st, hs, _ = request(svc, "GET", "/api/v1/schedules", None,
                                {"Origin": "http://dash.example:8088"})
            self.assertEqual(hs.get("access-control-allow-origin"), "http://dash.example:8088")
            self.assertEqual(hs.get("access-control-allow-credentials"), "true")
            st, hs, _ = request(svc, "GET", "/api/v1/schedules", None,
                                {"Origin": "http://evil.example"})
            self.assertIsNone(hs.get("access-control-allow-origin"))
            pre = {"Access-Control-Request-Method": "PUT",
                   "Access-Control-Request-Headers": "content-type, x-csrf-token"}
            st, hs, _ = request(svc, "OPTIONS", "/api/v1/schedules", None,
                                {**pre, "Origin": "http://dash.example:8088"})
            self.assertIn("PUT", hs.get("access-control-allow-methods", ""))
            st, hs, _ = request(svc, "OPTIONS", "/api/v1/schedules", None,
                                {**pre, "Origin": "http://evil.example"})
            self.assertEqual(st, 204)
            self.assertIsNone(hs.get("access-control-allow-origin"))
            self.assertIsNone(hs.get("access-control-allow-methods"))
            # the simple requests a page can send without asking: not JSON, refused
            for ctype, raw in (("text/plain", json.dumps(result())),
                               ("application/x-www-form-urlencoded", "a=1"),
                               ("multipart/form-data; boundary=x", "--x--")):
                for path in ("/api/v1/results", "/SpeedTest", "/api/v1/run"):
                    st, _, _ = request(svc, "POST", path, raw.encode(),
                                       {**AUTH, "Content-Type": ctype})
                    self.assertEqual(st, 415, (ctype, path))
            # a body without a type is refused too; a write without a body needs none
            self.assertEqual(request(svc, "POST", "/api/v1/run", b"{}", AUTH)[0], 415)
            self.assertEqual(request(svc, "POST", "/api/v1/schedules/pause", None, AUTH)[0], 200)
        code, _, err = run("api", "--check-config", "--cors-origin", "https://x/path")
        self.assertEqual(code, 2)
        self.assertIn("--cors-origin: origin 'https://x/path' must not have a path", err)


class PrivateTest(TestCase):
    def test_reads_need_a_credential(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            code, read_tok, _ = run("token", "new", "--db", db, "--name", "r", "--scope", "read")
            with api("--db", db, "--private") as svc:
                rd = {"Authorization": f"Bearer {read_tok.strip()}"}
                for path in ("/api/v1/results", "/api/v1/series", "/api/v1/probes",
                             "/api/v1/schedules", "/SpeedTest", "/metrics", "/api/v1/events",
                             "/api/v1/results.csv"):
                    self.assertEqual(request(svc, "GET", path)[0], 401, path)
                    if path != "/api/v1/events":
                        self.assertEqual(request(svc, "GET", path, None, rd)[0], 200, path)
                for path in ("/ping", "/healthz", "/readyz", "/SpeedTest/ping", "/",
                             "/app.js", "/api/v1/session", "/api/v1/openapi.json"):
                    self.assertEqual(request(svc, "GET", path)[0], 200, path)
                st, _, body = request(svc, "GET", "/api/v1/session")
                self.assertEqual(json.loads(body), {"authenticated": False, "private": True})


class FailedAttemptsTest(TestCase):
    def test_ten_failures_a_minute_then_429(self):
        with api() as svc:
            bad = "dstmc_0123456789ab_" + "f" * 64
            for _ in range(10):
                st, _, _ = request(svc, "GET", "/api/v1/results", None,
                                   {"Authorization": f"Bearer {bad}"})
                self.assertEqual(st, 401)
            # now even the right token from that address waits; logins too
            st, hs, body = request(svc, "POST", "/api/v1/run", {}, AUTH)
            self.assertEqual(st, 429, body)
            self.assertGreater(int(hs["retry-after"]), 0)
            self.assertEqual(request(svc, "POST", "/api/v1/session", {"token": TOKEN})[0], 429)
            # reads without a credential go on; another address is not held up
            self.assertEqual(request(svc, "GET", "/api/v1/results")[0], 200)
            self.assertEqual(request(svc, "POST", "/api/v1/run", {}, AUTH,
                                     source="127.0.0.2")[0], 202)
            svc.wait_line(r"refused a token from 127\.0\.0\.1 for GET /api/v1/results: "
                          r"unknown or revoked \(1 in the last minute\)")
            svc.wait_line(r"127\.0\.0\.1 failed 10 times within a minute")
            self.assertFalse([x for x in svc.lines if bad in x or TOKEN in x])
