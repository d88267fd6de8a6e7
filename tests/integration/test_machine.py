"""test_machine.py - `dstmc machine`, the service the ping-echo monitor watches (Machine1/2)."""
from harness import Client, Service, TestCase, run


class MachineTest(TestCase):
    def test_ping_and_sums(self):
        with Service("machine", "--listen", "127.0.0.1:0") as m:
            c = Client(m)
            r = c.get("/ping")
            self.assertEqual((r.status, r.text), (200, "pong"))
            for q, want in [("first=2&second=3", 5), ("first=-7&second=2.5", -4.5),
                            ("first=0.5&second=0.25", 0.75), ("first=1e3&second=1", 1001)]:
                j = c.get("/?" + q).json()
                self.assertEqual((j["sum"], j["err"]), (want, False), q)
                self.assertTrue(1 <= j["random"] <= 40, j)
            self.assertNotIn(".", c.get("/?first=2&second=3").text.split('"random"')[0])
            for q in ["", "first=1", "second=1", "first=x&second=1", "first=1&second=",
                      "first=inf&second=1", "first=nan&second=1", "first=1&second=2abc"]:
                self.assertEqual(c.get("/?" + q).json(), {"err": True}, q)
            self.assertEqual(c.get("/nope").status, 404)
            c.close()

    def test_second_machines_range(self):
        with Service("machine", "--listen", "127.0.0.1:0", "--random-min", "70",
                     "--random-max", "100") as m:
            c = Client(m)
            seen = {c.get("/?first=1&second=1").json()["random"] for _ in range(200)}
            self.assertTrue(all(70 <= r <= 100 for r in seen), seen)
            self.assertGreater(len(seen), 10)  # random, not a constant
            c.close()

    def test_bad_config(self):
        code, _, err = run("machine", "--random-min", "50", "--random-max", "10")
        self.assertEqual(code, 2)
        self.assertIn("random-max", err)
        code, _, err = run("machine", "--random-min", "x")
        self.assertEqual(code, 2)
