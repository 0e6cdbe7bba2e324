"""Load on ``seqlab serve``: requests/s and latency with dynamic batching on and off.

A real server (``python -m seqlab serve RUN --host 127.0.0.1``, a separate process) answers
translation requests from 1, 8 and 32 concurrent clients on loopback, first with dynamic batching
(``--max-batch 32``), then without (``--no-batching``: every request decoded alone, one after
another: the baseline). Each level runs for ``--seconds`` or ``--max-requests``, whichever comes
first, so the script stops by itself. Reported per row: requests/s, p50 and p99 latency, and the
server's resident memory (RSS) when it started serving and after the last level.

    python benchmarks/serve_load.py --out results/serve-load.json          # trains a run for a minute
    python benchmarks/serve_load.py --run runs/demo --seconds 5           # an existing run, shorter

Each request is one sentence of the embedded synthetic grammar, greedy (``beam: 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _timing import print_table, report

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def train_run(out: Path, minutes: float) -> Path:
    """Train the demo config for ``minutes`` into ``out`` (reused when it is already there)."""
    if (out / "checkpoints" / "best").is_dir():
        print(f"reusing {out}")
        return out
    cmd = [sys.executable, "-m", "seqlab", "train", str(ROOT / "configs/translation/en-pt-demo.yaml"),
           "--out", str(out), "--max-minutes", str(minutes), "--quiet", "train.eval_every=100000"]
    print("training:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=minutes * 60 + 240)
    return out


class Server:
    """``seqlab serve`` in a child process on a free loopback port."""

    def __init__(self, run: Path, *, batching: bool, threads: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "seqlab", "serve", str(run), "--host", "127.0.0.1", "--port", str(self.port),
               "--threads", str(threads), "--log-level", "warning", "--max-in-flight", "1000"]
        cmd += [] if batching else ["--no-batching"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's seqlab
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemExit("the server did not start")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Connection:
    """One keep-alive HTTP/1.1 connection with a minimal client on asyncio streams.

    The load generator shares the CPU with the server; httpx costs about a millisecond of Python
    per request, which at a few hundred requests/s would measure the client. Here a request is one
    write and a response two reads (headers, then Content-Length bytes).
    """

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def post(self, path: str, payload: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(payload).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(port: int, model: str, sentences: list[str], clients: int, seconds: float,
               max_requests: int, warmup: float) -> dict:
    """``clients`` loops posting one sentence each until the time or the request budget is spent.

    A warm-up phase of ``warmup`` seconds (connections opened, the server's queue filled) comes
    first and is not counted.
    """
    words: list[int] = []  # words per translation, so the output lengths behind the figures are on record
    connections = [Connection(port) for _ in range(clients)]

    async def phase(seconds: float, budget: int) -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors, sent = 0, 0
        stop_at = time.monotonic() + seconds

        async def client(i: int) -> None:
            nonlocal sent, errors
            k = i
            while time.monotonic() < stop_at and sent < budget:
                sent += 1
                body = {"model": model, "texts": [sentences[k % len(sentences)]], "beam": 1}
                k += clients
                t0 = time.perf_counter()
                status, answer = await connections[i].post("/v1/translate", body)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
                if status == 200:
                    words.append(len(answer["translations"][0].split()))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return latencies, errors, time.perf_counter() - t0

    try:
        await phase(warmup, max_requests)
        latencies, errors, elapsed = await phase(seconds, max_requests)
    finally:
        for c in connections:
            c.close()
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "seconds": round(elapsed, 2),
            "req_per_s": len(latencies) / elapsed, "mean_output_words": statistics.mean(words),
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def measure(run: Path, sentences: list[str], args, *, batching: bool) -> tuple[list[dict], dict]:
    server = Server(run, batching=batching, threads=args.threads)
    try:
        model = httpx.get(f"{server.url}/v1/models").json()["data"][0]["id"]
        for s in sentences[:4]:  # warm-up
            httpx.post(f"{server.url}/v1/translate", json={"model": model, "texts": [s], "beam": 1}, timeout=60)
        memory = {"rss_start_mib": round(rss_mib(server.proc.pid), 1)}
        rows = []
        for clients in LEVELS:
            row = asyncio.run(load(server.port, model, sentences, clients, args.seconds, args.max_requests, args.warmup))
            rows.append({"batching": "on" if batching else "off", "clients": clients, **row})
            print(f"batching {rows[-1]['batching']:3}  {clients:2} clients: {row['req_per_s']:.1f} req/s, "
                  f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms", flush=True)
        memory["rss_end_mib"] = round(rss_mib(server.proc.pid), 1)
        return rows, memory
    finally:
        server.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a run folder (default: train the demo config for --train-minutes)")
    p.add_argument("--train-minutes", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=12.0, help="per level and mode")
    p.add_argument("--max-requests", type=int, default=3000, help="per level and mode")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of uncounted load before each level")
    p.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from seqlab.data.synthetic import generate_pairs

    run = args.run or train_run(ROOT / "bench-results" / "serve-load-run", args.train_minutes)
    sentences = [src for src, _ in generate_pairs(256, seed=123)]
    rows, memory = [], {}
    for batching in (True, False):
        r, m = measure(run, sentences, args, batching=batching)
        rows += r
        memory["batching_on" if batching else "batching_off"] = m
    by = {(r["batching"], r["clients"]): r for r in rows}
    for clients in LEVELS:
        on, off = by["on", clients], by["off", clients]
        on["speedup_vs_no_batching"] = on["req_per_s"] / off["req_per_s"]
        on["p99_vs_no_batching"] = on["p99_ms"] / off["p99_ms"]
    print_table(rows, [("batching", "batching"), ("clients", "clients"), ("requests", "requests"),
                       ("req_per_s", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                       ("speedup_vs_no_batching", "x no batching"), ("errors", "errors")])
    print("server RSS (MiB):", memory)
    settings = {"run": str(run), "levels": LEVELS, "seconds": args.seconds, "max_requests": args.max_requests,
                "warmup_seconds": args.warmup,
                "server_threads": args.threads, "decoding": "greedy (beam 1), one sentence per request",
                "max_batch": 32, "batch_wait_ms": 5, "baseline": "the same server with --no-batching"}
    report("serve_load", args.out, settings, rows, memory=memory)


if __name__ == "__main__":
    main()
