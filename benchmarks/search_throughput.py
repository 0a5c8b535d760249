"""Search throughput and quality on a world: tantivy vs bm25s, in-process and over HTTP.

For each engine, in one run and on the same queries:

- ``rank`` queries/s: ranking only (ids + scores), one query per call, one thread (one core);
- ``search`` queries/s: ranking plus page reads and snippets (what the env's tool call costs);
- recall@3 of entity names (the row's page in the top 3 when searching the entity's name);
- index size on disk, peak resident memory of this process.

Then the chosen engine over HTTP: ``wideseek serve-search`` in a subprocess on 127.0.0.1 and
``--clients`` client threads with pooled connections, top-10 searches; the server's peak RSS.
A missing index of an engine is built into the world folder first (timed). Results go to
``benchmarks/results/search_throughput_<world>.{json,md}``.

Usage::

    python benchmarks/search_throughput.py --world /tmp/worlds/hybridqa
    python benchmarks/search_throughput.py            # the default world (built on first use)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _dir_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def _peak_rss_mib(pid: int | None = None) -> float:
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def make_queries(world, n: int, seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """``n`` queries (entity names and "<attribute> of <name>" questions) and (name, url) pairs."""
    rng = random.Random(seed)
    pairs = sorted({(row[0], url) for split in ("train", "test") for t in world.tasks(split)
                    for row, url in zip(t.gold.rows, t.meta["row_urls"])})
    rng.shuffle(pairs)
    queries = []
    for i, (name, _) in enumerate(pairs[:n]):
        queries.append(name if i % 2 == 0 else f"what is the population of {name}")
    while len(queries) < n:
        queries.append(queries[len(queries) % max(1, len(pairs))])
    return queries, pairs


def time_calls(fn, items, min_seconds: float = 0.0) -> tuple[float, float]:
    """``fn(item)`` calls per wall second and per CPU second of this thread, over ``items``
    (repeated until ``min_seconds`` of wall time). The CPU figure is what one core does when it
    is not shared: on a loaded machine the wall figure measures the neighbours too."""
    done, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while True:
        for q in items:
            fn(q)
        done += len(items)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return done / elapsed, done / max(1e-9, time.thread_time() - c0)


def recall3(backend, pairs: list[tuple[str, str]]) -> float:
    hits = 0
    for j in range(0, len(pairs), 64):
        chunk = pairs[j: j + 64]
        ranked = backend.rank([name for name, _ in chunk], 3)
        for (_, url), r in zip(chunk, ranked):
            target = backend.store.ordinal(url)
            hits += any(o == target for o, _ in r)
    return round(hits / len(pairs), 4) if pairs else 1.0


def bench_http(world_dir: Path, engine: str, queries: list[str], clients: int, k: int) -> dict:
    from wideseek_env.search.http import HttpSearchBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_env.cli", "serve-search", "--world",
                             str(world_dir), "--port", str(port), "--engine", engine],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = HttpSearchBackend(f"http://127.0.0.1:{port}", timeout_s=30, pool_size=clients)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.search(["warm up"], k=1)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        for q in queries[:200]:
            client.search([q], k=k)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(lambda q: client.search([q], k=k), queries))
        qps = len(queries) / (time.perf_counter() - t0)
        batch_t0 = time.perf_counter()
        for j in range(0, len(queries), 5):  # the env's shape: up to 5 queries per tool call
            client.search(queries[j: j + 5], k=3)
        calls = len(range(0, len(queries), 5))
        return {"engine": engine, "clients": clients, "k": k, "queries_per_s": round(qps, 1),
                "tool_calls_per_s_5q_k3_one_client": round(calls / (time.perf_counter()
                                                                      - batch_t0), 1),
                "server_peak_rss_mib": _peak_rss_mib(proc.pid)}
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, default=None, help="world folder (default: default world)")
    ap.add_argument("--engines", default="tantivy,bm25s", help="engines to compare, chosen first")
    ap.add_argument("--queries", type=int, default=2000, help="number of distinct queries")
    ap.add_argument("--k", type=int, default=10, help="hits per query")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    ap.add_argument("--recall-names", type=int, default=5000, help="names for recall@3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from wideseek_env.search.engines import build_engine
    from wideseek_env.search.local import LocalSearchBackend
    from wideseek_env.worlds import World, default_world

    world_dir = args.world or default_world()
    world = World.load(world_dir)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    queries, pairs = make_queries(world, args.queries, args.seed)
    pairs = pairs[: args.recall_names]
    rows = []
    for engine in engines:
        index_dir = world_dir / "index" / engine
        build_s = world.card.get("build", {}).get("seconds_index", {}).get(engine)
        if not index_dir.is_dir():
            from wideseek_env.search.docstore import DocStore

            store = DocStore(world_dir / "corpus")
            t0 = time.perf_counter()
            build_engine(engine, ((i, p.title, p.text) for i, p in enumerate(store)), index_dir)
            build_s = round(time.perf_counter() - t0, 2)
            store.close()
            (index_dir / "wideseek_build.json").write_text(json.dumps({"seconds": build_s}))
        elif build_s is None and (index_dir / "wideseek_build.json").is_file():
            build_s = json.loads((index_dir / "wideseek_build.json").read_text())["seconds"]
        t0 = time.perf_counter()
        backend = LocalSearchBackend.open(world_dir, engine)
        open_s = time.perf_counter() - t0
        for q in queries[:200]:  # warm caches
            backend.rank([q], args.k)
        rank_qps, rank_cpu = time_calls(lambda q, b=backend: b.rank([q], args.k), queries, 3.0)
        search_qps, search_cpu = time_calls(lambda q, b=backend: b.search([q], args.k), queries,
                                            3.0)
        batch_qps = len(queries) / max(1e-9, _timed(lambda b=backend: [
            b.rank(queries[j: j + 64], args.k) for j in range(0, len(queries), 64)]))
        rows.append({"engine": engine, "rank_queries_per_s": round(rank_qps, 1),
                     "rank_queries_per_cpu_s": round(rank_cpu, 1),
                     "search_with_snippets_queries_per_cpu_s": round(search_cpu, 1),
                     "rank_batched64_queries_per_s": round(batch_qps, 1),
                     "search_with_snippets_queries_per_s": round(search_qps, 1),
                     "recall_at_3_names": recall3(backend, pairs), "recall_names": len(pairs),
                     "index_mib": _dir_mib(index_dir), "index_build_s": build_s,
                     "open_s": round(open_s, 3), "peak_rss_mib_so_far": _peak_rss_mib()})
        print(json.dumps(rows[-1]), flush=True)
    http = bench_http(world_dir, engines[0], queries, args.clients, args.k)
    print(json.dumps(http), flush=True)
    result = {
        "benchmark": "search_throughput", "world": world.name, "world_dir": str(world_dir),
        "pages": world.card["counts"]["pages"], "corpus_mib": _dir_mib(world_dir / "corpus"),
        "queries": len(queries), "k": args.k, "in_process_one_thread": rows, "http": http,
        "world_build": world.card.get("build"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "processor": platform.processor(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "versions": {p: metadata.version(p) for p in ("tantivy", "bm25s", "numpy", "requests")},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"search_throughput_{world.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# Search throughput on world `{world.name}` ({result['pages']:,} pages)", "",
          f"Command: `{result['command']}` — {result['date']} — {result['machine']['platform']}, "
          f"{result['machine']['cpus']} CPUs (load average at the end "
          f"{result['machine']['load_average_1_5_15']}), Python {result['machine']['python']}; "
          + ", ".join(f"{k} {v}" for k, v in result["versions"].items()), "",
          f"| engine | rank q/CPU-s (1 thread, k={args.k}) | rank q/s wall | rank q/s wall "
          "(batches of 64) | search+snippets q/CPU-s | search+snippets q/s wall | recall@3 names "
          "| index MiB | index build s |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['engine']} | **{r['rank_queries_per_cpu_s']:,}** | "
                  f"{r['rank_queries_per_s']:,} | "
                  f"{r['rank_batched64_queries_per_s']:,} | "
                  f"{r['search_with_snippets_queries_per_cpu_s']:,} | "
                  f"{r['search_with_snippets_queries_per_s']:,} | {r['recall_at_3_names']} | "
                  f"{r['index_mib']} | {r['index_build_s']} |")
    md += ["", f"HTTP ({http['engine']}, `wideseek serve-search` on 127.0.0.1, {http['clients']} "
           f"client threads, k={http['k']}): **{http['queries_per_s']:,} queries/s**; env-shaped "
           f"tool calls (5 queries, k=3, one client): {http['tool_calls_per_s_5q_k3_one_client']}"
           f"/s; server peak RSS {http['server_peak_rss_mib']} MiB.", "",
           f"Benchmark process peak RSS: {_peak_rss_mib()} MiB. World build: "
           f"{json.dumps(result['world_build'])}", ""]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {stem}.json and .md")
    return 0


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
