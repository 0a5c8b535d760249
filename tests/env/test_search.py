"""The local search stack: page store, engines, snippets, the local backend (the server and the
HTTP client are in test_search_server.py and test_search_client.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wideseek_env.search.base import SearchBackend, SearchError
from wideseek_env.search.docstore import DocStore, DocStoreWriter, StoredPage
from wideseek_env.search.engines import build_engine, open_engine
from wideseek_env.search.local import LocalSearchBackend, make_snippet
from wideseek_env.worlds import World, build_small_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World.load(build_small_world(tmp_path_factory.mktemp("w") / "small"))


def test_local_backend_is_a_search_backend(world: World) -> None:
    backend = world.backend()
    assert isinstance(backend, SearchBackend)
    assert world.backend() is backend  # opened once, then shared
    task = world.tasks("test")[0]
    name, url = task.gold.rows[0][0], task.meta["row_urls"][0]
    hits = backend.search([name], k=3)[0]
    assert url in [h.url for h in hits]
    assert all(h.score > 0 and h.title and h.snippet for h in hits)
    page = backend.access(url, max_chars=20)
    assert len(page.text) == 20 and page.next_offset == 20
    rest = backend.access(url, offset=page.next_offset, max_chars=10**6)
    assert rest.next_offset is None and rest.offset + len(rest.text) == rest.total_chars
    with pytest.raises(SearchError, match="no page"):
        backend.access("https://nowhere.example/x")
    with pytest.raises(SearchError):
        backend.search(["x"], k=0)


def test_snippet_prefers_matching_sentences() -> None:
    text = "Oslo is a city.\nThe country of Oslo is Norway.\nThe population of Oslo is 709,037."
    assert "709,037" in make_snippet(text, "population of Oslo", max_chars=40)


def test_engines_agree_on_an_easy_corpus(tmp_path: Path) -> None:
    writer = DocStoreWriter(tmp_path / "corpus")
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    for i, w in enumerate(words):
        writer.add(StoredPage(id=str(i), url=f"u://{i}", title=f"{w} page",
                              text=f"{w} is the word of page {i}. " + " ".join(words[:3])))
    writer.close()
    store = DocStore(tmp_path / "corpus")
    triples = [(i, p.title, p.text) for i, p in enumerate(store)]
    for name in ("tantivy", "bm25s"):
        build_engine(name, triples, tmp_path / name)
        engine = open_engine(name, tmp_path / name)
        ranked = engine.rank(["delta", "golf hotel", "zzz"], 2)
        assert ranked[0][0][0] == 3
        assert {o for o, _ in ranked[1]} == {6, 7}
        assert ranked[2] == []


def test_local_open_names_missing_index(world: World) -> None:
    with pytest.raises(FileNotFoundError, match="bm25s"):
        LocalSearchBackend.open(world.path, "bm25s")
