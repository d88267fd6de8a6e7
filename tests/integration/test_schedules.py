"""test_schedules.py - the schedules in the store: /api/v1/schedules and `dstmc up` following them.

`up` runs on an in-memory store (or a temp SQLite file) with the dummy engine and no test
server listeners; everything is on 127.0.0.1.
"""
import datetime
import json
import os
import tempfile

from harness import AUTH, TOKEN, Client, Service, SSEReader, TestCase, wait_for, with_token

PATH = "/api/v1/schedules"
UTC_MS = "%Y-%m-%dT%H:%M:%S.000Z"


def up(*extra, db="sqlite::memory:"):
    return Service("up", "--db", db, "--listen", "127.0.0.1:0", "--target", "dummy:",
                   "--server-http", "off", "--server-iperf3", "off", *extra,
                   env=with_token({"TZ": "UTC"}))


def next_runs(svc):
    return [x for x in svc.lines if "next run at" in x]


class SchedulesTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.svc = up()
        cls.c = Client(cls.svc, token=TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.svc.stop()

    def setUp(self):
        r = self.c.request("PUT", PATH, json_body={"schedules": [{"cron": "*/15 * * * *"}],
                                                   "paused": False})
        self.assertEqual(r.status, 200, r.text)

    def put(self, body, status=200):
        r = self.c.request("PUT", PATH, json_body=body)
        self.assertEqual(r.status, status, r.text)
        return r.json()

    def test_default_shape_is_seeded_from_the_schedule_flag(self):
        before = datetime.datetime.now(datetime.timezone.utc)
        svc = up()
        try:
            got = Client(svc).get(PATH).json()
        finally:
            svc.stop()
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(set(got), {"paused", "schedules", "version"})
        self.assertIs(got["paused"], False)
        (s,) = got["schedules"]
        self.assertEqual(set(s), {"id", "cron", "target", "probe", "enabled", "next_run"})
        self.assertEqual((s["id"], s["cron"], s["target"], s["probe"], s["enabled"]),
                         ("1", "*/15 * * * *", None, None, True))
        nxt = datetime.datetime.strptime(s["next_run"], UTC_MS).replace(
            tzinfo=datetime.timezone.utc)
        self.assertEqual(nxt.minute % 15, 0)
        # the next quarter after a moment between before and after (however long that took)
        self.assertTrue(before < nxt <= after + datetime.timedelta(minutes=15), (before, nxt))

    def test_put_replaces_and_get_reflects_it(self):
        body = {"schedules": [{"cron": "0 9 * * MON-FRI", "target": "dummy:", "probe": "den"},
                              {"cron": "@daily", "enabled": False},
                              {"cron": "30 * * * *", "target": None}]}
        put = self.put(body)
        got = self.c.get(PATH).json()
        self.assertEqual(put, got)
        self.assertEqual([s["id"] for s in got["schedules"]], ["1", "2", "3"])
        a, b, c = got["schedules"]
        self.assertEqual((a["cron"], a["target"], a["probe"], a["enabled"]),
                         ("0 9 * * MON-FRI", "dummy:", "den", True))
        self.assertRegex(a["next_run"], r"T09:00:00\.000Z$")
        self.assertIsNone(b["next_run"])  # disabled
        self.assertIs(b["enabled"], False)
        self.assertRegex(c["next_run"], r"T\d\d:30:00\.000Z$")
        self.assertIs(got["paused"], False)

    def test_bad_input_is_400_naming_the_field_and_changes_nothing(self):
        before = self.c.get(PATH).json()
        many = {"schedules": [{"cron": "@hourly"}] * 33}
        for body, needle in (
                ({"schedules": [{"cron": "@hourly"}, {"cron": "61 * * * *"}]},
                 "schedules[1].cron: minute: '61' is out of 0-59"),
                ({"schedules": [{"cron": "0 0 30 2 *"}]}, "schedules[0].cron: never fires"),
                ({"schedules": [{"target": "dummy:"}]}, "schedules[0].cron: required"),
                ({"schedules": [{"cron": "@hourly", "target": "gopher://x"}]},
                 "schedules[0].target: 'gopher://x'"),
                ({"schedules": [{"cron": "@hourly", "probe": "a/b"}]}, "schedules[0].probe:"),
                ({"schedules": [{"cron": "@hourly", "enabled": "yes"}]},
                 "schedules[0].enabled: must be true or false"),
                ({"schedules": [{"cron": "@hourly", "when": 1}]},
                 "schedules[0].when: unknown field"),
                ({"schedules": [], "extra": 1}, "extra: unknown field"),
                ({"schedules": [], "paused": "no"}, "paused: must be true or false"),
                ({"paused": True}, "schedules: required"),
                (many, "schedules: required, an array of at most 32 schedules"),
                ([1], "body: must be a JSON object")):
            r = self.c.request("PUT", PATH, json_body=body)
            self.assertEqual(r.status, 400, (body, r.text))
            self.assertIn(needle, r.json()["error"]["message"], body)
        r = self.c.request("PUT", PATH, body="{not json",
                           headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.c.request("PUT", PATH, body='{"schedules": []}',
                           headers={"Content-Type": "text/plain"})  # writes take JSON only
        self.assertEqual(r.status, 415)
        self.assertEqual(self.c.get(PATH).json()["schedules"], before["schedules"])
        self.assertEqual(self.c.get(PATH).json()["paused"], before["paused"])

    def test_at_most_32(self):
        got = self.put({"schedules": [{"cron": f"{i} * * * *"} for i in range(32)]})
        self.assertEqual(len(got["schedules"]), 32)
        self.assertEqual(got["schedules"][31]["id"], "32")

    def test_pause_and_resume(self):
        self.put({"schedules": [{"cron": "*/5 * * * *"}, {"cron": "@daily", "enabled": False}]})
        n = len([x for x in self.svc.lines if "schedules paused: no run planned" in x])
        r = self.c.post(PATH + "/pause")
        self.assertEqual(r.status, 200, r.text)
        paused = r.json()
        self.assertIs(paused["paused"], True)
        self.assertEqual([s["next_run"] for s in paused["schedules"]], [None, None])
        self.assertEqual(self.c.get(PATH).json(), paused)
        # a PUT without "paused" keeps it
        self.assertIs(self.put({"schedules": [{"cron": "*/5 * * * *"}]})["paused"], True)
        wait_for(lambda: len([x for x in self.svc.lines if "schedules paused" in x]) > n,
                 what="the scheduler's 'schedules paused' line")
        resumed = self.c.post(PATH + "/resume").json()
        self.assertIs(resumed["paused"], False)
        self.assertRegex(resumed["schedules"][0]["next_run"], r"^\d{4}-.*Z$")
        self.assertEqual(self.c.get(PATH).json(), resumed)

    def test_changes_are_events(self):
        def until(ev, ok):
            """The first schedules event that ok() accepts. The events come from the store's
            change feed, after the change: setUp's own PUT may still be on its way."""
            for _ in range(10):  # bounded: a few changes at most
                got = json.loads(ev.next_event(want="schedules")["data"])
                if ok(got):
                    return got
            self.fail("no such schedules event")

        ev = SSEReader(self.svc)
        try:
            self.c.post(PATH + "/pause")
            got = until(ev, lambda g: g["paused"] is True)
            self.assertIs(got["paused"], True)
            self.put({"schedules": [{"cron": "@hourly", "probe": "den"}], "paused": False})
            got = until(ev, lambda g: g["schedules"][0].get("probe") == "den")
            self.assertEqual((got["paused"], got["schedules"][0]["probe"]), (False, "den"))
        finally:
            ev.close()

    def test_the_scheduler_reloads(self):
        n = len(next_runs(self.svc))
        self.put({"schedules": [{"cron": "* * * * *", "target": "dummy:"}]})
        wait_for(lambda: len(next_runs(self.svc)) > n, what="a new 'next run at' line")
        line = next_runs(self.svc)[-1]
        self.assertRegex(line, r"next run at \d{4}-\d\d-\d\dT\d\d:\d\d:00\.000")
        self.assertTrue(any("schedules: 1 enabled" in x for x in self.svc.lines))

    def test_openapi_documents_the_routes(self):
        doc = self.c.get("/api/v1/openapi.json").json()
        self.assertEqual(set(doc["paths"][PATH]), {"get", "put"})
        self.assertIn("post", doc["paths"][PATH + "/pause"])
        self.assertIn("post", doc["paths"][PATH + "/resume"])


class TokenTest(TestCase):
    def test_writes_need_the_token(self):
        svc = up()
        c = Client(svc)
        try:
            self.assertEqual(c.get(PATH).status, 200)  # reads are open
            body = {"schedules": [{"cron": "@hourly"}]}
            self.assertEqual(c.request("PUT", PATH, json_body=body).status, 401)
            self.assertEqual(c.post(PATH + "/pause").status, 401)
            self.assertEqual(c.post(PATH + "/resume", headers={"Authorization": "Bearer x"})
                             .status, 401)
            self.assertEqual(c.get(PATH).json()["schedules"][0]["cron"], "*/15 * * * *")
            self.assertIs(c.get(PATH).json()["paused"], False)
            r = c.request("PUT", PATH, json_body=body, headers=AUTH)
            self.assertEqual(r.status, 200, r.text)
            self.assertEqual(c.post(PATH + "/pause", headers=AUTH).status, 200)
            self.assertEqual(c.post(PATH + "/resume", headers=AUTH).status, 200)
            self.assertEqual(c.get(PATH).json()["schedules"][0]["cron"], "@hourly")
        finally:
            c.close()
            svc.stop()


class StoreFileTest(TestCase):
    def test_a_reopened_store_keeps_the_schedules(self):
        with tempfile.TemporaryDirectory() as d:
            db = "sqlite:" + os.path.join(d, "dstmc.db")
            svc = up(db=db)
            try:
                c = Client(svc, token=TOKEN)
                r = c.request("PUT", PATH, json_body={
                    "schedules": [{"cron": "0 6 * * *", "target": "dummy:", "probe": "den"}],
                    "paused": True})
                self.assertEqual(r.status, 200, r.text)
                want = r.json()
                c.close()
            finally:
                svc.stop()
            # restarted with other --schedule flags: the store's schedules win, and the log
            # says the flag was not applied (it was silently ignored)
            svc = up("--schedule", "@hourly", db=db)
            try:
                c = Client(svc)
                self.assertEqual(c.get(PATH).json(), want)
                svc.wait_line("schedules: 1 enabled, paused")
                svc.wait_line("--schedule not applied: the store keeps the schedules")
                c.close()
            finally:
                svc.stop()
            # restarted without the flag: nothing to say (it would come before the listening
            # line, which starting the service waited for)
            svc = up(db=db)
            try:
                svc.wait_line("schedules: 1 enabled, paused")
                self.assertFalse(any("--schedule not applied" in x for x in svc.lines))
            finally:
                svc.stop()
