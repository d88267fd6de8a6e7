#!/usr/bin/env python3
"""image.py - the images' sizes and a container's start-up time (issue 13), beside the same
binary started on the host in the same run.

    python3 bench/image.py [--quick]          (also: python3 bench/bench.py image)

Needs the images of `make image` and a running Docker daemon (scripts/dockerd.sh start), run
as root. Start-up: from the `docker run -d` call until `GET /healthz` answers 200 at the
container's address, for `dstmc api` on an in-memory store (and `dstmc up` until `/readyz`);
the reference is the host's binary from spawn until the same answer. Each container is removed
by its id; every wait is bounded. Writes the figures between the `image` markers of
docs/benchmarks.md and prints them.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (BIN, DOC, machine(), log(), free_port())

DOCKER = "/usr/bin/docker"
QUICK = "--quick" in sys.argv
REPS = 3 if QUICK else 10
DEADLINE = 60.0


def docker(*args):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


def wait_ok(url, t0):
    """Seconds from t0 until url answers 200 (polled every 5 ms, bounded)."""
    while time.monotonic() - t0 < DEADLINE:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer within {DEADLINE}s")


def container_start(args, path, port):
    """Seconds from `docker run -d` until path answers at the container's address."""
    t0 = time.monotonic()
    cid = docker("run", "-d", "dstmc:latest", *args)
    try:
        ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid)
        return wait_ok(f"http://{ip}:{port}{path}", t0)
    finally:
        docker("rm", "-f", "-v", cid)


def host_start(args, path, port):
    t0 = time.monotonic()
    p = subprocess.Popen([bench.BIN, *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd="/tmp")
    try:
        return wait_ok(f"http://127.0.0.1:{port}{path}", t0)
    finally:
        p.terminate()
        p.wait(timeout=30)


def mb(n):
    return f"{n / 1e6:.1f} MB"


def ms(xs):
    return f"{statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"


def bench_image():
    sizes = []
    for tag in ("dstmc:latest", "dstmc-postgres:latest", "dstmc-redis:latest",
                "debian:bookworm-slim"):
        j = json.loads(docker("image", "inspect", tag))[0]
        sizes.append((tag, j["Size"], len(j["RootFS"]["Layers"])))
    binary = os.path.getsize(bench.BIN)
    api = ["api", "--db", "sqlite::memory:", "--access-log=false"]
    rows = []
    for name, args, path in [("dstmc api (in-memory store)", api, "/healthz"),
                             ("dstmc up (SQLite on the volume)", ["up", "--target", "dummy:"],
                              "/readyz")]:
        cont, host = [], []
        for _ in range(REPS):  # interleaved
            cont.append(container_start(args + ["--listen", "0.0.0.0:8080"], path, 8080))
            port = bench.free_port()
            extra = ["--server-http", "off", "--server-iperf3", "off"] if args[0] == "up" else []
            hargs = args + extra + ["--listen", f"127.0.0.1:{port}"]
            if args[0] == "up":
                hargs += ["--db", "sqlite::memory:"]
            host.append(host_start(hargs, path, port))
        rows.append((name, cont, host))
    t0 = time.monotonic()
    for _ in range(REPS):
        docker("run", "--rm", "dstmc:latest", "version")
    run_rm = (time.monotonic() - t0) / REPS

    text = ("Sizes as `docker image inspect` gives them (uncompressed). `dstmc` is FROM scratch: "
            "the stripped binary, the libraries `ldd` lists for it and for the libcurl it loads "
            "on first use, CA certificates; PostgreSQL and Redis are Debian's packages on the "
            "debootstrapped base.\n\n| image | size | layers |\n|---|---|---|\n")
    text += "".join(f"| {t} | {mb(s)} | {n} |\n" for t, s, n in sizes)
    text += (f"\nThe host's binary (`{os.path.relpath(bench.BIN, bench.ROOT)}`, not stripped) is "
             f"{mb(binary)}.\n\nStart-up, {REPS} interleaved runs each: from `docker run -d` "
             "until the health URL answers 200 at the container's address, beside the host's "
             "binary from spawn until the same answer on 127.0.0.1.\n\n"
             "| service | container: median (min, max) | host binary: median (min, max) |\n"
             "|---|---|---|\n")
    text += "".join(f"| {n} | {ms(c)} | {ms(h)} |\n" for n, c, h in rows)
    text += (f"\n`docker run --rm dstmc version` (create, start, exit, remove): "
             f"{run_rm * 1000:.0f} ms on average over {REPS} runs.\n")
    verdict = (f"the dstmc image is {mb(sizes[0][1])}; a container adds "
               f"{(statistics.median(rows[0][1]) - statistics.median(rows[0][2])) * 1000:.0f} ms "
               "to the API's start-up (the median's difference)")
    return "image", text, verdict


def write_doc(section):
    name, text, verdict = section
    doc = open(bench.DOC).read()
    stamp = time.strftime("%Y-%m-%d")
    dv = docker("version", "-f", "{{.Server.Version}}")
    block = (f"<!-- BEGIN {name} -->\n_Measured {stamp} on {bench.machine()}; Docker {dv} "
             f"(Debian's docker.io)._\n\n{text}\nResult: {verdict}.\n<!-- END {name} -->")
    rx = re.compile(rf"<!-- BEGIN {name} -->.*?<!-- END {name} -->", re.S)
    doc = rx.sub(lambda _: block, doc) if rx.search(doc) else doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(bench.DOC, "w") as f:
        f.write(doc)
    print(block)


if __name__ == "__main__":
    write_doc(bench_image())
