"""The viewer page in real headless Chromium (system chromium + chromedriver via selenium; installed
by .ci/setup.sh through .ci/browser.sh): the list's sorting and filters, the agent tree's
expand/collapse, the answer table coloured against the gold, the live page following a growing
trace, and a screenshot for the README (benchmarks/results/viewer.png, rewritten only with
WIDESEEK_UPDATE_SCREENSHOT=1).

Everything is checked by clicking and typing in the page, against what the trace records say.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
from viewer_runs import make_runs

from wideseek_env.scoring.explain import ScoreExplanation
from wideseek_env.trace import read_traces
from wideseek_env.viewer import write_view
from wideseek_env.viewer.browser import find_browser
from wideseek_env.viewer.serve import LiveView, make_server
from wideseek_env.worlds import build_small_world

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="chromium/chromedriver not installed (bash .ci/browser.sh)")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SCREENSHOT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "viewer.png"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    world = build_small_world(tmp_path_factory.mktemp("world") / "small")
    return make_runs(world, tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def page(runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_view(runs, tmp_path_factory.mktemp("page") / "view.html").path


@pytest.fixture(scope="module")
def records(runs: list[Path]) -> list[dict]:
    return [r for run in runs for r in read_traces(run / "episodes.jsonl")]


@pytest.fixture(scope="module")
def driver():
    from wideseek_env.viewer.browser import headless_chromium

    with headless_chromium(1400, 1100) as d:
        yield d


def wait(driver, condition, timeout_s: float = 10.0):
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(lambda d: condition(d))


def load(driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def shown_rows(driver) -> list[list[str]]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#episodes tbody tr')]"
        ".map(tr => [...tr.children].map(td => td.textContent))")


def head_index(driver, label: str) -> int:
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#episodes thead th")]
    return next(i for i, h in enumerate(heads) if h.rstrip(" ▲▼") == label)


def visible_subs(driver) -> list[str]:
    return [s.get_attribute("data-agent") for s in driver.find_elements(By.CSS_SELECTOR, ".sub")
            if s.is_displayed()]


def open_episode(driver, number: int) -> None:
    row = driver.find_element(By.CSS_SELECTOR, f'#episodes tbody tr[data-i="{number}"]')
    row.click()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.episode") == str(number))


def test_page_loads_from_file_without_any_request(driver, page, records):
    load(driver, page.as_uri())
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert len(shown_rows(driver)) == len(records) == 12
    assert driver.find_element(By.ID, "count").text.startswith("12 of 12 episodes")


def test_sort_and_filters_by_clicking_and_typing(driver, page, records):
    load(driver, page.as_uri())
    f1 = head_index(driver, "item F1")
    scores = [r["metrics"]["item_f1"] for r in records]
    driver.find_elements(By.CSS_SELECTOR, "#episodes thead th")[f1].click()  # best first
    order = [int(r[0]) for r in shown_rows(driver)]
    assert order == sorted(range(len(records)), key=lambda i: (-scores[i], i))
    driver.find_elements(By.CSS_SELECTOR, "#episodes thead th")[f1].click()
    order = [int(r[0]) for r in shown_rows(driver)]
    assert order == sorted(range(len(records)), key=lambda i: (scores[i], i))
    assert scores[order[0]] < scores[order[-1]]

    task_col = head_index(driver, "task")
    some_task = records[3]["task_id"]
    driver.find_element(By.ID, "f-task").send_keys(some_task)
    assert [r[task_col] for r in shown_rows(driver)] == [some_task, some_task]  # widths 1 and 2
    driver.find_element(By.ID, "f-reset").click()
    assert len(shown_rows(driver)) == 12

    Select(driver.find_element(By.ID, "f-run")).select_by_index(2)  # "all", width_1, width_2
    width_col = head_index(driver, "width")
    assert [r[width_col] for r in shown_rows(driver)] == ["2"] * 6
    box = driver.find_element(By.ID, "f-min")
    box.clear()
    box.send_keys("0.99")
    expected = [i for i in range(6, 12) if scores[i] >= 0.99]
    assert sorted(int(r[0]) for r in shown_rows(driver)) == expected
    assert len(expected) < 6  # the filter removed the spoiled answers
    driver.find_element(By.ID, "f-reset").click()
    assert len(shown_rows(driver)) == 12


def spoiled_index(records: list[dict]) -> int:
    return next(i for i, r in enumerate(records) if "WRONG VALUE" in (r["response"] or "")
                and r["agents"][-1]["parent"] is not None)


def test_answer_table_is_coloured_against_the_gold(driver, page, records):
    k = spoiled_index(records)
    load(driver, page.as_uri())
    open_episode(driver, k)
    ex = ScoreExplanation.from_dict(records[k]["explanation"])
    rows = [*ex.rows, *ex.extra_rows]
    cells = driver.find_elements(By.CSS_SELECTOR, "#answer-table td.cell")
    got = [c.get_attribute("data-verdict") for c in cells]
    assert got == [cell.verdict for row in rows for cell in row.cells]
    assert {"wrong", "missed", "extra", "duplicate", "correct", "key"} <= set(got)
    colours = {c.get_attribute("data-verdict"): c.value_of_css_property("background-color")
               for c in cells}
    assert len({colours["correct"], colours["wrong"], colours["missed"], colours["key"]}) == 4

    # Clicking a wrong cell shows how it was scored.
    j = got.index("wrong")
    wrong = [cell for row in rows for cell in row.cells][j]
    cells[j].click()
    detail = driver.find_element(By.ID, "cell-detail").text
    assert "wrong: the column's metric rejects the answer" in detail
    assert f"gold {wrong.gold}" in detail
    assert f"answer, as compared {wrong.predicted_pre}" in detail

    # "only rows with a problem" hides the fully right rows.
    table_rows = driver.find_elements(By.CSS_SELECTOR, "#answer-table tbody tr")
    driver.find_element(By.ID, "only-problems").click()
    visible = [tr for tr in table_rows if tr.is_displayed()]
    problems = [r for r in rows if r.status != "matched"
                or any(c.verdict not in ("key", "correct") for c in r.cells)]
    assert len(visible) == len(problems) < len(rows)
    driver.find_element(By.ID, "only-problems").click()
    assert all(tr.is_displayed() for tr in table_rows)


def test_agent_tree_expands_and_collapses(driver, page, records):
    k = spoiled_index(records)
    load(driver, page.as_uri())
    open_episode(driver, k)
    subs = [a for a in records[k]["agents"] if a["parent"] is not None]
    first_call = [a["id"] for a in subs if a["delegation"] == 0]
    assert visible_subs(driver) == []
    summary = driver.find_element(By.CSS_SELECTOR, 'details.delegation[data-call="0"] > summary')
    summary.click()  # the details open, and their toggle event fills them (asynchronously)
    wait(driver, lambda d: visible_subs(d) == first_call)
    first_sub = driver.find_element(By.CSS_SELECTOR, f'[data-agent="{first_call[0]}"]')
    assert f"{subs[0]['turns']}/{subs[0]['max_turns']} turns" in first_sub.text
    summary.click()
    wait(driver, lambda d: visible_subs(d) == [])

    # A tool result opens on click; expand all / collapse all reach every subagent.
    result = driver.find_element(By.CSS_SELECTOR, "#tree > .turn.tool details.result")
    assert not result.find_elements(By.CSS_SELECTOR, "pre")
    result.find_element(By.TAG_NAME, "summary").click()
    wait(driver, lambda d: result.find_elements(By.CSS_SELECTOR, "pre")
         and result.find_element(By.CSS_SELECTOR, "pre").is_displayed())
    driver.find_element(By.ID, "expand-all").click()
    assert sorted(visible_subs(driver)) == sorted(a["id"] for a in subs)
    driver.find_element(By.ID, "collapse-all").click()
    assert visible_subs(driver) == []

    # A subagent's bar in the width/turn figure opens its delegation and shows it.
    last = subs[-1]
    bars = driver.find_elements(By.CSS_SELECTOR, ".rounds .tbar:not(.lead)")
    assert len(bars) == len(subs)
    bars[-1].click()
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'[data-agent="{last["id"]}"]')
         .is_displayed())


def save_if_changed(png: bytes, path: Path, max_changed_pixels: int = 200) -> None:
    """Write ``png`` unless ``path`` already shows the same page: Chromium's PNG bytes vary
    between runs and a few pixels (a focus ring, a marker's antialiasing) with them, and the
    committed file should change only when the page does."""
    from PIL import Image, ImageChops

    if path.is_file():
        with Image.open(path) as old, Image.open(io.BytesIO(png)) as new:
            if old.size == new.size:
                diff = ImageChops.difference(old.convert("L"), new.convert("L"))
                if sum(diff.point(lambda v: v > 0 and 255).histogram()[255:]) <= max_changed_pixels:
                    return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def test_screenshot_for_the_readme(driver, page, records, tmp_path):
    """The README's screenshot; the committed file is refreshed only with
    WIDESEEK_UPDATE_SCREENSHOT=1 (a test run must not dirty the checkout)."""
    # A spoiled width-2 episode: wrong, missed and extra cells, and subagents side by side.
    k = next(i for i, r in enumerate(records) if i >= 6 and "WRONG VALUE" in (r["response"] or ""))
    call = max(range(10), key=lambda c: sum(a.get("delegation") == c for a in records[k]["agents"]))
    driver.set_window_size(1400, 2300)
    try:
        load(driver, page.as_uri())
        open_episode(driver, k)
        driver.find_element(By.CSS_SELECTOR, "#answer-table td.v-wrong").click()
        driver.find_element(By.CSS_SELECTOR, f'details.delegation[data-call="{call}"] > summary').click()
        wait(driver, lambda d: len(visible_subs(d)) >= 2)
        driver.execute_script("window.scrollTo(0, 0)")
        png = driver.get_screenshot_as_png()
        assert len(png) > 50_000
        save_if_changed(png, SCREENSHOT if os.environ.get("WIDESEEK_UPDATE_SCREENSHOT") == "1"
                        else tmp_path / "viewer.png")
    finally:
        driver.set_window_size(1400, 1100)


def test_live_page_shows_new_episodes_as_they_are_written(driver, runs, tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    (run / "run.json").write_text((runs[0] / "run.json").read_text())
    lines = (runs[0] / "episodes.jsonl").read_text().splitlines(keepends=True)
    trace = run / "episodes.jsonl"
    trace.write_text("".join(lines[:2]))
    server = make_server(LiveView([run], poll_ms=200), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        load(driver, f"http://127.0.0.1:{server.server_address[1]}/")
        assert len(shown_rows(driver)) == 2
        with trace.open("a") as f:
            f.writelines(lines[2:])
        wait(driver, lambda d: len(shown_rows(d)) == len(lines))
        assert "live: 6 episodes" in driver.find_element(By.ID, "status").text
        open_episode(driver, len(lines) - 1)  # a new episode opens like the others
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
