"""test_scheduler.py - `dstmc scheduler`: --once's original lines, config errors, the daemon.

The mem: queue lives inside one process, so these tests see what was published through the
scheduler's own lines; end-to-end runs over a shared queue come with the redis backend.
"""
import datetime
import os
import signal
import tempfile
import time
import zoneinfo

from harness import TOKEN, WAIT, Client, RefusingPort, Service, TestCase, api, run

ONCE = ["Starting Speedtest-scheduler...", "Sending event to mem:", "Event sendt!",
        "Speedtest-scheduler done"]
PUBLISHED = r"schedule '.*': published request [0-9a-f-]{36} "


def daemon(*args, env=None):
    return Service("scheduler", *args, listen=False, env=env)


class OnceTest(TestCase):
    def test_once_prints_the_original_lines(self):
        code, out, err = run("scheduler", "--once")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), ONCE)
        self.assertRegex(err, r"schedule '0 \* \* \* \*': published request [0-9a-f-]{36}")

    def test_once_sends_one_request_per_schedule(self):
        code, out, err = run("scheduler", "--once", "--queue", "mem:", "--schedule",
                             "*/15 * * * * dummy: den", "--schedule", "@daily iperf3://127.0.0.1")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), [ONCE[0], *ONCE[1:3] * 2, ONCE[3]])
        self.assertEqual(len([x for x in err.splitlines() if "published request" in x]), 2)

    def test_once_with_the_enable_file_absent_publishes_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "marker")
            code, out, err = run("scheduler", "--once", "--enable-file", marker)
            self.assertEqual(code, 0, err)
            self.assertEqual(out.splitlines(), [ONCE[0], ONCE[3]])
            self.assertIn(f"skipped: enable file {marker} is absent", err)
            self.assertNotIn("published", err)
            open(marker, "w").close()
            code, out, err = run("scheduler", "--once", "--enable-file", marker)
            self.assertEqual((code, out.splitlines()), (0, ONCE), err)

    def test_publish_error_gives_the_original_error_line(self):
        with RefusingPort() as closed:
            url = f"redis://127.0.0.1:{closed.port}"
            code, out, err = run("scheduler", "--once", "--queue", url)
        if code == 2 and "not built yet" in err:
            self.skipTest("the redis queue backend is not built yet")
        self.assertEqual(code, 1, out + err)
        lines = out.splitlines()
        self.assertEqual(lines[:2], [ONCE[0], f"Sending event to {url}"])
        self.assertRegex(lines[2], r"^Error: Unable to send command \S")
        self.assertEqual(len(lines), 3)


class ConfigTest(TestCase):
    def test_bad_cron_names_the_field(self):
        for args, env, needles in (
                (["--schedule", "61 * * * *"], {}, ["--schedule", "'61 * * * *'",
                                                    "minute: '61' is out of 0-59"]),
                (["--once", "--schedule", "0 9 * FOO * dummy:"], {},
                 ["month: 'FOO' is not a number or a month name (JAN-DEC)"]),
                ([], {"DSTMC_SCHEDULE": "* * * * 8"}, ["day-of-week: '8' is out of 0-7"]),
                (["--schedule", "*/0 * * * *"], {}, ["minute: step '0'"]),
                (["--schedule", "@sometimes"], {}, ["'@sometimes' is not a macro"]),
                (["--schedule", "* * * *"], {}, ["expected 5 fields"]),
                (["--schedule", "0 0 30 2 *"], {}, ["never fires"]),
                (["--schedule", "@hourly dummy: a/b"], {}, ["probe 'a/b'"]),
                (["--schedule", "@hourly dummy: den x"], {}, ["too many words"]),
                (["--jitter", "-1"], {}, ["--jitter"]),
                (["--queue", "amqp://x"], {}, ["--queue"])):
            code, out, err = run("scheduler", *args, env=env)
            self.assertEqual(code, 2, (args, out, err))
            self.assertEqual(out, "", args)  # nothing was sent
            for needle in needles:
                self.assertIn(needle, err, args)

    def test_bad_target_is_a_config_error(self):
        code, out, err = run("scheduler", "--once", "--schedule", "@hourly gopher://example")
        self.assertEqual(code, 2, out + err)
        self.assertIn("--schedule: '@hourly gopher://example': ", err)
        self.assertIn("gopher://example", err)
        self.assertEqual(out, "")

    def test_help_and_check_config(self):
        code, out, _ = run("scheduler", "--help")
        self.assertEqual(code, 0)
        for flag in ("--schedule", "--queue", "--jitter", "once", "--enable-file",
                     "DSTMC_SCHEDULE", "0 * * * *"):
            self.assertIn(flag, out)
        code, out, _ = run("scheduler", "--check-config", "--schedule", "@daily dummy:")
        self.assertEqual((code, out.strip()), (0, "dstmc scheduler: configuration OK"))


class DaemonTest(TestCase):
    def test_next_run_is_logged_in_local_time(self):
        tz = "Europe/Oslo"
        with daemon("--schedule", "0 0 1 1 *", env={"TZ": tz}) as svc:
            line = svc.wait_line(r"next run at ")
            now = datetime.datetime.now(zoneinfo.ZoneInfo(tz))
            want = datetime.datetime(now.year + 1, 1, 1, tzinfo=zoneinfo.ZoneInfo(tz))
            self.assertTrue(line.endswith(
                "next run at " + want.isoformat(timespec="milliseconds")), line)
            self.assertTrue(any("mem:" in x and "warn" in x for x in svc.lines), svc.lines)

    def test_enable_file_absent_skips_the_firing(self):
        with tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "marker")
            with daemon("--schedule", "@yearly dummy:", "--enable-file", marker,
                        "--fire-at-start") as svc:
                svc.wait_line(f"schedule '@yearly dummy:': skipped: enable file {marker} "
                              "is absent")
                svc.wait_line("next run at ")
                self.assertFalse([x for x in svc.lines if "published" in x], svc.lines)
            open(marker, "w").close()
            with daemon("--schedule", "@yearly dummy:", "--enable-file", marker,
                        "--fire-at-start") as svc:
                svc.wait_line(PUBLISHED + r"\(target dummy:, every probe\)")
                self.assertFalse([x for x in svc.lines if "skipped" in x], svc.lines)

    def test_sigterm_stops_while_waiting(self):
        """The wait for the next run (a year away) ends at SIGTERM: a stop that waited for the
        firing would not come within any deadline."""
        svc = daemon("--schedule", "0 0 1 1 *", "--jitter", "5")
        try:
            svc.wait_line("next run at ")
            svc.proc.send_signal(signal.SIGTERM)
            code = svc.proc.wait(WAIT)
            self.assertEqual(code, 0)
        finally:
            svc.stop()
        svc.wait_line(r"info  scheduler: stopped")

    def test_follows_the_apis_schedules_and_pause(self):
        """--api: the schedules edited through the API (or its UI) drive a standalone
        scheduler, pause and resume included; an API that goes away changes nothing. The API
        is --private: the scheduler reads with its token (DSTMC_TOKEN)."""
        a = api("--private")
        try:
            c = Client(a, token=TOKEN)
            self.assertEqual(c.request("PUT", "/api/v1/schedules", json_body={"schedules": [
                {"cron": "0 0 1 1 *", "target": "dummy:"}]}).status, 200)
            anonymous = Client(a)
            self.assertEqual(anonymous.get("/api/v1/schedules").status, 401)
            anonymous.close()
            with daemon("--schedule", "*/5 * * * *", "--api", a.url,
                        env={"TZ": "UTC", "DSTMC_TOKEN": TOKEN}) as svc:
                svc.wait_line(r"schedules: 1 enabled$")
                year = datetime.datetime.now(datetime.timezone.utc).year + 1
                svc.wait_line(rf"next run at {year}-01-01T00:00:00\.000\+00:00")
                self.assertEqual(c.request("POST", "/api/v1/schedules/pause").status, 200)
                svc.wait_line(r"schedules: 1 enabled, paused")
                svc.wait_line(r"schedules paused")
                self.assertEqual(c.request("POST", "/api/v1/schedules/resume").status, 200)
                n = len([x for x in svc.lines if x.endswith("schedules: 1 enabled")])
                self.assertTrue(wait_lines(svc, r"schedules: 1 enabled$", n + 1))
                c.close()
                a.stop()
                svc.wait_line(r"cannot read the schedules at .*: keeping the ones in use")
                self.assertIsNone(svc.proc.poll())
        finally:
            a.stop()


def wait_lines(svc, pattern, n, deadline=WAIT):
    """Waits until n lines match pattern."""
    import re
    rx, end = re.compile(pattern), time.monotonic() + deadline
    while time.monotonic() < end:
        if len([x for x in svc.lines if rx.search(x)]) >= n:
            return True
        time.sleep(0.1)
    return False
