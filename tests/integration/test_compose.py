"""test_compose.py - the Compose files of deploy/compose/, each brought up from the images of
`make image`, its whole path checked, one service taken down, its failover checked, and all of
it brought down (containers, networks, volumes) even when a check fails.

Needs root, Debian's docker.io and docker-compose: starts dockerd (scripts/dockerd.sh: no
iptables rules, so the suite's own network namespaces keep working) unless one answers, and
stops it at the end if it started it. Skipped, saying why, when no daemon can run. The images
are built once per run (scripts/image.sh; Docker's layer cache makes a rebuild of an unchanged
tree quick). Services are reached at ports published on 127.0.0.1 (random ones) or, for the
drill, at the addresses of the network it creates.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import TOKEN, TestCase, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE_DIR = os.path.join(ROOT, "deploy", "compose")
DOCKER = "/usr/bin/docker"  # Debian's client, the daemon's own version
UP_WAIT = 180.0  # a cold start on a loaded 2-vCPU box: PostgreSQL's initdb, the health checks
ENV = {"DOCKER_HOST": "unix:///var/run/docker.sock", "DSTMC_PUBLISH": "127.0.0.1:",
       "DSTMC_IMAGE_TAG": "latest"}
started_dockerd = False
skip_reason = None


def sh(args, timeout=300, check=True, env=None):
    full = dict(os.environ)
    full.update(ENV)
    full.update(env or {})
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=full,
                       stdin=subprocess.DEVNULL, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr[-2000:]}")
    return p


def setUpModule():
    global started_dockerd, skip_reason
    if os.geteuid() != 0:
        skip_reason = "starting dockerd and building images needs root"
    elif not (os.access("/usr/sbin/dockerd", os.X_OK) and shutil.which("docker-compose")):
        skip_reason = "Debian's docker.io and docker-compose are not installed (scripts/deps.sh)"
    if skip_reason:
        return
    p = sh([os.path.join(ROOT, "scripts", "dockerd.sh"), "start"], timeout=120, check=False)
    if p.returncode != 0:
        skip_reason = f"dockerd cannot start here: {p.stderr.strip()[-500:]}"
        return
    started_dockerd = p.stdout.strip() == "started"
    t0 = time.monotonic()
    sh([os.path.join(ROOT, "scripts", "image.sh")], timeout=1800)
    print(f"images ready in {time.monotonic() - t0:.0f} s", flush=True)


def tearDownModule():
    if started_dockerd:
        sh([os.path.join(ROOT, "scripts", "dockerd.sh"), "stop"], timeout=120, check=False)


def http(method, url, body=None, token=None, timeout=10.0):
    """(status, headers, body bytes); a refused or cut connection is status 0."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except (OSError, urllib.error.URLError):
        return 0, {}, b""


def get_json(url):
    status, _, body = http("GET", url)
    return json.loads(body) if status == 200 else None


class Stack:
    """One Compose project from one file: up, ports, stop, and down with its volumes."""

    def __init__(self, test, name, env):
        self.file = os.path.join(COMPOSE_DIR, name)
        self.project = f"dstmcsmoke{os.getpid()}{name.split('.')[0]}"
        self.env = env
        test.addCleanup(self.down)
        t0 = time.monotonic()
        self.compose("up", "-d", timeout=600)
        self.up_s = time.monotonic() - t0

    def compose(self, *args, timeout=300, check=True):
        return sh(["docker-compose", "-p", self.project, "-f", self.file, *args],
                  timeout=timeout, check=check, env=self.env)

    def down(self):
        self.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        left = sh([DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
                  check=False).stdout.split()
        if left:  # never leave one behind, whatever compose did
            sh([DOCKER, "rm", "-f", "-v", *left], check=False)

    def url(self, service, port):
        out = self.compose("port", service, str(port)).stdout.strip()
        return "http://" + out.splitlines()[-1]

    def container(self, service):
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service):
        return sh([DOCKER, "inspect", "-f", "{{.State.Health.Status}}",
                   self.container(service)]).stdout.strip()


def services_up(monitor):
    """Whether each backend's service is up, as the monitor sees it."""
    j = get_json(monitor + "/monitor/status")
    return [b["service"]["up"] for b in j["backends"]] if j else None


def results(base):
    j = get_json(base + "/api/v1/results")
    return j["results"] if j else []


class ComposeTest(TestCase):
    def setUp(self):
        if skip_reason:
            self.skipTest(skip_reason)
        self.t0 = time.monotonic()

    def tearDown(self):
        print(f"{self.id()}: {time.monotonic() - self.t0:.0f} s", flush=True)

    def test_a_up_alone_on_a_named_volume(self):
        st = Stack(self, "up.yaml", {"DSTMC_TOKEN": TOKEN, "DSTMC_TARGET": "dummy:"})
        base = st.url("up", 8080)
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, UP_WAIT, "up ready")
        status, _, page = http("GET", base + "/")
        self.assertEqual(status, 200)
        self.assertIn(b"<title>dstmc", page)  # the embedded web UI
        user = sh([DOCKER, "inspect", "-f", "{{.Config.User}}", st.container("up")]).stdout
        self.assertEqual(user.strip(), "10001:10001")
        self.assertEqual(http("POST", base + "/api/v1/run", {}, token=TOKEN)[0], 202)
        first = wait_for(lambda: results(base), UP_WAIT, "a result of the run")
        self.assertEqual((first[0]["status"], first[0]["probe"]), ("ok", "compose"))
        wait_for(lambda: st.health("up") == "healthy", UP_WAIT, "HEALTHCHECK healthy")
        # down: the container goes; the named volume keeps the database
        st.compose("rm", "-s", "-f", "up")
        self.assertEqual(http("GET", base + "/readyz")[0], 0)
        st.compose("up", "-d")
        base = st.url("up", 8080)
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, UP_WAIT, "up ready again")
        # (the schedule, every 15 minutes, may have added one meanwhile)
        self.assertIn(first[0]["id"], [r["id"] for r in results(base)])

    def test_b_distributed_speed_test(self):
        st = Stack(self, "distributed.yaml", {
            "DSTMC_TOKEN": TOKEN, "POSTGRES_PASSWORD": os.urandom(12).hex(),
            "DSTMC_SCHEDULE": "0 0 1 1 * dummy:"})
        base = st.url("monitor", 3000)
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, UP_WAIT, "an API via the monitor")
        wait_for(lambda: services_up(base) == [True, True], UP_WAIT, "both API replicas up")
        # a real test: probe-1 against `server`, through the queue, stored via the monitor
        req = {"target": "speedtest://server:8081", "probe": "probe-1"}
        self.assertEqual(http("POST", base + "/api/v1/run", req, token=TOKEN)[0], 202)
        r = wait_for(lambda: results(base), UP_WAIT, "probe-1's result")[0]
        self.assertEqual((r["probe"], r["status"]), ("probe-1", "ok"), r)
        self.assertGreater(r["download_bps"], 0)
        self.assertGreater(r["upload_bps"], 0)
        appendonly = st.compose("exec", "-T", "redis", "redis-cli", "config", "get",
                                "appendonly").stdout.split()
        self.assertEqual(appendonly, ["appendonly", "yes"])
        # api1 down: the monitor sends everything to api2, which reads the same PostgreSQL
        st.compose("stop", "-t", "5", "api1")
        wait_for(lambda: services_up(base) == [False, True], UP_WAIT, "the monitor to see api1 down")
        self.assertEqual(http("POST", base + "/api/v1/run", {"target": "dummy:"}, token=TOKEN)[0],
                         202)
        got = wait_for(lambda: (lambda rs: rs if len(rs) == 3 else None)(results(base)), UP_WAIT,
                       "both probes' results of the second run")
        self.assertEqual(sorted(x["probe"] for x in got), ["probe-1", "probe-1", "probe-2"])
        _, headers, _ = http("GET", base + "/api/v1/results")
        self.assertEqual(headers.get("X-Dstmc-Backend"), "1")  # the second backend, api2

    def test_c_toystore_on_host_volumes(self):
        data = tempfile.mkdtemp(prefix="dstmc-toystore-")
        self.addCleanup(shutil.rmtree, data, True)
        for d in ("catalog", "orders"):
            os.makedirs(os.path.join(data, d))
        for d in (data, os.path.join(data, "catalog"), os.path.join(data, "orders")):
            os.chown(d, 10001, 10001)  # the image's user
        st = Stack(self, "toystore.yaml", {"DSTMC_TOYSTORE_DATA": data})
        base = st.url("frontend", 8100)
        wait_for(lambda: get_json(base + "/products/Tux"), UP_WAIT, "the front end")
        wait_for(lambda: (get_json(base + "/status/data") or {}).get("data", {}).get("leader") == 3,
                 UP_WAIT, "order replica 3 leading")
        status, _, body = http("POST", base + "/orders", {"name": "Tux", "quantity": 1})
        self.assertEqual((status, json.loads(body)), (200, {"data": {"order_number": 0}}))
        # the leader down: replica 2 takes over, and the numbers go on
        st.compose("stop", "-t", "5", "order3")
        wait_for(lambda: get_json(base + "/status/data")["data"]["leader"] == 2, UP_WAIT,
                 "replica 2 leading")
        status, _, body = http("POST", base + "/orders", {"name": "Tux", "quantity": 2})
        self.assertEqual((status, json.loads(body)), (200, {"data": {"order_number": 1}}))
        self.assertEqual(get_json(base + "/orders/1"),
                         {"data": {"number": 1, "name": "Tux", "quantity": 2}})
        st.down()
        # the files outlive the containers, on the host
        with open(os.path.join(data, "orders", "orders-2.txt")) as f:
            self.assertEqual([line.split(",")[:3] for line in f.read().splitlines()],
                             [["0", "Tux", "1"], ["1", "Tux", "2"]])
        self.assertTrue(os.path.getsize(os.path.join(data, "catalog", "catalog.txt")) > 0)

    def test_d_ping_echo_drill(self):
        routes = sh(["ip", "-4", "route", "show", "1.2.3.0/24"]).stdout.strip()
        if routes or sh([DOCKER, "ps", "-aq", "--filter", "name=^/(machine1|machine2|monitor)$"],
                        check=False).stdout.strip():
            self.skipTest(f"1.2.3.0/24 or the drill's container names are in use: {routes}")
        # a second to answer, not the original's 100 ms: a busy CI box must not flap the bulbs
        st = Stack(self, "drill.yaml", {"DSTMC_DRILL_TIMEOUT_MS": "1000"})
        mon = "http://1.2.3.150:3000"

        def bulbs():
            return get_json(mon + "/status")

        def calculate():
            j = get_json(mon + "/?first=2&second=3")
            self.assertEqual((j["sum"], j["err"]), (5, False), j)
            return j["random"]

        wait_for(lambda: bulbs() == {"VM": [1, 1], "B": [1, 1]}, UP_WAIT, "all bulbs on")
        self.assertIn(b"System Monitor", http("GET", mon + "/monitor/")[2])
        self.assertTrue(1 <= calculate() <= 40)  # machine1 answers
        sh([DOCKER, "pause", "machine1"])  # the service down, the machine up
        wait_for(lambda: bulbs() == {"VM": [1, 1], "B": [0, 1]}, UP_WAIT, "B1 black, VM1 green")
        self.assertTrue(70 <= calculate() <= 100)  # machine2 answers
        sh([DOCKER, "unpause", "machine1"])
        wait_for(lambda: bulbs() == {"VM": [1, 1], "B": [1, 1]}, UP_WAIT, "B1 back")
        sh([DOCKER, "stop", "-t", "2", "machine1"])  # the machine off
        wait_for(lambda: bulbs() == {"VM": [0, 1], "B": [0, 1]}, UP_WAIT, "VM1 red, B1 black")
        self.assertTrue(70 <= calculate() <= 100)
