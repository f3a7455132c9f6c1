"""Serving speed: requests/s and p50/p99 latency of POST /predict (one sentence, two aspects) from N
concurrent clients on loopback, against a real `main.py --mode serve` process on the CPU. Asserts nothing.

    python benchmarks/serve_speed.py                                   # runs/mams-atsa/capsnet/seed0/checkpoint.pt
    python benchmarks/serve_speed.py --checkpoint FILE --clients 8 --seconds 20 --append results/speed.csv

The server is started on a free 127.0.0.1 port (its start-up and model loading are not timed) with its
default settings (access log included); each client is a thread with one keep-alive connection that
sends the next request as soon as the last is answered. Requests of the first --warmup seconds are not
counted. --append adds one row per figure to a CSV (date,device,commit,what,command,value,unit,notes).
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
BODY = json.dumps({"text": "The decor is not special at all but their food is amazing.",
                   "aspects": ["decor", "food"]}).encode()
COLUMNS = ("date", "device", "commit", "what", "command", "value", "unit", "notes")


def start_server(checkpoint, log):
    """(process, port) of `main.py --mode serve` on a free loopback port, once it listens."""
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--mode", "serve", "--checkpoint",
                                str(checkpoint), "--device", "cpu", "--host", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.wait(timeout=60)
        log.seek(0)
        sys.exit(f"the server did not start (exit {process.returncode}):\n{line}{log.read()}")
    threading.Thread(target=process.stdout.read, daemon=True).start()   # drain the rest
    return process, int(line.split(" on http://127.0.0.1:")[1].split("/")[0])


def client(port, start_counting, stop, latencies, errors):
    """Send /predict requests until `stop`; append the latencies (s) of those sent after start_counting."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    while (sent := time.perf_counter()) < stop:
        connection.request("POST", "/predict", BODY, headers)
        response = connection.getresponse()
        payload = response.read()
        done = time.perf_counter()
        if response.status != 200 or len(json.loads(payload)) != 2:
            errors.append(f"HTTP {response.status}: {payload[:200]!r}")
            return
        if sent >= start_counting:
            latencies.append(done - sent)
    connection.close()


def measure(port, clients, seconds, warmup):
    """(requests/s, [latencies in s]) of `clients` concurrent clients over `seconds` after `warmup`."""
    begin = time.perf_counter()
    start_counting, stop = begin + warmup, begin + warmup + seconds
    latencies, errors = [], []
    threads = [threading.Thread(target=client, args=(port, start_counting, stop, latencies, errors))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"a request failed: {errors[0]}")
    # requests sent in the counted window, over the time until the last of them was answered
    elapsed = max(time.perf_counter(), stop) - start_counting
    return len(latencies) / elapsed, latencies


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def device_name():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return f"cpu ({os.cpu_count()} cores, {model})"


def append_rows(path, rows):
    path = Path(path)
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as out:   # one line per row: others may append too
        writer = csv.writer(out)
        if new:
            writer.writerow(COLUMNS)
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/mams-atsa/capsnet/seed0/checkpoint.pt")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="the timed window (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of requests not counted (default 3)")
    parser.add_argument("--append", metavar="CSV", help="append one row per figure to this CSV")
    parser.add_argument("--notes", default="", help="--append: the rows' notes column")
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        sys.exit(f"error: --checkpoint {args.checkpoint}: checkpoint not found")
    with tempfile.TemporaryFile("w+") as log:
        process, port = start_server(args.checkpoint, log)
        try:
            rate, latencies = measure(port, args.clients, args.seconds, args.warmup)
        finally:
            process.terminate()
            process.wait(timeout=60)
    p50, p99 = 1000 * statistics.median(latencies), 1000 * percentile(latencies, 0.99)
    print(f"POST /predict, one sentence of two aspects, {args.checkpoint}, {device_name()}")
    print(f"{args.clients} clients on 127.0.0.1 for {args.seconds:g} s (after {args.warmup:g} s warm-up): "
          f"{len(latencies)} requests")
    print(f"{rate:.1f} requests/s, latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    if args.append:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        command = (f"python benchmarks/serve_speed.py --checkpoint {args.checkpoint} --clients {args.clients} "
                   f"--seconds {args.seconds:g} --warmup {args.warmup:g}")   # what was measured, not where it went
        notes = f"{args.clients} clients, {len(latencies)} requests; {args.notes}".rstrip("; ")
        what = "serve /predict, 1 sentence x 2 aspects"
        append_rows(args.append, [(date.today().isoformat(), device_name(), commit, f"{what}: throughput", command,
                                   f"{rate:.1f}", "requests/s", notes),
                                  (date.today().isoformat(), device_name(), commit, f"{what}: latency p50", command,
                                   f"{p50:.1f}", "ms", notes),
                                  (date.today().isoformat(), device_name(), commit, f"{what}: latency p99", command,
                                   f"{p99:.1f}", "ms", notes)])
        print(f"appended 3 rows to {args.append}")


if __name__ == "__main__":
    main()
