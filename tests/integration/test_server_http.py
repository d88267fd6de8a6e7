"""test_server_http.py - `dstmc server`'s HTTP protocols over the wire.

The Speedtest Mini / legacy speedtest.net contract (what speedtest-cli 2.1.3 --mini needs), the
LibreSpeed back end checked to the byte with curl, speedtest-cli itself against the server,
bad input, the /metrics counters, and --idle-exit. Everything talks to 127.0.0.1 only.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
import zlib

import harness

MIB = 1 << 20
# The legacy Mini kit's random{N}x{N}.jpg sizes (see src/speedtest/server/speedtest.c).
SIZES = {350: 245388, 500: 505544, 750: 1118012, 1000: 1986284, 1500: 4468241, 2000: 7907740,
         2500: 12407926, 3000: 17816816, 3500: 24262167, 4000: 31625365}
MINI_RE = re.compile(rb'upload_?[Ee]xtension: "([^"]+)"')  # speedtest-cli's own regex
NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0, s-maxage=0"


def server(*extra, **kw):
    """`dstmc server` with only its HTTP listener, on a free loopback port."""
    return harness.Service("server", "--http", "127.0.0.1:0", "--ookla", "off", "--iperf3", "off",
                           *extra, **kw)


def once(svc, method, path, **kw):
    """One request on a connection of its own."""
    c = harness.Client(svc)
    try:
        return c.request(method, path, **kw)
    finally:
        c.close()


def metrics(svc):
    """The server's /metrics as {(name, ((label, value), ...)): number}."""
    out = {}
    text = once(svc, "GET", "/metrics").text
    for line in text.splitlines():
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def counter(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def requests(m, protocol, kind):
    return counter(m, "dstmc_server_requests_total", protocol=protocol, kind=kind)


def payload(m, protocol, direction):
    return counter(m, "dstmc_server_bytes_total", protocol=protocol, direction=direction)


def incompressible(data):
    return len(zlib.compress(data, 1)) / len(data) > 0.99


def curl(*args):
    """Runs curl -s with args; returns what it wrote to stdout (with -D -, headers first)."""
    p = subprocess.run(["curl", "-s", "--max-time", "60", *args], capture_output=True,
                       timeout=90, check=True)
    return p.stdout


def split_head(raw):
    """(status, {lowercase name: [values]}, rest) of one response head at the start of raw."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return int(lines[0].split()[1]), hdrs, rest


class MiniTest(harness.TestCase):
    """The Speedtest Mini / legacy speedtest.net contract, on one server."""

    @classmethod
    def setUpClass(cls):
        cls.svc = server("--max-bytes", str(40 * MIB))
        cls.c = harness.Client(cls.svc)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.svc.stop()

    def test_index_has_upload_extension(self):
        for path in ["/", "/?x=1.0", "/index.html", "/mini", "/mini/", "/mini/index.html"]:
            r = self.c.get(path)
            self.assertEqual(r.status, 200, path)
            m = MINI_RE.search(r.body)
            self.assertIsNotNone(m, path)
            self.assertEqual(m.group(1), b"php")

    def test_latency(self):
        for path in ["/speedtest/latency.txt?x=123", "/mini/speedtest/latency.txt"]:
            r = self.c.get(path)
            self.assertEqual((r.status, r.body), (200, b"test=test\n"), path)

    def test_random_files_sizes_and_bytes(self):
        for n, size in SIZES.items():
            r = self.c.get(f"/speedtest/random{n}x{n}.jpg?x=1.{n}")
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), size, n)
            self.assertEqual(int(r.header("Content-Length")), size)
            self.assertTrue(incompressible(r.body), n)
        r = self.c.get("/mini/speedtest/random350x350.jpg")
        self.assertEqual(len(r.body), SIZES[350])
        head = self.c.request("HEAD", "/speedtest/random500x500.jpg")
        self.assertEqual((head.status, head.body), (200, b""))
        self.assertEqual(int(head.header("Content-Length")), SIZES[500])
        for bad in ["random123x123.jpg", "random350x500.jpg", "random350x350.png", "x"]:
            self.assertEqual(self.c.get(f"/speedtest/{bad}").status, 404, bad)

    def test_upload_32mib(self):
        body = b"content1=" + b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * (32 * MIB // 36 + 1)
        body = body[:32 * MIB]
        r = self.c.post("/speedtest/upload.php?x=1.0", body=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((r.status, r.body), (200, b"size=33554432"))

    def test_upload_every_extension(self):
        for path in ["/speedtest/upload.php", "/speedtest/upload.asp", "/speedtest/upload.aspx",
                     "/speedtest/upload.jsp", "/upload.php", "/mini/speedtest/upload.php"]:
            r = self.c.post(path, body=b"x" * 1234)
            self.assertEqual((r.status, r.body), (200, b"size=1234"), path)
            r = self.c.get(path)
            self.assertEqual((r.status, r.body), (200, b"size=0"), path)

    def test_mini_probe_with_double_slash(self):
        raw = harness.raw_request(self.svc.host, self.svc.port,
                                  b"GET /mini//speedtest/upload.php HTTP/1.1\r\n"
                                  b"Host: x\r\nConnection: close\r\n\r\n")
        status, _, body = split_head(raw)
        self.assertEqual((status, body), (200, b"size=0"))

    def test_config_absolute_form(self):
        """speedtest-cli asks for the config through http_proxy: an absolute-form target."""
        raw = harness.raw_request(self.svc.host, self.svc.port,
                                  b"GET http://www.speedtest.net/speedtest-config.php?x=17.0 "
                                  b"HTTP/1.1\r\nHost: www.speedtest.net\r\n"
                                  b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        status, _, body = split_head(raw)
        self.assertEqual(status, 200)
        root = ET.fromstring(body)
        client = root.find("client").attrib
        self.assertEqual(client["ip"], "127.0.0.1")
        self.assertEqual((float(client["lat"]), float(client["lon"])), (59.9139, 10.7522))
        self.assertEqual(client["isp"], "dstmc test network")
        self.assertEqual(root.find("server-config").attrib["threadcount"], "4")
        self.assertEqual(root.find("server-config").attrib["ignoreids"], "")
        self.assertEqual(root.find("download").attrib["testlength"], "10")
        self.assertEqual(root.find("download").attrib["threadsperurl"], "4")
        up = root.find("upload").attrib
        self.assertEqual((up["testlength"], up["ratio"], up["maxchunkcount"], up["threads"]),
                         ("10", "5", "50", "2"))

    def test_config_under_speedtest(self):
        r = self.c.get("/speedtest/speedtest-config.php", headers={"X-Forwarded-For": "8.8.4.4"})
        self.assertEqual(r.status, 200)
        self.assertEqual(ET.fromstring(r.body).find("client").attrib["ip"], "8.8.4.4")

    def test_server_list_names_this_server(self):
        for path in ["/speedtest-servers.php", "/speedtest-servers-static.php?threads=8",
                     "/speedtest/speedtest-servers.php",
                     "/speedtest/speedtest-servers-static.php"]:
            r = self.c.get(path)
            self.assertEqual(r.status, 200, path)
            servers = ET.fromstring(r.body).find("servers").findall("server")
            self.assertEqual(len(servers), 1)
            s = servers[0].attrib
            self.assertEqual(s["url"], f"{self.svc.url}/speedtest/upload.php")
            self.assertEqual(s["host"], f"127.0.0.1:{self.svc.port}")
            self.assertEqual((s["name"], s["sponsor"], s["country"], s["cc"], s["id"]),
                             ("dstmc", "dstmc", "Norway", "NO", "1"))

    def test_bad_input_never_crashes(self):
        self.assertEqual(self.c.post("/speedtest/random350x350.jpg", body=b"x").status, 405)
        raw = harness.raw_request(self.svc.host, self.svc.port, b"\x00\xffNONSENSE\r\n\r\n")
        self.assertTrue(raw == b"" or b" 400 " in raw[:20], raw[:60])
        raw = harness.raw_request(self.svc.host, self.svc.port,
                                  b"POST /speedtest/upload.php HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 99999999999999999999999\r\n\r\n")
        self.assertTrue(raw == b"" or b" 413 " in raw[:20] or b" 400 " in raw[:20], raw[:60])
        self.assertEqual(self.c.get("/ping").status, 200)


class ServerListOptionsTest(harness.TestCase):
    def test_public_url_and_escaping(self):
        with server("--name", 'Oslo "lab" & <co>', "--sponsor", "Acme", "--country", "Sweden",
                    "--cc", "SE", "--id", "42", "--lat", "1.5", "--lon", "-2.25",
                    "--public-url", "http://speed.example:8081/") as svc:
            r = once(svc, "GET", "/speedtest-servers-static.php")
            s = ET.fromstring(r.body).find("servers/server").attrib
            self.assertEqual(s["url"], "http://speed.example:8081/speedtest/upload.php")
            self.assertEqual(s["host"], "speed.example:8081")
            self.assertEqual(s["name"], 'Oslo "lab" & <co>')
            self.assertEqual((s["sponsor"], s["country"], s["cc"], s["id"]),
                             ("Acme", "Sweden", "SE", "42"))
            self.assertEqual((float(s["lat"]), float(s["lon"])), (1.5, -2.25))

    def test_long_texts_are_given_whole(self):
        """--public-url was cut at 512 bytes in the server list, --isp at 512 in getIP."""
        base, isp = "http://speed.example:8081/" + "p" * 600, "I" * 600
        with server("--public-url", base + "/", "--isp", isp) as svc:
            r = once(svc, "GET", "/speedtest-servers-static.php")
            s = ET.fromstring(r.body).find("servers/server").attrib
            self.assertEqual(s["url"], base + "/speedtest/upload.php")
            r = once(svc, "GET", "/getIP?isp=true", headers={"X-Forwarded-For": "8.8.8.8"})
            self.assertEqual(r.json()["processedString"], f"8.8.8.8 - {isp}, NO")


class LibreSpeedTest(harness.TestCase):
    """The LibreSpeed back end, checked with curl."""

    @classmethod
    def setUpClass(cls):
        cls.svc = server("--max-bytes", str(1100 * MIB))
        cls.tmp = tempfile.mkdtemp(prefix="dstmc-ls-")

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        shutil.rmtree(cls.tmp)

    def fetch(self, path, *args):
        status, hdrs, body = split_head(curl("-D", "-", *args, self.svc.url + path))
        return status, hdrs, body

    def test_garbage_bytes_and_headers(self):
        for path, mib in [("/garbage.php?ckSize=20&r=0.123", 20), ("/garbage", 4),
                          ("/backend/garbage.php?ckSize=1", 1), ("/backend/garbage?ckSize=", 4)]:
            status, h, body = self.fetch(path)
            self.assertEqual(status, 200, path)
            self.assertEqual(len(body), mib * MIB, path)
            self.assertEqual(h["content-length"], [str(mib * MIB)])
            self.assertEqual(h["content-type"], ["application/octet-stream"])
            self.assertEqual(h["content-disposition"], ["attachment; filename=random.dat"])
            self.assertIn(NO_CACHE, h["cache-control"])
            self.assertEqual(h["pragma"], ["no-cache"])
            self.assertNotIn("content-encoding", h)
            self.assertTrue(incompressible(body), path)

    def test_garbage_1024_and_clamp(self):
        for ck in ["1024", "2000", "99999999999999999999999"]:
            out = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                       f"{self.svc.url}/garbage.php?ckSize={ck}")
            self.assertEqual(out, f"200 {1024 * MIB}".encode(), ck)

    def test_garbage_bad_cksize_is_400(self):
        for ck in ["-1", "0", "abc", "1e3", "1.5", "+4", "%20"]:
            status, h, body = self.fetch(f"/garbage?ckSize={ck}")
            self.assertEqual(status, 400, ck)
            self.assertIn("ckSize", json.loads(body)["error"]["message"])

    def test_empty_is_empty_and_kept_alive(self):
        out = curl("-D", "-", "-w", "[%{http_code} %{size_download} %{num_connects}]\n",
                   f"{self.svc.url}/empty.php?r=1", f"{self.svc.url}/backend/empty?r=2")
        self.assertEqual(re.findall(rb"\[(.*)\]", out), [b"200 0 1", b"200 0 0"])
        status, h, body = split_head(out)
        self.assertEqual((status, body[:1], h["content-length"]), (200, b"[", ["0"]))
        self.assertIn(NO_CACHE, h["cache-control"])
        self.assertEqual(h["pragma"], ["no-cache"])
        self.assertNotIn("close", h.get("connection", [""])[0].lower())

    def test_empty_post_drains_20mb(self):
        path = os.path.join(self.tmp, "blob")
        with open(path, "wb") as f:
            f.write(os.urandom(20 * MIB))
        before = payload(metrics(self.svc), "librespeed", "in")
        out = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download} %{size_upload}",
                   "--data-binary", "@" + path, "-H", "Content-Type: application/octet-stream",
                   f"{self.svc.url}/empty.php?cors=true&r=0.5")
        self.assertEqual(out, f"200 0 {20 * MIB}".encode())
        harness.wait_for(lambda: payload(metrics(self.svc), "librespeed", "in") > before)
        self.assertEqual(payload(metrics(self.svc), "librespeed", "in") - before, 20 * MIB)

    def test_getip_plain_and_isp(self):
        status, h, body = self.fetch("/getIP.php")
        self.assertEqual((status, body), (200, b"127.0.0.1"))
        self.assertIn(NO_CACHE, h["cache-control"])
        status, h, body = self.fetch("/getIP?isp=true&distance=km")
        self.assertEqual(json.loads(body), {"processedString": "127.0.0.1 - localhost IPv4 access",
                                            "rawIspInfo": ""})
        cases = {"8.8.8.8": "8.8.8.8 - dstmc test network, NO (<20 km)",
                 "10.1.2.3": "10.1.2.3 - private IPv4 access",
                 "172.20.0.1": "172.20.0.1 - private IPv4 access",
                 "192.168.1.1, 8.8.8.8": "192.168.1.1 - private IPv4 access",
                 "169.254.0.9": "169.254.0.9 - link-local IPv4 access",
                 "100.64.1.1": "100.64.1.1 - CGNAT IPv4 access",
                 "fe80::1": "fe80::1 - link-local IPv6 access",
                 "fd00::5": "fd00::5 - ULA IPv6 access",
                 "::1": "::1 - localhost IPv6 access",
                 "not-an-ip": "127.0.0.1 - localhost IPv4 access"}
        for xff, want in cases.items():
            _, _, body = self.fetch("/backend/getIP.php?isp=true&distance=km",
                                    "-H", f"X-Forwarded-For: {xff}")
            self.assertEqual(json.loads(body)["processedString"], want, xff)
        _, _, body = self.fetch("/getIP?isp=true", "-H", "X-Forwarded-For: 8.8.8.8")
        j = json.loads(body)
        self.assertEqual(j["processedString"], "8.8.8.8 - dstmc test network, NO")
        self.assertEqual((j["rawIspInfo"]["ip"], j["rawIspInfo"]["org"],
                          j["rawIspInfo"]["country"], j["rawIspInfo"]["loc"]),
                         ("8.8.8.8", "dstmc test network", "NO", "59.9139,10.7522"))
        _, _, body = self.fetch("/getIP", "-H", "X-Forwarded-For: 9.9.9.9")
        self.assertEqual(body, b"9.9.9.9")

    def test_cors(self):
        for path in ["/garbage?cors=true&ckSize=1", "/empty?cors=true", "/getIP?cors=true"]:
            _, h, _ = self.fetch(path)
            self.assertEqual(h["access-control-allow-origin"], ["*"], path)
            self.assertEqual(h["access-control-allow-methods"], ["GET, POST"], path)
            self.assertEqual(h["access-control-allow-headers"], ["Content-Encoding, Content-Type"])
        _, h, _ = self.fetch("/empty")
        self.assertEqual(h["access-control-allow-origin"], ["*"])  # the server's own, once
        self.assertNotIn("access-control-allow-methods", h)


class CapsTest(harness.TestCase):
    def test_max_bytes(self):
        with server("--max-bytes", str(3 * MIB)) as svc:
            out = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                       f"{svc.url}/garbage?ckSize=100")
            self.assertEqual(out, f"200 {3 * MIB}".encode())
            for path in ["/speedtest/upload.php", "/empty.php"]:
                raw = harness.raw_request(svc.host, svc.port,
                                          f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                          f"{4 * MIB}\r\nExpect: 100-continue\r\n\r\n".encode())
                self.assertEqual(split_head(raw)[0], 413, path)
                r = once(svc, "POST", path, body=b"y" * (3 * MIB + 1))
                self.assertEqual(r.status, 413, path)
                r = once(svc, "POST", path, body=b"y" * (3 * MIB))
                self.assertEqual(r.status, 200, path)
            # a request is counted when libmicrohttpd is done with it, which for a refused
            # body can be a moment after the client has its 413
            harness.wait_for(lambda: requests(metrics(svc), "librespeed", "error") == 2,
                             what="both librespeed refusals counted")
            m = metrics(svc)
            self.assertEqual(requests(m, "speedtest", "error"), 2)
            self.assertEqual(requests(m, "librespeed", "error"), 2)
            self.assertEqual(requests(m, "speedtest", "upload"), 1)
            self.assertEqual(payload(m, "librespeed", "out"), 3 * MIB)


class CountersTest(harness.TestCase):
    def test_counters_match_what_moved(self):
        with server() as svc:
            c = harness.Client(svc)
            self.assertEqual(len(c.get("/garbage?ckSize=5").body), 5 * MIB)
            self.assertEqual(c.post("/empty", body=b"z" * 777777).status, 200)
            self.assertEqual(len(c.get("/speedtest/random1000x1000.jpg").body), SIZES[1000])
            self.assertEqual(c.post("/speedtest/upload.php", body=b"u" * 4321).body, b"size=4321")
            c.get("/speedtest/latency.txt")
            c.get("/getIP")
            c.get("/empty")

            def settled():
                m = metrics(svc)
                return m if requests(m, "librespeed", "ping") == 1 else None
            m = harness.wait_for(settled)
            c.close()
            self.assertEqual(payload(m, "librespeed", "out"), 5 * MIB)
            self.assertEqual(payload(m, "librespeed", "in"), 777777)
            self.assertEqual(payload(m, "speedtest", "out"), SIZES[1000])
            self.assertEqual(payload(m, "speedtest", "in"), 4321)
            for proto, kind in [("librespeed", "download"), ("librespeed", "upload"),
                                ("librespeed", "ip"), ("speedtest", "download"),
                                ("speedtest", "upload"), ("speedtest", "latency")]:
                self.assertEqual(requests(m, proto, kind), 1, (proto, kind))
            self.assertEqual(counter(m, "dstmc_server_tests_active"), 0)


    def test_cut_upload_counts_and_ends_at_once(self):
        """A client that gives up mid-upload: the bytes read count, and the server is idle again
        long before the 60 s connection timeout."""
        with server() as svc:
            s = socket.create_connection((svc.host, svc.port), timeout=harness.WAIT)
            s.sendall(b"POST /empty.php HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
                      + b"c" * 300000)
            s.close()

            def idle_again():  # counted, then idle: two steps another thread may see between
                m = metrics(svc)
                return m if (requests(m, "librespeed", "error") == 1 and
                             counter(m, "dstmc_server_tests_active") == 0) else None
            m = harness.wait_for(idle_again, what="the cut upload to end, idle")
            self.assertGreater(payload(m, "librespeed", "in"), 0)
            self.assertLessEqual(payload(m, "librespeed", "in"), 300000)


@unittest.skipUnless(shutil.which("speedtest-cli"), "speedtest-cli not installed (scripts/deps.sh)")
class SpeedtestCliTest(harness.TestCase):
    """speedtest-cli 2.1.3 --mini against the server; its config comes through http_proxy."""

    def test_mini_run(self):
        with server() as svc:
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env.update(http_proxy=svc.url, no_proxy="127.0.0.1,localhost")
            t0 = time.monotonic()
            p = subprocess.run(["timeout", "120", "speedtest-cli", "--mini", svc.url + "/",
                                "--json"], capture_output=True, env=env, timeout=150)
            elapsed = time.monotonic() - t0
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            res = json.loads(p.stdout)
            m = harness.wait_for(lambda: (lambda m: m if counter(
                m, "dstmc_server_tests_active") == 0 else None)(metrics(svc)))
            served = 4 * sum(SIZES.values())  # threadsperurl × every size: 409,373,932
            if elapsed < 10:  # the download phase ended before testlength: every byte counted
                self.assertEqual(res["bytes_received"], served)
                self.assertEqual(requests(m, "speedtest", "download"), 40)
                self.assertEqual(requests(m, "speedtest", "upload"), 51)
            else:
                self.assertLessEqual(res["bytes_received"], served)
            self.assertGreater(res["download"], 0)
            self.assertGreater(res["upload"], 0)
            self.assertEqual(res["server"]["url"], f"{svc.url}/speedtest/upload.php")
            self.assertEqual(res["client"]["isp"], "dstmc test network")
            self.assertEqual(payload(m, "speedtest", "out"), res["bytes_received"])
            self.assertEqual(payload(m, "speedtest", "in"), res["bytes_sent"])
            self.assertEqual(requests(m, "speedtest", "config"), 1)  # through the proxy
            self.assertEqual(requests(m, "speedtest", "latency"), 3)
            self.assertEqual(requests(m, "speedtest", "error"), 0)  # every POST got 200 size=N


class IdleExitTest(harness.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dstmc-idle-")
        self.flag = os.path.join(self.tmp, "idle")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_exits_and_runs_on_idle(self):
        svc = server("--idle-exit", "1", "--on-idle", f"touch {self.flag}")
        try:
            harness.wait_for(lambda: svc.proc.poll() is not None, what="idle exit")
        finally:
            rc = svc.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(self.flag))

    def test_download_in_progress_keeps_it_up(self):
        svc = server("--idle-exit", "2", "--on-idle", f"touch {self.flag}")
        try:
            s = socket.create_connection((svc.host, svc.port), timeout=harness.WAIT)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
            s.sendall(b"GET /garbage?ckSize=1024 HTTP/1.1\r\nHost: x\r\n\r\n")
            got, end = 0, time.monotonic() + 5  # reads slowly for 5 s, over twice --idle-exit
            while time.monotonic() < end:
                got += len(s.recv(16 * 1024))
                self.assertIsNone(svc.proc.poll(), "exited during a download")
                time.sleep(0.05)  # pacing the reader, not synchronisation
            self.assertLess(got, 1024 * MIB)  # still downloading
            s.close()
            harness.wait_for(lambda: svc.proc.poll() is not None, what="idle exit")
        finally:
            rc = svc.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(self.flag))


if __name__ == "__main__":
    unittest.main()
