"""Viewer load time: how fast headless Chromium opens the `wideseek view` page of a real
640-episode run. Target: under 2 s from navigation until the episode list is usable.

The run is real: `wideseek bench width` with the scripted policy on a small world built through
`wideseek_env.worlds.build_small_world` (20 test tasks x 32 repeats = 640 episodes per width, at
widths 1 and 16), which writes one viewer page per width; a third page holds both widths (1,280
episodes) to show the headroom. Each page is then opened `--loads` times in one headless
Chromium (system chromium + chromedriver, see .ci/browser.sh), from its file:// URL:

- **ready**: navigation start -> the page's `wsv-ready` mark (list rendered, filters wired);
- **load event**: navigation start -> `loadEventEnd`;
- **episode**: opening the episode with the most agents (inflate its payload, render figures,
  coloured table and tree) -> the page's `wsv-episode` mark;
- **filter**: typing a task id into the filter box -> the list re-rendered (synchronous).

The first load of each page is reported apart from the median of the others. Build time is
`write_view` on the run folder. Results: `benchmarks/results/viewer_load.{json,md}`.

    python benchmarks/viewer_load.py
    python benchmarks/viewer_load.py --loads 3 --repeats 8
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tyro
from bench_common import RESULTS, write_results

from wideseek_env.cli import main as wideseek
from wideseek_env.runner.evaluate import environment_info
from wideseek_env.trace import read_traces
from wideseek_env.viewer import write_view
from wideseek_env.viewer.browser import headless_chromium

TARGET_S = 2.0


@dataclass
class Args:
    world: Path | None = None
    """A built world folder; None builds a small world (build_small_world) in a temp folder."""
    widths: tuple[int, ...] = (1, 16)
    """Widths run by `wideseek bench width`; one page each, and one page with all of them."""
    repeats: int = 32
    """Repeats per task (20 test tasks of the small world x 32 = 640 episodes per width)."""
    loads: int = 5
    """Page loads per page."""
    work: Path | None = None
    """Folder for the world and the runs (default: a temp folder, removed afterwards)."""
    out: Path = field(default_factory=lambda: RESULTS / "viewer_load")
    """Output path stem (.json and .md are written)."""


def measure_page(driver: Any, page: Path, loads: int, task: str, biggest: int) -> dict[str, Any]:
    timings = []
    for _ in range(loads):
        driver.get("about:blank")
        t0 = time.perf_counter()
        driver.get(page.as_uri())
        while driver.execute_script("return document.body.dataset.ready") != "1":
            time.sleep(0.005)
        wall_s = time.perf_counter() - t0
        nav = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [performance.getEntriesByName('wsv-ready')[0].startTime,"
            " n.loadEventEnd, n.domContentLoadedEventEnd,"
            " performance.getEntriesByType('resource').length]")
        ep_ms = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const t0 = performance.now();"
            f"location.hash = 'ep={biggest}';"
            "const check = () => document.body.dataset.episode === String(" + str(biggest) + ")"
            "  ? done(performance.getEntriesByName('wsv-episode').pop().startTime - t0)"
            "  : setTimeout(check, 2);"
            "check();")
        filter_ms = driver.execute_script(
            "const box = document.getElementById('f-task'); const t0 = performance.now();"
            f"box.value = {task!r}; box.dispatchEvent(new Event('input'));"
            "return performance.now() - t0;")
        timings.append({"ready_ms": nav[0], "load_event_ms": nav[1], "dom_content_loaded_ms": nav[2],
                        "requests": nav[3], "wall_s": wall_s, "episode_ms": ep_ms,
                        "filter_ms": filter_ms})
    rest = timings[1:] or timings

    def med(key: str) -> float:
        return statistics.median(t[key] for t in rest)

    return {"first": timings[0], "median_of_rest": {k: med(k) for k in timings[0]},
            "max_ready_ms": max(t["ready_ms"] for t in timings), "loads": timings}


def main(args: Args) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="viewer-load-") if args.work is None else None
    work = Path(tmp.name) if tmp else args.work
    try:
        world = args.world
        if world is None:
            from wideseek_env.worlds import build_small_world

            world = build_small_world(work / "small-world", overwrite=True)
        bench = work / "bench"
        t0 = time.perf_counter()
        code = wideseek(["bench", "width", "--world", str(world), "--split", "test",
                         "--widths", ",".join(map(str, args.widths)), "--repeats",
                         str(args.repeats), "--out", str(bench), "--no-progress"])
        if code:
            raise SystemExit(f"wideseek bench width failed with exit code {code}")
        run_s = time.perf_counter() - t0
        pages: list[tuple[str, list[Path]]] = [
            (f"width {w}", [bench / f"width_{w}"]) for w in args.widths]
        pages.append((" + ".join(f"width {w}" for w in args.widths), [bench]))
        rows = []
        with headless_chromium(1400, 1000) as driver:
            for name, paths in pages:
                t1 = time.perf_counter()
                result = write_view(paths, work / f"{name.replace(' ', '_')}.html")
                build_s = time.perf_counter() - t1
                traces = [p / "episodes.jsonl" for p in paths if (p / "episodes.jsonl").is_file()]
                if not traces:  # the benchmark folder: every width
                    traces = sorted(bench.glob("width_*/episodes.jsonl"))
                records = [r for t in traces for r in read_traces(t)]
                biggest = max(range(len(records)), key=lambda i: len(records[i]["agents"]))
                m = measure_page(driver, result.path, args.loads, records[0]["task_id"], biggest)
                rows.append({
                    "page": name, "episodes": result.episodes,
                    "trace_mb": sum(t.stat().st_size for t in traces) / 1e6,
                    "page_mb": result.size_bytes / 1e6, "build_s": build_s,
                    "biggest_episode_agents": len(records[biggest]["agents"]), **m})
                print(f"{name}: {result.episodes} episodes, {result.size_bytes / 1e6:.1f} MB, "
                      f"ready {m['median_of_rest']['ready_ms']:.0f} ms", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    env = environment_info()
    data = {"args": {k: str(v) for k, v in asdict(args).items()}, "target_s": TARGET_S,
            "run_s": run_s, "pages": rows, "environment": env}
    lines = [
        "# Viewer load time (`wideseek view`, headless Chromium)", "",
        f"Real runs: `wideseek bench width` with the scripted policy on a small world, widths "
        f"{', '.join(map(str, args.widths))}, {args.repeats} repeats ({run_s:.0f} s). Each page "
        f"opened {args.loads} times from its file:// URL; first load, then the median of the "
        "others. ready = navigation start to the list rendered (the page's `wsv-ready` mark).",
        "",
        "| page | episodes | trace MB | page MB | build s | first ready ms | ready ms | load event ms "
        "| open biggest episode ms | filter ms | requests | ready < 2 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        m = r["median_of_rest"]
        lines.append(
            f"| {r['page']} | {r['episodes']:,} | {r['trace_mb']:.1f} | {r['page_mb']:.1f} | "
            f"{r['build_s']:.1f} | {r['first']['ready_ms']:.0f} | {m['ready_ms']:.0f} | "
            f"{m['load_event_ms']:.0f} | {m['episode_ms']:.0f} ({r['biggest_episode_agents']} "
            f"agents) | {m['filter_ms']:.0f} | {int(m['requests'])} | "
            f"{'yes' if r['max_ready_ms'] < TARGET_S * 1000 else 'NO'} |")
    lines += [
        "", "requests: resources the page loaded besides itself (must be 0: self-contained).",
        f"Machine: {env['platform']}, {env['cpu_count']} CPUs, load average "
        f"{env['load_average']} at the end (other jobs share this machine); Python "
        f"{env['python']}, wideseek {env['versions'].get('wideseek')}.",
        f"Command: `{env['command']}`.", ""]
    write_results(args.out, data, "\n".join(lines))


if __name__ == "__main__":
    main(tyro.cli(Args))
