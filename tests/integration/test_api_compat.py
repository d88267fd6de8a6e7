"""test_api_compat.py - the compatible face must answer like the original k8s-101 speedtest-api."""
import copy
import datetime as dt
import os
import re
import urllib.parse
import uuid

from harness import Client, TestCase, api

TZ = "Europe/Oslo" if os.path.exists("/usr/share/zoneinfo/Europe/Oslo") else "UTC"
ENV = {"TZ": TZ}
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?([+-]\d\d:\d\d)$")
KEYS = {"sessionId", "user", "device", "testDate", "data"}


def local(y, mo, d, h=0, mi=0, s=0, ms=0):
    """An aware datetime in the API's time zone (TZ), as ISO with offset."""
    from zoneinfo import ZoneInfo
    t = dt.datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=ZoneInfo(TZ))
    return t.isoformat(timespec="milliseconds")


def original(**over):
    """A TestResult as the original logger posts it (PascalCase, Newtonsoft)."""
    body = {
        "SessionId": str(uuid.uuid4()), "User": "MyTestUser", "Device": 1,
        "TestDate": "2026-11-20T10:00:00.1234567+01:00",
        "Data": {
            "Speeds": {"Download": 85.33, "Upload": 12.4},
            "Client": {"Ip": "10.0.0.2", "Latitude": 59.913396, "Longitude": 10.74133,
                       "Isp": "Telenor", "Country": "NO"},
            "Server": {"Host": "speedtest.example.net:8080", "Latitude": 59.902138,
                       "Longitude": 10.771267, "Country": "NO", "Distance": 2430.5, "Ping": 12,
                       "Id": 4242}}}
    for path, value in over.items():
        node = body
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return body


DELETE = object()


def camel(o):
    """The same body with camelCase property names (what a JS or System.Text.Json client sends)."""
    if isinstance(o, dict):
        return {k[0].lower() + k[1:]: camel(v) for k, v in o.items()}
    return o


class SeededTest(TestCase):
    """Against the original's Development-mode demo data (--seed-demo)."""

    @classmethod
    def setUpClass(cls):
        cls.svc = api("--seed-demo", env=ENV)
        cls.c = Client(cls.svc)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.svc.stop()

    def get(self, q=""):
        r = self.c.get("/SpeedTest" + q)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def test_ping(self):
        r = self.c.get("/SpeedTest/ping")
        self.assertEqual((r.status, r.text), (200, "PONG"))
        self.assertEqual(self.c.get("/speedtest/ping").text, "PONG")  # routes ignore case

    def test_default_is_25_newest(self):
        rows = self.get()
        self.assertEqual(len(rows), 25)
        dates = [r["testDate"] for r in rows]
        self.assertEqual(dates, sorted(dates, reverse=True))
        for r in rows:
            self.assertEqual(set(r), KEYS)
            self.assertRegex(r["testDate"], DATE_RE)
            self.assertEqual(set(r["data"]), {"speeds", "client", "server"})
            self.assertEqual(set(r["data"]["server"]),
                             {"host", "latitude", "longitude", "country", "distance", "ping",
                              "id"})

    def test_seed_is_the_originals(self):
        rows = self.get("?To=5000")
        self.assertEqual(len(rows), 1345)
        for r in rows:
            self.assertEqual((r["user"], r["device"]), ("teodoran", 3))
            self.assertTrue(60 <= r["data"]["speeds"]["download"] < 100)
            self.assertTrue(5 <= r["data"]["speeds"]["upload"] < 25)
            self.assertTrue(6 <= r["data"]["server"]["ping"] < 20)
            self.assertEqual(r["data"]["server"]["host"], "Norsk Data")
            self.assertEqual(r["data"]["server"]["distance"], 2430)
            self.assertEqual(r["data"]["client"]["country"], "Norway")
        times = sorted(dt.datetime.fromisoformat(r["testDate"]) for r in rows)
        steps = {(b - a).total_seconds() for a, b in zip(times, times[1:])}
        self.assertTrue(all(abs(s - 900) < 1 for s in steps), steps)  # every 15 minutes

    def test_paging(self):
        everything = self.get("?To=100")
        self.assertEqual(self.get("?From=0&To=10"), everything[:10])
        self.assertEqual(self.get("?From=10&To=20"), everything[10:20])
        self.assertEqual(self.get("?To=5"), everything[:5])
        self.assertEqual(self.get("?To=0"), [])
        for q in ("?From=5", "?From=-1&To=5", "?From=10&To=5", "?From=3&To=3", "?To=-4"):
            self.assertEqual(self.get(q), everything[:25], q)
        self.assertEqual(len(self.get("?From=1340&To=1400")), 5)
        self.assertEqual(self.get("?from=0&to=3"), everything[:3])  # names ignore case

    def test_sort(self):
        asc = self.get("?SortOn=DownloadSpeed&SortOrder=Asc&To=1345")
        speeds = [r["data"]["speeds"]["download"] for r in asc]
        self.assertEqual(speeds, sorted(speeds))
        self.assertEqual(self.get("?SortOn=4&SortOrder=0&To=1345"), asc)
        desc = self.get("?SortOn=serverping&SortOrder=desc&To=1345")
        pings = [r["data"]["server"]["ping"] for r in desc]
        self.assertEqual(pings, sorted(pings, reverse=True))
        oldest = self.get("?SortOn=TestDate&SortOrder=Asc&To=3")
        newest = self.get("?To=3")
        self.assertLess(oldest[0]["testDate"], newest[-1]["testDate"])
        # without both SortOn and SortOrder the original sorts TestDate descending
        self.assertEqual(self.get("?SortOn=DownloadSpeed"), self.get())
        self.assertEqual(self.get("?SortOrder=Asc"), self.get())

    def test_sort_ties_keep_insertion_order(self):
        a = self.get("?SortOn=User&SortOrder=Asc&To=50")
        b = self.get("?SortOn=User&SortOrder=Desc&To=50")
        self.assertEqual(a, b)  # every user is the same: a stable sort keeps the stored order

    def test_bad_values_are_400_like_aspnet(self):
        for q, key, value in (("?SortOn=99&SortOrder=0", "SortOn", "99"),
                              ("?SortOn=Bogus&SortOrder=0", "SortOn", "Bogus"),
                              ("?SortOn=User&SortOrder=Sideways", "SortOrder", "Sideways"),
                              ("?Device=abc", "Device", "abc"),
                              ("?Device=1.5", "Device", "1.5"),
                              ("?From=x&To=5", "From", "x"),
                              ("?ServerLatitude=north", "ServerLatitude", "north"),
                              ("?TestDateGt=2026-0-15", "TestDateGt", "2026-0-15"),
                              ("?TestDateLt=2026-02-30", "TestDateLt", "2026-02-30")):
            r = self.c.get("/SpeedTest" + q)
            self.assertEqual(r.status, 400, q)
            self.assertTrue(r.header("content-type").startswith("application/problem+json"))
            p = r.json()
            self.assertEqual(p["title"], "One or more validation errors occurred.")
            self.assertEqual(p["errors"], {key: [f"The value '{value}' is not valid for {key}."]})

    def test_original_web_query(self):
        """The original speedtest-web's request, including its unpadded 0-based month."""
        two_days_ago = dt.date.today() - dt.timedelta(days=2)
        d = f"{two_days_ago.year}-{two_days_ago.month - 1}-{two_days_ago.day}"
        r = self.c.get(f"/SpeedTest?From=0&To=30&SortOn=3&SortOrder=1&TestDateGt={d}")
        if two_days_ago.month == 1:  # month 0: the original answers 400 too
            self.assertEqual(r.status, 400)
        else:
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.json()), 30)

    def test_cors(self):
        """The original's permissive CORS stays for reads (its web client is another origin);
        a write from a page of another origin is not allowed (no wildcard on writes)."""
        r = self.c.get("/SpeedTest?To=1", headers={"Origin": "http://example.org"})
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        self.assertIsNone(r.header("access-control-allow-credentials"))
        r = self.c.request("OPTIONS", "/SpeedTest", headers={
            "Origin": "http://example.org", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept"})
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        self.assertEqual(r.header("access-control-allow-methods"), "GET, HEAD")
        r = self.c.request("OPTIONS", "/SpeedTest", headers={
            "Origin": "http://example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertIn(r.status, (200, 204))
        self.assertIsNone(r.header("access-control-allow-origin"))
        self.assertIsNone(r.header("access-control-allow-methods"))


class PostAndFilterTest(TestCase):
    """POST /SpeedTest and every filter, on an empty store."""

    def setUp(self):
        self.svc = api("--max-body", "4096", env=ENV)
        self.c = Client(self.svc)

    def tearDown(self):
        self.c.close()
        self.svc.stop()

    def post(self, body, status=200, **kw):
        r = self.c.post("/SpeedTest", json_body=body, **kw)
        self.assertEqual(r.status, status, r.text)
        return r

    def all(self):
        return self.c.get("/SpeedTest?To=1000").json()

    def test_pascal_and_camel_case_round_trip(self):
        p = original()
        c = camel(original(**{"Data.Speeds.Download": 3000, "Data.Server.Ping": 0}))
        self.assertEqual(self.post(p).body, b"")
        self.post(c)
        rows = {r["sessionId"]: r for r in self.all()}
        self.assertEqual(len(rows), 2)
        got = rows[p["SessionId"]]
        self.assertEqual(got["user"], "MyTestUser")
        self.assertEqual(got["data"]["speeds"], {"download": 85.33, "upload": 12.4})
        self.assertEqual(got["data"]["client"], {"ip": "10.0.0.2", "latitude": 59.913396,
                                                 "longitude": 10.74133, "isp": "Telenor",
                                                 "country": "NO"})
        self.assertEqual(got["data"]["server"], {"host": "speedtest.example.net:8080",
                                                 "latitude": 59.902138, "longitude": 10.771267,
                                                 "country": "NO", "distance": 2430.5,
                                                 "ping": 12, "id": 4242})
        sent = dt.datetime.fromisoformat("2026-11-20T10:00:00.123+01:00")
        self.assertEqual(dt.datetime.fromisoformat(got["testDate"]), sent)
        self.assertEqual(rows[c["sessionId"]]["data"]["speeds"]["download"], 3000)

    def test_unknown_properties_are_ignored(self):
        body = original()
        body["Extra"] = {"anything": [1, 2]}
        body["Data"]["Speeds"]["Jitter"] = 3
        self.post(body)
        self.assertEqual(len(self.all()), 1)

    def test_validation_errors_name_each_field(self):
        cases = [
            ({"User": "a"}, "User", "The field User must be a string with a minimum length of 2 "
                                    "and a maximum length of 500."),
            ({"User": "x" * 501}, "User", "The field User must be a string with a minimum length "
                                          "of 2 and a maximum length of 500."),
            ({"User": DELETE}, "User", "The User field is required."),
            ({"Device": 0}, "Device", "The field Device must be between 1 and 2147483647."),
            ({"Device": DELETE}, "Device", "The field Device must be between 1 and 2147483647."),
            ({"Data.Speeds.Download": 3001}, "Data.Speeds.Download",
             "The field Download must be between 0 and 3000."),
            ({"Data.Speeds.Upload": -1}, "Data.Speeds.Upload",
             "The field Upload must be between 0 and 3000."),
            ({"Data.Client.Ip": "999.1.1.1"}, "Data.Client.Ip",
             "The field Ip must match the regular expression '^(?:(?:25[0-5]|2[0-4][0-9]|[01]?"
             "[0-9][0-9]?)\\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$'."),
            ({"Data.Client.Country": "no"}, "Data.Client.Country",
             "The field Country must match the regular expression '^([A-Z]){2}$'."),
            ({"Data.Client.Latitude": 91}, "Data.Client.Latitude",
             "The field Latitude must be between -90 and 90."),
            ({"Data.Server.Longitude": -181}, "Data.Server.Longitude",
             "The field Longitude must be between -180 and 180."),
            ({"Data.Server.Distance": 21000001}, "Data.Server.Distance",
             "The field Distance must be between 0 and 21000000."),
            ({"Data.Server.Ping": -1}, "Data.Server.Ping",
             "The field Ping must be between 0 and 2147483647."),
            ({"Data.Server.Host": None}, "Data.Server.Host", "The Host field is required."),
            ({"Data": DELETE}, "Data", "The Data field is required."),
            ({"Data.Client": None}, "Data.Client", "The Client field is required."),
        ]
        for over, key, msg in cases:
            r = self.post(original(**over), status=400)
            p = r.json()
            self.assertEqual(p["status"], 400)
            self.assertEqual(p["type"], "https://tools.ietf.org/html/rfc7231#section-6.5.1")
            self.assertIn(key, p["errors"], over)
            self.assertIn(msg, p["errors"][key], over)
        self.assertEqual(self.all(), [])  # nothing half-written

    def test_several_errors_at_once(self):
        r = self.post(original(**{"User": "", "Device": -5, "Data.Client.Country": "Norway"}),
                      status=400)
        errors = r.json()["errors"]
        self.assertEqual(set(errors), {"User", "Device", "Data.Client.Country"})
        self.assertEqual(errors["User"][0], "The User field is required.")

    def test_wrong_types_and_malformed_json(self):
        for body, key, text in (
                ({**original(), "Device": "1"}, "$.Device", "System.Int32"),
                ({**original(), "Device": 1.5}, "$.Device", "System.Int32"),
                ({**original(), "SessionId": "not-a-guid"}, "$.SessionId", "System.Guid"),
                ({**original(), "TestDate": "yesterday"}, "$.TestDate", "System.DateTime"),
                ({**original(), "Data": [1]}, "$.Data", "SpeedTestApi.Dto.TestData"),
                ([original()], "$", "SpeedTestApi.Dto.TestResult")):
            r = self.post(body, status=400)
            errors = r.json()["errors"]
            self.assertEqual(list(errors), [key], body)
            self.assertIn(f"could not be converted to {text}", errors[key][0])
        for raw in (b"{", b"{\"User\": }", b"nul", b'{"a":1}{"b":2}',
                    b'{"Device": 99999999999999999999999}', b'{"Data":{"Speeds":{"Download":1e999}}}'):
            r = self.c.post("/SpeedTest", body=raw, headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, raw)
            self.assertIn("$", r.json()["errors"])
        r = self.c.post("/SpeedTest", body=b"", headers={"Content-Type": "application/json"})
        self.assertEqual(r.json()["errors"], {"": ["A non-empty request body is required."]})
        self.assertEqual(self.all(), [])

    def test_media_type_and_size(self):
        body = original()
        r = self.c.post("/SpeedTest", body=str(body).encode(), headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        self.post(body, headers={"Content-Type": "application/json; charset=utf-8"})
        big = original(User="u" * 5000)
        r = self.c.post("/SpeedTest", json_body=big)
        self.assertEqual(r.status, 413)
        self.assertIn("error", r.json())
        self.assertEqual(len(self.all()), 1)

    def test_same_session_id_is_stored_once(self):
        body = original()
        self.post(body)
        self.post(body)  # a retry of the same result
        self.assertEqual(len(self.all()), 1)

    def test_every_exact_filter(self):
        a = original(User="alice", Device=1, **{
            "Data.Client.Ip": "10.0.0.1", "Data.Client.Latitude": 1.5,
            "Data.Client.Longitude": 2.5, "Data.Client.Isp": "IspA", "Data.Client.Country": "NO",
            "Data.Server.Host": "hostA", "Data.Server.Latitude": 3.5,
            "Data.Server.Longitude": 4.5, "Data.Server.Country": "SE",
            "Data.Server.Distance": 1000.25, "Data.Server.Ping": 7, "Data.Server.Id": 70})
        b = original(User="bob", Device=2, **{
            "Data.Client.Ip": "10.0.0.2", "Data.Client.Latitude": -1.5,
            "Data.Client.Longitude": -2.5, "Data.Client.Isp": "IspB", "Data.Client.Country": "DK",
            "Data.Server.Host": "hostB", "Data.Server.Latitude": -3.5,
            "Data.Server.Longitude": -4.5, "Data.Server.Country": "FI",
            "Data.Server.Distance": 2000.75, "Data.Server.Ping": 8, "Data.Server.Id": 80})
        self.post(a)
        self.post(b)
        checks = [("SessionId", a["SessionId"]), ("User", "alice"), ("Device", "1"),
                  ("ClientIp", "10.0.0.1"), ("ClientLatitude", "1.5"),
                  ("ClientLongitude", "2.5"), ("ClientIsp", "IspA"), ("ClientCountry", "NO"),
                  ("ServerHost", "hostA"), ("ServerLatitude", "3.5"),
                  ("ServerLongitude", "4.5"), ("ServerCountry", "SE"),
                  ("ServerDistanceToClient", "1000.25"), ("ServerPing", "7"), ("ServerId", "70")]
        for name, value in checks:
            rows = self.c.get(f"/SpeedTest?{name}={value}").json()
            self.assertEqual([r["sessionId"] for r in rows], [a["SessionId"]], name)
            self.assertEqual(self.c.get(f"/SpeedTest?{name}=").status, 200)  # empty: no filter
        self.assertEqual(len(self.c.get("/SpeedTest?User=alice&Device=2").json()), 0)
        self.assertEqual(len(self.c.get("/SpeedTest?user=bob&serverid=80").json()), 1)

    def test_long_queries_are_not_confused_by_the_cache(self):
        """The answer cache was keyed by the first 1200 bytes of the query: a 1300-character
        pad made every user's query the same key."""
        xx, yy = original(User="XX"), original(User="YY")
        self.post(xx)
        self.post(yy)
        pad = "p" * 1300
        for _ in range(2):  # the second round is answered from the cache
            for body in (xx, yy):
                rows = self.c.get(f"/SpeedTest?pad={pad}&User={body['User']}").json()
                self.assertEqual([r["sessionId"] for r in rows], [body["SessionId"]])

    def test_long_bad_values_keep_their_message(self):
        """A message over 512 bytes was cut in the middle of a character, which jansson
        refused: the field's list of errors came back empty."""
        value = "a" + "\u00e9" * 300
        r = self.c.get("/SpeedTest?Device=" + urllib.parse.quote(value))
        self.assertEqual(r.status, 400)
        msgs = r.json()["errors"]["Device"]
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].startswith("The value 'a\u00e9\u00e9"), msgs)

    def test_speed_ranges_are_inclusive(self):
        for down, up in ((10, 1), (20, 2), (30, 3)):
            self.post(original(**{"Data.Speeds.Download": down, "Data.Speeds.Upload": up}))

        def downs(q):
            return sorted(r["data"]["speeds"]["download"] for r in self.c.get("/SpeedTest?" + q).json())
        self.assertEqual(downs("DownloadSpeedGt=20"), [20, 30])
        self.assertEqual(downs("DownloadSpeedLt=20"), [10, 20])
        self.assertEqual(downs("DownloadSpeedGt=10.5&DownloadSpeedLt=29.5"), [20])
        self.assertEqual(downs("UploadSpeedGt=2&UploadSpeedLt=3"), [20, 30])
        self.assertEqual(downs("UploadSpeedGt=3.1"), [])

    def test_date_ranges_cover_whole_local_days(self):
        stamps = {"before": local(2026, 3, 4, 23, 59, 59, 999), "start": local(2026, 3, 5),
                  "end": local(2026, 3, 5, 23, 59, 59, 999), "after": local(2026, 3, 6)}
        ids = {}
        for name, when in stamps.items():
            body = original(TestDate=when)
            ids[body["SessionId"]] = name
            self.post(body)

        def names(q):
            return sorted(ids[r["sessionId"]] for r in self.c.get("/SpeedTest?" + q).json())
        self.assertEqual(names("TestDateGt=2026-03-05"), ["after", "end", "start"])
        self.assertEqual(names("TestDateLt=2026-03-05"), ["before", "end", "start"])
        self.assertEqual(names("TestDateGt=2026-3-5&TestDateLt=2026-3-5"), ["end", "start"])
        self.assertEqual(names("TestDateGt=03/05/2026&TestDateLt=03/05/2026"), ["end", "start"])
        # a time within the day still means the whole day
        self.assertEqual(names("TestDateGt=2026-03-05T18:00:00&TestDateLt=2026-03-05T01:00:00"),
                         ["end", "start"])


class EdgeOfTheOriginalTest(TestCase):
    """What the original accepts because of .NET's defaults."""

    def test_missing_date_and_long_user(self):
        with api(env=ENV) as svc:
            c = Client(svc)
            body = original(TestDate=DELETE, User="u" * 500)  # DateTime.MinValue; a 500-char user
            r = c.post("/SpeedTest", json_body=body)
            self.assertEqual(r.status, 200, r.text)
            row = c.get("/SpeedTest").json()[0]
            self.assertTrue(row["testDate"].startswith("0001-01-01"), row["testDate"])
            self.assertEqual(row["user"], "u" * 500)
            probes = c.get("/api/v1/probes").json()["probes"]
            self.assertEqual(probes[0]["name"], "u" * 128)
            c.close()
