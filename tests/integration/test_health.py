"""test_health.py - `dstmc health`, the check a container's HEALTHCHECK runs (no curl in the image)."""
from harness import RefusingPort, Service, TestCase, run


class HealthTest(TestCase):
    def test_answers(self):
        with Service("machine", "--listen", "127.0.0.1:0") as m:
            base = f"http://127.0.0.1:{m.port}"
            rc, out, _ = run("health", base + "/ping")
            self.assertEqual(rc, 0)
            self.assertIn("HTTP 200", out)
            rc, _, err = run("health", env={"DSTMC_HEALTH_URL": base + "/ping"})
            self.assertEqual(rc, 0, err)
            # No URL: /ping at the port the service's own DSTMC_LISTEN names (the container's env).
            rc, out, err = run("health", env={"DSTMC_LISTEN": f"0.0.0.0:{m.port}"})
            self.assertEqual(rc, 0, err)
            self.assertIn(f"http://127.0.0.1:{m.port}/ping", out)
            rc, _, err = run("health", base + "/nope")
            self.assertEqual(rc, 1)
            self.assertIn("HTTP 404", err)

    def test_down(self):
        with RefusingPort() as p:
            rc, _, err = run("health", f"http://127.0.0.1:{p.port}/healthz",
                             env={"DSTMC_HEALTH_URL": ""})
            self.assertEqual(rc, 1)
            self.assertIn("Couldn't connect", err)

    def test_stopped_service_times_out(self):
        with Service("machine", "--listen", "127.0.0.1:0") as m:
            m.pause()
            try:
                rc, _, err = run("health", f"http://127.0.0.1:{m.port}/ping",
                                 "--health-deadline-ms", "300")
            finally:
                m.resume()
            self.assertEqual(rc, 1)
            self.assertIn("dstmc health:", err)

    def test_bad_option(self):
        rc, _, err = run("health", "--health-deadline-ms", "0")
        self.assertEqual(rc, 2)
        self.assertIn("--health-deadline-ms", err)
