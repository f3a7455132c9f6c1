"""Serving speed: POST /predict on loopback against real `main.py --mode serve` processes on the CPU,
optionally beside the server of another commit in the same run. Asserts nothing.

    python benchmarks/serve_speed.py                                   # runs/mams-atsa/capsnet/seed0/checkpoint.pt
    python benchmarks/serve_speed.py --compare-commit 076ea38 --threads 1 --seconds 10
    python benchmarks/serve_speed.py --checkpoint FILE --clients 8,64 --append results/speed.csv

Figures, for each server:
- throughput: requests/s and latency p50 / p99 of one sentence with two aspects, from N concurrent
  clients (--clients, default 8 and 64), each a thread with one keep-alive connection that sends the
  next request as soon as the last is answered; requests of the first --warmup seconds not counted;
- fairness: the latency p99 of one-aspect requests from --fair-clients clients, counting those sent
  while a request of --large aspects (default 10,000, the server's limit) is in flight; one client
  sends such large requests back to back for the window. Beside it, the p99 of the same clients
  alone: what the machine gives a one-aspect request at all.

The servers start on free 127.0.0.1 ports (start-up and model loading are not timed), with their
default settings and `--threads` torch threads each (OMP_NUM_THREADS; default: torch's own choice).
--compare-commit REF exports that commit's tree (git archive) into a temporary folder and serves the
same checkpoint from it; both servers are started first and measured in turns, phase by phase, so a
change in the machine's load between phases falls on both. --append adds one row per figure to a CSV
(date,device,commit,what,command,value,unit,notes).
"""
import argparse
import csv
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The decor is not special at all but their food is amazing."
TWO = json.dumps({"text": TEXT, "aspects": ["decor", "food"]}).encode()
ONE = json.dumps({"text": TEXT, "aspects": ["food"]}).encode()
COLUMNS = ("date", "device", "commit", "what", "command", "value", "unit", "notes")
HEADERS = {"Content-Type": "application/json"}


def large_body(aspects):
    return json.dumps({"text": TEXT, "aspects": (["decor", "food"] * aspects)[:aspects]}).encode()


def export_commit(ref, where):
    """The tree of commit `ref` in the folder `where` (git archive: the repository is not touched)."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"error: --compare-commit {ref}: {archive.stderr.decode().strip().splitlines()[-1]}")
    where.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def start_server(tree, checkpoint, log, threads, overrides=()):
    """(process, port) of `main.py --mode serve` of `tree` on a free loopback port, once it listens."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    sets = [part for item in overrides for part in ("--set", item)]
    process = subprocess.Popen([sys.executable, str(tree / "main.py"), "--mode", "serve", "--checkpoint",
                                str(Path(checkpoint).resolve()), "--device", "cpu", "--host", "127.0.0.1",
                                "--port", "0", *sets], cwd=tree, stdout=subprocess.PIPE, stderr=log, text=True,
                               env=env)
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.wait(timeout=60)
        log.seek(0)
        sys.exit(f"the server of {tree} did not start (exit {process.returncode}):\n{line}{log.read()}")
    threading.Thread(target=process.stdout.read, daemon=True).start()   # drain the rest
    return process, int(line.split(" on http://127.0.0.1:")[1].split("/")[0])


def post(connection, body, answers):
    """(sent, done) of one POST /predict; a failure or a wrong number of answers is an error."""
    sent = time.perf_counter()
    connection.request("POST", "/predict", body, HEADERS)
    response = connection.getresponse()
    payload = response.read()
    done = time.perf_counter()
    if response.status != 200 or len(json.loads(payload)) != answers:
        raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
    return sent, done


def client(port, body, answers, stop, times, errors):
    """Send `body` until `stop`; append (sent, done) of every request to `times`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        while time.perf_counter() < stop and not errors:
            times.append(post(connection, body, answers))
    except Exception as err:   # noqa: BLE001 - reported by the caller
        errors.append(f"{type(err).__name__}: {err}")
    finally:
        connection.close()


def run_clients(port, jobs, seconds):
    """Run [(body, answers, count)] client groups for `seconds`; [[(sent, done)] per group]."""
    stop = time.perf_counter() + seconds
    errors, results, threads = [], [], []
    for body, answers, count in jobs:
        times = []
        results.append(times)
        threads += [threading.Thread(target=client, args=(port, body, answers, stop, times, errors))
                    for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"a request failed: {errors[0]}")
    return results


def throughput(port, clients, seconds, warmup):
    """(requests/s, [latencies in s]) of `clients` closed-loop clients of two-aspect requests."""
    begin = time.perf_counter()
    (times,) = run_clients(port, [(TWO, 2, clients)], warmup + seconds)
    counted = [(sent, done) for sent, done in times if sent >= begin + warmup]
    elapsed = max(done for _, done in counted) - (begin + warmup)
    return len(counted) / elapsed, [done - sent for sent, done in counted]


def beside_large(port, clients, seconds, large):
    """([latencies in s] of one-aspect requests sent while a `large`-aspect request was in flight,
    [seconds of each large request])."""
    small, big = run_clients(port, [(ONE, 1, clients), (large_body(large), large, 1)], seconds)
    in_flight = [(sent, done) for sent, done in big]
    latencies = [done - sent for sent, done in small if any(a <= sent < b for a, b in in_flight)]
    return latencies, [b - a for a, b in in_flight]


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def device_name():
    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if cpuinfo.exists() else platform.processor()
    return f"cpu ({os.cpu_count()} cores, {model})"


def commit_of(ref="HEAD"):
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def append_rows(path, rows):
    path = Path(path)
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as out:   # one line per row: others may append too
        writer = csv.writer(out)
        if new:
            writer.writerow(COLUMNS)
        writer.writerows(rows)


def measure(servers, args):
    """{server name: {figure: (value, unit)}}, phase by phase, the servers in turn."""
    figures = {name: {} for name in servers}
    for clients in args.clients:
        for name, port in servers.items():
            rate, latencies = throughput(port, clients, args.seconds, args.warmup)
            what = f"{clients} clients, 1 sentence x 2 aspects"
            figures[name][f"{what}: throughput"] = (rate, "requests/s")
            figures[name][f"{what}: latency p50"] = (1000 * statistics.median(latencies), "ms")
            figures[name][f"{what}: latency p99"] = (1000 * percentile(latencies, 0.99), "ms")
            print(f"  {name}: {what}: {rate:.1f} requests/s ({len(latencies)} requests)", flush=True)
    for name, port in servers.items():
        (times,) = run_clients(port, [(ONE, 1, args.fair_clients)], args.seconds)
        latencies = [done - sent for sent, done in times]
        what = f"{args.fair_clients} clients, 1 aspect, alone"
        figures[name][f"{what}: latency p99"] = (1000 * percentile(latencies, 0.99), "ms")
        latencies, large = beside_large(port, args.fair_clients, args.seconds, args.large)
        what = f"{args.fair_clients} clients, 1 aspect, beside a {args.large}-aspect request"
        figures[name][f"{what}: latency p99"] = (1000 * percentile(latencies, 0.99), "ms")
        figures[name][f"{what}: latency p50"] = (1000 * statistics.median(latencies) if latencies else float("nan"),
                                                "ms")
        figures[name][f"the {args.large}-aspect request itself"] = (statistics.median(large), "s")
        print(f"  {name}: {what}: {len(latencies)} requests beside {len(large)} large one(s)", flush=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/mams-atsa/capsnet/seed0/checkpoint.pt")
    parser.add_argument("--clients", default="8,64", help="comma-separated client counts (default 8,64)")
    parser.add_argument("--fair-clients", type=int, default=4,
                        help="one-aspect clients beside the large request (default 4)")
    parser.add_argument("--large", type=int, default=10_000, help="aspects of the large request (default 10000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="each timed window (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of requests not counted (default 3)")
    parser.add_argument("--threads", type=int, help="torch threads of each server (default: torch's choice)")
    parser.add_argument("--compare-commit", metavar="REF", help="also serve from this commit's tree, side by side")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for this tree's server, e.g. inference.max_batch=32 (repeatable)")
    parser.add_argument("--append", metavar="CSV", help="append one row per figure to this CSV")
    parser.add_argument("--notes", default="", help="--append: the rows' notes column")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if not Path(args.checkpoint).is_file():
        sys.exit(f"error: --checkpoint {args.checkpoint}: checkpoint not found")
    this = f"this tree ({commit_of()})"
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as log:
        trees = {this: ROOT}
        if args.compare_commit:
            trees[commit_of(args.compare_commit)] = export_commit(args.compare_commit, Path(tmp) / "tree")
        processes, servers = [], {}
        try:
            for name, tree in trees.items():
                process, port = start_server(tree, args.checkpoint, log, args.threads,
                                             args.overrides if tree == ROOT else ())
                processes.append(process)
                servers[name] = port
            print(f"POST /predict, {args.checkpoint}, {device_name()}, torch threads per server: "
                  f"{args.threads or 'default'}; {args.seconds:g} s windows", flush=True)
            figures = measure(servers, args)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    names = list(figures)
    print("\n| figure | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"))
    print("|---" * (len(names) + 1 + (len(names) == 2)) + "|")
    for what in figures[this]:
        values = [figures[name][what] for name in names]
        cells = [f"{value:.1f} {unit}" for value, unit in values]
        if len(names) == 2:
            (new, unit), (old, _) = values
            better = new / old if unit == "requests/s" else old / new
            cells.append(f"{better:.1f}x" if new and old else "")
        print(f"| {what} | " + " | ".join(cells) + " |")
    if args.append:
        command = (f"python benchmarks/serve_speed.py --checkpoint {args.checkpoint} --clients "
                   f"{','.join(map(str, args.clients))} --fair-clients {args.fair_clients} --large {args.large} "
                   f"--seconds {args.seconds:g} --warmup {args.warmup:g}"
                   + (f" --threads {args.threads}" if args.threads else "")
                   + "".join(f" --set {item}" for item in args.overrides)
                   + (f" --compare-commit {args.compare_commit}" if args.compare_commit else ""))
        rows = []
        for name in names:
            commit = commit_of() if name == this else name
            for what, (value, unit) in figures[name].items():
                rows.append((date.today().isoformat(), device_name(), commit, f"serve /predict: {what}", command,
                             f"{value:.1f}", unit, args.notes))
        append_rows(args.append, rows)
        print(f"appended {len(rows)} rows to {args.append}")


if __name__ == "__main__":
    main()
