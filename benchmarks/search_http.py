"""Search over HTTP (`wideseek serve-search`) against the same engine in process, side by side.

One run, one world, one engine, the same queries, the same cores. Three request shapes:

- ``single``: one query per call, top 10 (a client that asks one thing at a time);
- ``env``: 5 queries per call, top 3 (one agent's ``search`` tool call);
- ``batch``: 64 queries per call, top 3 (Search-R1's client: every active rollout at once).

For each shape, ``--clients`` threads call for ``--seconds`` each way, and the ways alternate
over ``--rounds`` rounds (drift from other jobs on the machine hits both):

- ``in_process_threads``: the threads call one ``LocalSearchBackend`` (what an env process does);
- ``in_process_procs``: ``--workers`` processes, each with its own backend and a share of the
  threads (the most the engine does on these cores without HTTP);
- ``http``: the threads call one ``HttpSearchBackend(coalesce=False)`` (pooled keep-alive
  connections, one request per call) of a ``wideseek serve-search --workers W`` subprocess on
  127.0.0.1;
- ``http_coalesced``: the threads call one ``HttpSearchBackend`` with coalescing on (the default:
  calls made while ``--in-flight`` requests are under way go out together), same server.

Queries/s are summed over rounds; the ratios are each HTTP way over each in-process way. CPU
seconds per 1,000 queries (client + server processes) show what HTTP costs; calls per request
show how much the coalescing client batched. Results:
``benchmarks/results/search_http_<world>[_clients<N> unless 8].{json,md}``.

Usage::

    python benchmarks/search_http.py                      # default world (built on first use)
    python benchmarks/search_http.py --world /tmp/worlds/hybridqa
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_throughput import make_queries

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = {"single": (1, 10), "env": (5, 3), "batch": (64, 3)}


def _chunks(queries: list[str], size: int) -> list[list[str]]:
    return [queries[j: j + size] for j in range(0, len(queries) - size + 1, size)]


def drive(search, calls: list[list[str]], k: int, clients: int, seconds: float) -> int:
    """``clients`` threads call ``search(chunk, k)`` round the list for ``seconds``; queries done."""
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        j = i
        while time.perf_counter() < stop:
            chunk = calls[j % len(calls)]
            search(chunk, k)
            done[i] += len(chunk)
            j += clients

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def _proc_worker(args: tuple) -> int:
    world_dir, engine, calls, k, clients, seconds, start_at = args
    from wideseek_env.search.local import LocalSearchBackend

    backend = LocalSearchBackend.open(world_dir, engine)
    for chunk in calls[:20]:
        backend.search(chunk, k)
    time.sleep(max(0.0, start_at - time.time()))
    return drive(backend.search, calls, k, clients, seconds)


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (and its waited-for children), or of ``pid``
    and its children (the server's workers)."""
    if pid is None:
        r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids = (task / "children").read_text().split() if (task / "children").exists() else []
        for kid in map(int, kids):
            out += [kid, *_children(kid)]
    return out


def start_server(world_dir: Path, engine: str, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve-search", "--world", str(world_dir),
         "--engine", engine, "--port", "0", "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline()
    match = re.search(r"on (http://[\d.]+:\d+)", line)
    if not match:
        raise RuntimeError(f"serve-search did not start: {line} {proc.stderr.read()[-2000:]}")
    return proc, match.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, default=None, help="world folder (default: default world)")
    ap.add_argument("--engine", default="tantivy")
    ap.add_argument("--queries", type=int, default=2048, help="distinct queries")
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="server workers, and processes of the in-process comparison")
    ap.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per shape")
    ap.add_argument("--in-flight", type=int, default=4,
                    help="shared requests under way at once of the coalescing client")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of "
                    + ", ".join(SHAPES))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from wideseek_env.search.http import HttpSearchBackend
    from wideseek_env.search.local import LocalSearchBackend
    from wideseek_env.worlds import World, default_world

    world_dir = args.world or default_world()
    world = World.load(world_dir)
    queries, _ = make_queries(world, args.queries, seed=0)
    local = LocalSearchBackend.open(world_dir, args.engine)
    proc, url = start_server(world_dir, args.engine, args.workers)
    client = HttpSearchBackend(url, timeout_s=60, pool_size=args.clients, max_batch=64,
                               coalesce=False)
    coalesced = HttpSearchBackend(url, timeout_s=60, pool_size=args.clients, max_batch=64,
                                  in_flight=args.in_flight)
    pool = mp.get_context("spawn").Pool(args.workers)
    rows = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.health().get("status") == "ok":
                    break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        for shape in args.shapes.split(","):
            size, k = SHAPES[shape]
            calls = _chunks(queries, size)
            for chunk in calls[:50]:  # warm both sides' caches
                local.search(chunk, k)
                client.search(chunk, k)
            ways = ("in_process_threads", "in_process_procs", "http", "http_coalesced")
            totals = dict.fromkeys(ways, 0)
            cpu = dict.fromkeys(ways, 0.0)
            stats0 = coalesced.coalesce_stats()
            for _ in range(args.rounds):
                c0 = cpu_s()
                totals["in_process_threads"] += drive(local.search, calls, k, args.clients,
                                                      args.seconds)
                cpu["in_process_threads"] += cpu_s() - c0
                share = max(1, args.clients // args.workers)
                pids = [p.pid for p in pool._pool]  # type: ignore[attr-defined]
                c0 = sum(cpu_s(pid) for pid in pids)
                start_at = time.time() + 3.0  # the workers open the world first
                done = pool.map(_proc_worker, [(str(world_dir), args.engine, calls, k, share,
                                                args.seconds, start_at)] * args.workers)
                totals["in_process_procs"] += sum(done)
                # includes each worker opening the world and warming up (a few ms)
                cpu["in_process_procs"] += sum(cpu_s(pid) for pid in pids) - c0
                c0, s0 = cpu_s(), cpu_s(proc.pid)
                totals["http"] += drive(client.search, calls, k, args.clients, args.seconds)
                cpu["http"] += (cpu_s() - c0) + (cpu_s(proc.pid) - s0)
                c0, s0 = cpu_s(), cpu_s(proc.pid)
                totals["http_coalesced"] += drive(coalesced.search, calls, k, args.clients,
                                                  args.seconds)
                cpu["http_coalesced"] += (cpu_s() - c0) + (cpu_s(proc.pid) - s0)
            stats1 = coalesced.coalesce_stats()
            wall = args.seconds * args.rounds
            qps = {m: round(n / wall, 1) for m, n in totals.items()}
            row = {"shape": shape, "queries_per_call": size, "k": k, "queries_per_s": qps,
                   "cpu_s_per_1000_queries": {m: round(1000 * cpu[m] / max(1, totals[m]), 3)
                                              for m in totals},
                   "coalesced_calls_per_request": round(
                       (stats1.calls - stats0.calls) / max(1, stats1.requests - stats0.requests),
                       2)}
            for way in ("http", "http_coalesced"):
                for base in ("in_process_threads", "in_process_procs"):
                    row[f"{way}_over_{base}"] = round(qps[way] / qps[base], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        pool.terminate()
        client.close()
        coalesced.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    result = {
        "benchmark": "search_http", "world": world.name, "world_id": world.card.get("world_id"),
        "pages": world.card["counts"]["pages"], "engine": args.engine, "clients": args.clients,
        "workers": args.workers, "seconds_per_measurement": args.seconds, "rounds": args.rounds,
        "in_flight": args.in_flight,
        "rows": rows,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "versions": {p: metadata.version(p) for p in ("tantivy", "uvicorn", "httptools", "uvloop")},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (f"search_http_{world.name}"
                       + (f"_clients{args.clients}" if args.clients != 8 else ""))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# Search over HTTP vs in process, world `{world.name}` ({result['pages']:,} pages)", "",
          f"`{result['command']}` — {result['date']} — {result['machine']['platform']}, "
          f"{result['machine']['cpus']} CPUs (load average at the end "
          f"{result['machine']['load_average_1_5_15']}), engine {args.engine}, "
          f"{args.clients} client threads, {args.workers} server workers / processes, "
          f"{args.rounds} alternating rounds of {args.seconds} s per way; "
          + ", ".join(f"{k} {v}" for k, v in result["versions"].items()), "",
          f"HTTP one request per call: `HttpSearchBackend(coalesce=False)`; HTTP coalesced: the "
          f"default client (`in_flight={args.in_flight}`). Ratios are over in process with "
          "threads (the way an env process searches); over processes in brackets.", "",
          "| shape | queries/call, k | in process, threads (q/s) | in process, "
          f"{args.workers} procs (q/s) | HTTP (q/s) | HTTP coalesced (q/s) | HTTP / in process "
          "| coalesced / in process | calls per coalesced request | CPU s per 1k queries "
          "(threads / procs / HTTP / coalesced) |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        q, c = r["queries_per_s"], r["cpu_s_per_1000_queries"]
        md.append(f"| {r['shape']} | {r['queries_per_call']}, {r['k']} | "
                  f"{q['in_process_threads']:,} | {q['in_process_procs']:,} | {q['http']:,} | "
                  f"{q['http_coalesced']:,} | {r['http_over_in_process_threads']:.2f} "
                  f"({r['http_over_in_process_procs']:.2f}) | "
                  f"**{r['http_coalesced_over_in_process_threads']:.2f}** "
                  f"({r['http_coalesced_over_in_process_procs']:.2f}) | "
                  f"{r['coalesced_calls_per_request']} | {c['in_process_threads']} / "
                  f"{c['in_process_procs']} / {c['http']} / {c['http_coalesced']} |")
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
