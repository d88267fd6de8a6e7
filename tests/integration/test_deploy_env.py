"""test_deploy_env.py - what deployments set in the environment: basePath behind the workshop's
ingress (Kubernetes) and STATE_DIRECTORY (systemd's StateDirectory=).

basePath: the ingress strips /backend before the API sees a request, so the Swagger document's
servers and the /swagger redirect must put it back, as the original API's PreSerializeFilter did.
STATE_DIRECTORY: without --db (or DSTMC_DB) the database lands in the state directory, and the
probe's outbox too.
"""
import os
import tempfile

from harness import Client, Service, TestCase, run

LO0 = "127.0.0.1:0"


def api(env, *args):
    d = tempfile.mkdtemp(prefix="dstmc-env-")
    base = {"DSTMC_DB": f"sqlite:{d}/db"}
    base.update(env)
    return Service("api", "--listen", LO0, *args, env=base)


class BasePathTest(TestCase):
    def check_prefixed(self, svc, prefix):
        c = Client(svc)
        try:
            r = c.get("/swagger")
            self.assertEqual(r.status, 301)
            self.assertEqual(r.header("location"), f"{prefix}/swagger/")
            for path in ("/api/v1/openapi.json", "/swagger/v1/swagger.json"):
                doc = c.get(path).json()
                self.assertEqual([s["url"] for s in doc["servers"]], [prefix], path)
                self.assertIn("/SpeedTest", doc["paths"])  # the whole document, not a stub
            self.assertEqual(c.get("/swagger/").status, 200)
        finally:
            c.close()

    def test_original_env_name(self):
        with api({"basePath": "/backend"}) as svc:
            self.check_prefixed(svc, "/backend")

    def test_twin_wins_and_trailing_slash(self):
        with api({"basePath": "/ignored", "DSTMC_BASE_PATH": "/api/speed/"}) as svc:
            self.check_prefixed(svc, "/api/speed")

    def test_root_keeps_the_relative_document(self):
        # the original's default "/": nothing changes (relative servers work behind any prefix)
        with api({"basePath": "/"}) as svc:
            c = Client(svc)
            try:
                self.assertEqual(c.get("/swagger").header("location"), "/swagger/")
                doc = c.get("/api/v1/openapi.json").json()
                self.assertEqual(doc["servers"][0]["url"], "../..")
            finally:
                c.close()

    def test_bad_values_are_refused(self):
        for bad in ("backend", "/a b", "/x?y", '/"'):
            rc, _, err = run("api", "--listen", LO0, "--db", "sqlite::memory:",
                             "--check-config", env={"basePath": bad})
            self.assertEqual(rc, 2, bad)
            self.assertIn("--base-path (from basePath)", err, bad)


class WebHealthTest(TestCase):
    def test_web_answers_healthz_for_its_probes(self):
        with Service("web", "--listen", LO0, env={"SpeedTestApiBase": "/backend"}) as svc:
            c = Client(svc)
            try:
                r = c.get("/healthz")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["status"], "ok")
                self.assertEqual(c.get("/configuration.json").json(),
                                 {"speedTestApiBase": "/backend"})
            finally:
                c.close()


class StateDirectoryTest(TestCase):
    def test_api_database_defaults_to_the_state_directory(self):
        d = tempfile.mkdtemp(prefix="dstmc-state-")
        env = {"STATE_DIRECTORY": d}
        with Service("api", "--listen", LO0, env=env) as svc:
            self.assertEqual(Client(svc).get("/readyz").status, 200)
        self.assertTrue(os.path.exists(os.path.join(d, "dstmc.db")))

    def test_db_flag_and_twin_win(self):
        d = tempfile.mkdtemp(prefix="dstmc-state-")
        other = tempfile.mkdtemp(prefix="dstmc-other-")
        env = {"STATE_DIRECTORY": d, "DSTMC_DB": f"sqlite:{other}/env.db"}
        with Service("api", "--listen", LO0, env=env):
            pass
        self.assertFalse(os.path.exists(os.path.join(d, "dstmc.db")))
        self.assertTrue(os.path.exists(os.path.join(other, "env.db")))

    def test_a_missing_state_directory_is_named(self):
        rc, _, err = run("api", "--listen", LO0, "--check-config",
                         env={"STATE_DIRECTORY": "/nonexistent/dstmc"})
        self.assertEqual(rc, 2)
        self.assertIn("--db (from STATE_DIRECTORY)", err)

    def test_token_and_logger_use_it_too(self):
        d = tempfile.mkdtemp(prefix="dstmc-state-")
        env = {"STATE_DIRECTORY": d}
        rc, out, err = run("token", "new", "--name", "probe", "--scope", "ingest", env=env)
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(os.path.join(d, "dstmc.db")))
        # a --once run whose upload fails keeps its result in the state directory's outbox
        rc, out, err = run("logger", "--once", "--target", "dummy:", "--api",
                           "http://127.0.0.1:1", env=env)
        self.assertEqual(rc, 1)
        kept = os.listdir(os.path.join(d, "outbox"))
        self.assertEqual(len([k for k in kept if k.endswith(".json")]), 1, kept)
