"""test_probe.py - the probe (`dstmc logger --once`, `dstmc run`) and `dstmc up`, end to end."""
import json

from harness import (BIN, TOKEN, Client, RefusingPort, SSEReader, Service, TestCase, api, run,
                     wait_for, with_token)

ORIGINAL_OK = ["Starting SpeedTestLogger", "Returning dummy data",
               "Got download: {down} Mbps and upload: {up} Mbps",
               "Uploading data to speedtest API", "Speedtest complete!",
               "SpeedTestLogger stopped"]


class LoggerTest(TestCase):
    def test_once_posts_a_result_with_the_original_lines(self):
        with api() as svc:
            code, out, err = run("logger", "--once", "--target", "dummy:", "--api", svc.url,
                                 "--agent", "den", "--location", "den shelf")
            self.assertEqual(code, 0, err)
            lines = out.splitlines()
            c = Client(svc)
            rows = c.get("/api/v1/results").json()["results"]
            self.assertEqual(len(rows), 1)
            r = rows[0]
            down = f"{round(r['download_bps'] / 1e6, 2):g}"
            up = f"{round(r['upload_bps'] / 1e6, 2):g}"
            self.assertEqual(lines, [x.format(down=down, up=up) for x in ORIGINAL_OK])
            self.assertEqual((r["probe"], r["location"], r["engine"]), ("den", "den shelf", "dummy"))
            self.assertEqual((r["user"], r["device"]), ("MyTestUser", 1))
            self.assertTrue(60e6 <= r["download_bps"] < 100e6)
            self.assertEqual(r["server"]["host"], "speedtest.not")
            # the compatible face shows it too, the way the original web reads it
            old = c.get("/SpeedTest").json()
            self.assertEqual(old[0]["sessionId"], r["id"])
            c.close()

    def test_unreachable_api_gives_the_original_failure_lines(self):
        with RefusingPort() as closed:
            code, out, _ = run("logger", "--once", "--target", "dummy:", "--api",
                               f"http://127.0.0.1:{closed.port}")
        self.assertNotEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[:2], ["Starting SpeedTestLogger", "Returning dummy data"])
        self.assertEqual(lines[3], "Uploading data to speedtest API")
        self.assertRegex(lines[4], r"^Upload failed! .*(refused|connect)")
        self.assertEqual(lines[5:], ["Speedtest failed!", "SpeedTestLogger stopped"])

    def test_api_error_shows_the_failure_response(self):
        with api("--trust-ingest", "none") as svc:  # a result needs a token then
            code, out, _ = run("logger", "--once", "--dummy", "--api", svc.url)
            self.assertNotEqual(code, 0)
            self.assertRegex(out, r"Upload failed! Failure response: \{\"error\":.*401")
            self.assertIn("Speedtest failed!", out)

    def test_original_settings_as_environment(self):
        with api() as svc:
            env = {"singleRun": "true", "userId": "teodoran", "loggerId": "3",
                   "useDummyData": "true", "speedTestApiUrl": svc.url, "uploadResults": "true"}
            code, out, err = run("logger", env=env)
            self.assertEqual(code, 0, out + err)
            r = Client(svc).get("/api/v1/results").json()["results"][0]
            self.assertEqual((r["user"], r["device"], r["engine"]), ("teodoran", 3, "dummy"))
        code, out, _ = run("logger", "--once", env={"uploadResults": "false",
                                                    "useDummyData": "true"})
        self.assertEqual(code, 0)
        self.assertIn("Skipping data upload to speedtest API", out)

    def test_bad_config_names_the_key(self):
        for args, env, needle in (
                (["--once", "--device", "abc"], {}, "--device"),
                (["--once"], {"DSTMC_DEVICE": "-4"}, "DSTMC_DEVICE"),
                (["--once", "--target", "gopher://x"], {}, "--target"),
                (["--once", "--agent", "bad name/with slash"], {}, "--agent"),
                (["--once", "--bogus"], {}, "--bogus"),
                ([], {}, "--queue")):
            code, out, err = run("logger", *args, env=env)
            self.assertEqual(code, 2, (args, out, err))
            self.assertIn(needle, err, args)

    def test_help_and_check_config(self):
        code, out, _ = run("logger", "--help")
        self.assertEqual(code, 0)
        for flag in ("once", "--target", "--api", "DSTMC_API", "speedTestApiUrl"):
            self.assertIn(flag, out)
        code, out, _ = run("api", "--check-config", "--db", "sqlite::memory:", "--listen",
                           "127.0.0.1:0")  # the check binds the port: not a fixed one
        self.assertEqual((code, out.strip()), (0, "dstmc api: configuration OK"))
        code, _, err = run("api", "--check-config", "--db", "mysql://x")
        self.assertEqual(code, 2)
        self.assertIn("--db", err)
        code, _, err = run("api", "--check-config", "--listen", "127.0.0.1:99999")
        self.assertEqual(code, 2)
        self.assertIn("--listen", err)
        code, _, err = run("nosuchservice")
        self.assertEqual(code, 2)


class RunTest(TestCase):
    def test_run_prints_and_optionally_posts(self):
        code, out, _ = run("run", "--target", "dummy:")
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines()[0], "Returning dummy data")
        self.assertRegex(out, r"Got download: \d+(\.\d+)? Mbps and upload: \d+(\.\d+)? Mbps")
        code, out, err = run("run", "--json", "--target", "dummy:")
        self.assertEqual(code, 0)
        j = json.loads(out)  # speedtest-cli's keys, dstmc's own result under "result"
        for k in ("download", "upload", "ping", "server", "timestamp", "bytes_sent",
                  "bytes_received", "share", "client"):
            self.assertIn(k, j)
        self.assertEqual(j["download"], j["result"]["download_bps"])
        self.assertEqual((j["result"]["engine"], j["result"]["status"]), ("dummy", "ok"))
        self.assertIn("Returning dummy data", err)  # the original's lines go to stderr
        code, out, _ = run("run", "--csv", "--csv-header", "--csv-delimiter", ";", "--target",
                           "dummy:")
        self.assertEqual(code, 0)
        head, line = out.splitlines()
        self.assertEqual(head, "Server ID;Sponsor;Server Name;Timestamp;Distance;Ping;"
                               "Download;Upload;Share;IP Address")
        f = line.split(";")
        self.assertEqual((f[0], f[2], f[4], f[9]), ("42", "speedtest.not", "2.43", "127.0.0.1"))
        self.assertTrue(60e6 <= float(f[6]) < 100e6)
        with api() as svc:
            code, out, _ = run("run", "--target", "dummy:", "--api", svc.url)
            self.assertEqual(code, 0)
            self.assertIn("Speedtest complete!", out)
            self.assertEqual(len(Client(svc).get("/api/v1/results").json()["results"]), 1)


    def test_run_says_what_speedtest_cli_says(self):
        """It printed only "Got download ... and upload ...": no server, ping or jitter."""
        code, out, _ = run("run", "--target", "dummy:")
        self.assertEqual(code, 0)
        lines = out.splitlines()
        got = next(i for i, x in enumerate(lines) if x.startswith("Got download"))
        self.assertRegex(lines[got + 1], r"^Hosted by speedtest\.not \[2\.43 km\]: \d+\.\d{3} ms$")
        self.assertRegex(lines[got + 2], r"^Ping: \d+\.\d\d ms(, jitter: \d+\.\d\d ms)?$")
        self.assertRegex(lines[got + 3], r"^Download: \d+\.\d\d Mbit/s$")
        self.assertRegex(lines[got + 4], r"^Upload: \d+\.\d\d Mbit/s$")

    def test_without_a_target_it_tests_speedtest_net_not_canned_data(self):
        """`dstmc run` alone measured canned dummy data and exited 0."""
        code, out, err = run("run", "--help")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"--target.*speedtest://auto")
        code, out, err = run("logger", "--help")
        self.assertRegex(out, r"--target.*speedtest://auto")
        # run alone, with no network at all (a namespace of its own: nothing leaves this
        # machine), is a real test of the nearest speedtest.net servers, and it fails
        import subprocess
        try:
            p = subprocess.run(["unshare", "-n", BIN, "run", "--timeout", "20"],
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            self.skipTest(f"no network namespace here: {e}")
        if p.returncode != 1 and b"unshare" in p.stderr:
            self.skipTest("no network namespace here: " + p.stderr.decode()[:200])
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 1, out + p.stderr.decode())
        self.assertNotIn("Returning dummy data", out)
        self.assertIn("Finding best test servers", out)
        self.assertRegex(out, r"Test failed: .*speedtest")

    def test_a_failed_test_is_posted_as_a_failure_not_a_complete_one(self):
        """After a failed test the lines said "Speedtest complete!"."""
        with RefusingPort() as closed, api() as svc:
            code, out, _ = run("run", "--timeout", "20", "--target",
                               f"speedtest://127.0.0.1:{closed.port}", "--api", svc.url)
            self.assertEqual(code, 1, out)
            lines = out.splitlines()
            self.assertIn("Uploading the failed test to speedtest API", lines)
            self.assertNotIn("Speedtest complete!", out)
            self.assertEqual(lines[-1], "Speedtest failed!")
            rows = Client(svc).get("/api/v1/results").json()["results"]
            self.assertEqual([r["status"] for r in rows], ["failed"])

    def test_a_long_token_is_sent_whole(self):
        """The Authorization header was built in 1024 bytes: a longer token was cut."""
        env = {"DSTMC_TOKEN": "t" * 1500}
        with api(env=env) as svc:
            code, out, _ = run("run", "--target", "dummy:", "--api", svc.url, env=env)
            self.assertEqual(code, 0, out)
            self.assertEqual(len(Client(svc).get("/api/v1/results").json()["results"]), 1)

    def test_live_progress_only_on_a_terminal(self):
        import subprocess
        tty = subprocess.run(["script", "-qec", f"{BIN} run --target dummy:", "/dev/null"],
                             capture_output=True, timeout=60).stdout.decode()
        self.assertRegex(tty, r"\r\x1b\[K\s+download\s+\d+\.\d\d Mbps")
        code, out, _ = run("run", "--target", "dummy:")
        self.assertEqual(code, 0)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\r", out)


class WebTest(TestCase):
    def test_standalone_web_writes_configuration(self):
        with Service("web", "--listen", "127.0.0.1:0", "--api", "http://api.example:5000") as w:
            c = Client(w)
            self.assertEqual(c.get("/configuration.json").json(),
                             {"speedTestApiBase": "http://api.example:5000"})
            self.assertEqual(c.get("/index.html").status, 200)
            self.assertEqual(c.get("/vendor/uPlot.iife.min.js").status, 200)
            c.close()
        with Service("web", "--listen", "127.0.0.1:0", env={"SpeedTestApiBase": "/backend"}) as w:
            self.assertEqual(Client(w).get("/configuration.json").json(),
                             {"speedTestApiBase": "/backend"})


class UpTest(TestCase):
    def test_up_runs_a_test_on_request(self):
        with Service("up", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:",
                     "--agent", "box", "--target", "dummy:", "--server-http", "off",
                     "--server-iperf3", "off", env=with_token(None)) as up:
            c = Client(up, token=TOKEN)
            self.assertIn("Download vs. Upload", c.get("/").text + c.get("/app.js").text)
            wait_for(lambda: any(p["name"] == "box" and p["state"] == "idle"
                                 for p in c.get("/api/v1/probes").json()["probes"]),
                     what="the probe's first heartbeat")
            sse = SSEReader(up)
            try:
                run_ = c.post("/api/v1/run", json_body={}).json()
                self.assertEqual(run_["probes_alive"], 1)
                self.assertIn("queued for 1 running probe", run_["message"])
                while True:
                    ev = json.loads(sse.next_event(want="result")["data"])
                    if ev.get("request_id") == run_["request_id"]:
                        break
            finally:
                sse.close()
            self.assertEqual((ev["probe"], ev["engine"], ev["status"]), ("box", "dummy", "ok"))
            stored = c.get("/api/v1/results/" + ev["id"]).json()
            self.assertEqual(stored["request_id"], run_["request_id"])
            up.wait_line("Speedtest complete!", stream="stdout")
            # a request for an unknown engine becomes a failed result, not a crash
            bad = c.post("/api/v1/run", json_body={"target": "gopher://x"}).json()
            got = wait_for(lambda: [r for r in c.get("/api/v1/results?status=failed").json()
                                    ["results"] if r["request_id"] == bad["request_id"]],
                           what="the failed result")
            self.assertIn("unknown target", got[0]["error"])
            # the in-process probe hands results to the API directly: libcurl is never loaded
            with open(f"/proc/{up.proc.pid}/maps") as f:
                self.assertNotIn("libcurl", f.read())
            c.close()
            self.assertEqual(up.stop(), 0)

    def test_up_takes_a_run_now_at_once(self):
        """A run-now sent the moment `up` listens is the in-process probe's too: its probe joins
        the queue before the API listens (it used to join on its first consume, a moment later)."""
        for _ in range(3):
            with Service("up", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:",
                         "--agent", "box", "--target", "dummy:", "--server-http", "off",
                         "--server-iperf3", "off", env=with_token(None)) as up:
                c = Client(up, token=TOKEN)
                rid = c.post("/api/v1/run", json_body={}).json()["request_id"]
                got = wait_for(lambda: [r for r in c.get("/api/v1/results").json()["results"]
                                        if r["request_id"] == rid],
                               what="the first run-now's result")
                self.assertEqual((got[0]["probe"], got[0]["status"]), ("box", "ok"))
                c.close()

    def test_up_schedules_serves_and_stores_a_failure(self):
        """The defaults: a 15-minute schedule, speedtest://auto (no internet here: a failed
        result with its reason), and the test server beside the UI."""
        with Service("up", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:", "--agent",
                     "box", "--server-http", "127.0.0.1:0", "--server-iperf3", "127.0.0.1:0",
                     env=with_token({"TZ": "UTC"})) as up:
            (s1, _, ui), (s2, _, http), (s3, _, ip3) = up.listeners(3)
            self.assertEqual((s1, s2, s3), ("http", "http", "tcp"))
            line = up.wait_line("next run at")
            minute = int(line.split("next run at ")[1][14:16])
            self.assertEqual(minute % 15, 0, line)  # */15 * * * *
            latency = Client(f"http://127.0.0.1:{http}").get("/speedtest/latency.txt")
            self.assertEqual(latency.text.strip(), "test=test")
            c = Client(up, token=TOKEN)
            wait_for(lambda: c.get("/api/v1/probes").json()["probes"], what="a heartbeat")
            rid = c.post("/api/v1/run", json_body={}).json()["request_id"]
            got = wait_for(lambda: [r for r in c.get("/api/v1/results?status=failed").json()
                                    ["results"] if r["request_id"] == rid],
                           what="the failed result")
            self.assertEqual(got[0]["engine"], "speedtest")
            self.assertIn("speedtest.net", got[0]["error"])  # the reason: config not reachable
            # and the probe can test against the server beside it
            rid = c.post("/api/v1/run", json_body={
                "target": f"iperf3://127.0.0.1:{ip3}?duration=1"}).json()["request_id"]
            ok = wait_for(lambda: [r for r in c.get("/api/v1/results?status=ok").json()
                                   ["results"] if r["request_id"] == rid],
                          what="the iperf3 result")
            self.assertGreater(ok[0]["download_bps"], 0)
            c.close()
            self.assertEqual(up.stop(), 0)
