"""test_accuracy.py - every engine against iperf3 on a real bottleneck.

Two network namespaces joined by a veth pair, both ends shaped with `tc qdisc ... tbf rate R`
(R = 10, 100, 1000 Mbit/s; netem is not available, tbf is). `dstmc server` runs in one
namespace, the probe (`dstmc run`) in the other. The iperf3 binary measures the same link in the
same run; each engine's download and upload must lie within +-5 % of it, or within iperf3's
own spread in that run when that is larger.

iperf3 measures each direction twice, before and after the engines, and the higher figure is
the reference: on a shaped link nothing beats the shaper, so a low figure is noise (seen once
under ASan with both cores busy: 9.02 against 9.7 Mbit/s for everything else). How far apart
its two figures are is how precisely the link can be measured in this run: on a busy machine a
fast link is limited by the CPU, for iperf3 and the engines alike (at 1000 Mbit/s beside a CPU
hog iperf3 measured 913 and 635 Mbit/s down, 801 and 956 up, in one run); an engine may be as
far off as iperf3 was from itself. An engine that misses is measured once more (both figures
printed); the second must hit.

When iperf3 did not reach 90 % of the shaped rate in either of its runs, the CPU, not the link,
was the limit of that run: then an engine above iperf3 is right as long as it does not beat the
shaper (at most the rate + 5 %) -- it only got more of the CPU than iperf3 did (at 1000 Mbit/s
beside two busy loops at a higher priority, iperf3 fell to 316-503 Mbit/s while the engines
measured up to 950). An engine below iperf3 must still come within the tolerance.

Needs root and network namespaces; where the machine forbids them the test is skipped with the
reason. Traffic stays between the namespaces this test creates (on 10.66.R.0/24).
"""
import json
import os
import shutil
import subprocess
import unittest

from harness import BIN, Service, TestCase, wait_for

RATES = [int(r) for r in os.environ.get("DSTMC_ACCURACY_RATES", "10,100,1000").split(",")]
SECONDS = int(os.environ.get("DSTMC_ACCURACY_SECONDS", "4"))
TOLERANCE = 0.05
ENGINES = ["speedtest", "librespeed", "ookla", "iperf3"]


def sh(*args, check=True, timeout=60):
    return subprocess.run(list(args), capture_output=True, text=True, check=check,
                          timeout=timeout)


def namespaces_forbidden():
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "tc", "iperf3"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    name = f"dstmc-probe-ns-{os.getpid()}"  # not another run's (namespaces are machine-wide)
    probe = sh("ip", "netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"ip netns add failed: {probe.stderr.strip()}"
    sh("ip", "netns", "del", name, check=False)
    return None


class Link:
    """Two namespaces, a veth pair between them, tbf at rate_mbit on both ends."""

    def __init__(self, rate_mbit):
        self.rate = rate_mbit
        tag = f"{os.getpid()}-{rate_mbit}"  # unique on the machine; "vs" + tag fits IFNAMSIZ
        self.server_ns, self.client_ns = f"dst-s-{tag}", f"dst-c-{tag}"
        subnet = {10: 10, 100: 100, 1000: 200}.get(rate_mbit, 50)
        self.server_ip, self.client_ip = f"10.66.{subnet}.2", f"10.66.{subnet}.1"
        burst = max(64 * 1024, rate_mbit * 1_000_000 // 8 // 100)  # >= 10 ms at the rate
        cmds = [
            ["ip", "netns", "add", self.server_ns], ["ip", "netns", "add", self.client_ns],
            ["ip", "link", "add", f"vs{tag}", "type", "veth", "peer", "name", f"vc{tag}"],
            ["ip", "link", "set", f"vs{tag}", "netns", self.server_ns],
            ["ip", "link", "set", f"vc{tag}", "netns", self.client_ns],
        ]
        for ns, dev, ip in ((self.server_ns, f"vs{tag}", self.server_ip),
                            (self.client_ns, f"vc{tag}", self.client_ip)):
            cmds += [["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev],
                     ["ip", "-n", ns, "link", "set", dev, "up"],
                     ["ip", "-n", ns, "link", "set", "lo", "up"],
                     ["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                      f"{rate_mbit}mbit", "burst", str(burst), "latency", "50ms"]]
        try:
            for c in cmds:
                sh(*c)
        except subprocess.CalledProcessError as e:
            self.close()
            raise unittest.SkipTest(f"cannot build the shaped link: {' '.join(e.cmd)}: "
                                    f"{e.stderr.strip()}")

    def run_in(self, ns, *args, timeout=120):
        return sh("ip", "netns", "exec", ns, *args, timeout=timeout)

    def close(self):
        for ns in (self.server_ns, self.client_ns):
            sh("ip", "netns", "del", ns, check=False)


def spread(refs):
    """How close an engine must come to the reference: TOLERANCE, or how far iperf3's own
    figures for that direction were apart in this run when that is more."""
    return max(TOLERANCE, 1 - min(refs) / max(refs))


def iperf3_reference(link, reverse):
    """The iperf3 binary over the link: receiver-side bit/s, the first second omitted."""
    srv = subprocess.Popen(["ip", "netns", "exec", link.server_ns, "iperf3", "-s", "-1", "-p",
                            "5299", "-B", link.server_ip], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5299 " in link.run_in(link.server_ns, "ss", "-ltn").stdout,
                 what="iperf3 -s listening")
        r = link.run_in(link.client_ns, "iperf3", "-c", link.server_ip, "-p", "5299", "-t",
                        str(SECONDS), "-O", "1", "-J", *(["-R"] if reverse else []),
                        timeout=SECONDS + 30)
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
    finally:
        srv.kill()
        srv.wait()


class AccuracyTest(TestCase):
    @classmethod
    def setUpClass(cls):
        why = namespaces_forbidden()
        if why:
            raise unittest.SkipTest(f"accuracy test skipped: {why}")

    def targets(self, link, http_port):
        host, d = link.server_ip, SECONDS
        return {
            "speedtest": f"speedtest://{host}:{http_port}/?duration={d}",
            "librespeed": f"librespeed://{host}:{http_port}/?duration={d}",
            "ookla": f"ookla://{host}:8080?duration={d}",
            "iperf3": f"iperf3://{host}:5201?duration={d}",
        }

    def run_engine(self, link, engine, target, rate):
        r = sh("ip", "netns", "exec", link.client_ns, BIN, "run", "--json", "--target", target,
               check=False, timeout=4 * SECONDS + 60)
        self.assertTrue(r.stdout, f"{engine} at {rate} Mbit/s: no output; {r.stderr[-2000:]}")
        res = json.loads(r.stdout)["result"]
        self.assertEqual(res["status"], "ok", f"{engine} at {rate} Mbit/s: {res}")
        return res["download_bps"], res["upload_bps"]

    def check_rate(self, rate):
        link = Link(rate)
        try:
            ref_up = [iperf3_reference(link, reverse=False)]
            ref_down = [iperf3_reference(link, reverse=True)]
            server = Service("server", "--http", f"{link.server_ip}:8081", "--ookla",
                             f"{link.server_ip}:8080", "--iperf3", f"{link.server_ip}:5201",
                             wrap=["ip", "netns", "exec", link.server_ns])
            try:
                server.listeners(3)  # http, ookla, iperf3: all bound before the first test
                tries = {}
                for engine, target in self.targets(link, 8081).items():
                    if engine in ENGINES:
                        tries[engine] = [self.run_engine(link, engine, target, rate)]
                ref_up.append(iperf3_reference(link, reverse=False))
                ref_down.append(iperf3_reference(link, reverse=True))
                down, up = max(ref_down), max(ref_up)
                tol = (spread(ref_down), spread(ref_up))
                for engine, target in self.targets(link, 8081).items():
                    if engine in tries and not self.within(tries[engine][0], down, up, tol, rate):
                        tries[engine].append(self.run_engine(link, engine, target, rate))
            finally:
                server.stop()
        finally:
            link.close()
        lines = [f"{rate} Mbit/s tbf: iperf3 down " +
                 " / ".join(f"{v / 1e6:.2f}" for v in ref_down) + " up " +
                 " / ".join(f"{v / 1e6:.2f}" for v in ref_up) + " (the higher is the reference; "
                 f"an engine within {tol[0]:.1%} down, {tol[1]:.1%} up)"]
        bad = []
        for engine, measured in tries.items():
            for e_down, e_up in measured:
                lines.append(f"  {engine:10s} down {e_down / 1e6:8.2f} ({e_down / down - 1:+.1%})"
                             f"  up {e_up / 1e6:8.2f} ({e_up / up - 1:+.1%})")
            if not self.within(measured[-1], down, up, tol, rate):
                bad.append(engine)
        print("\n".join(lines))
        self.assertEqual(bad, [], "\n".join(lines))

    @staticmethod
    def within(measured, ref_down, ref_up, tol, rate):
        def near(e, ref, t):
            cpu_bound = ref < 0.9 * rate * 1e6  # iperf3 could not fill the link
            return abs(e / ref - 1) <= t or (cpu_bound and ref <= e <= 1.05 * rate * 1e6)
        e_down, e_up = measured
        return near(e_down, ref_down, tol[0]) and near(e_up, ref_up, tol[1])

    def test_10_mbit(self):
        if 10 not in RATES:
            self.skipTest("rate not selected")
        self.check_rate(10)

    def test_100_mbit(self):
        if 100 not in RATES:
            self.skipTest("rate not selected")
        self.check_rate(100)

    def test_1000_mbit(self):
        if 1000 not in RATES:
            self.skipTest("rate not selected")
        self.check_rate(1000)
