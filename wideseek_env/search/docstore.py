"""The page store of a world: every page's id, URL, title and text, on disk, with random access.

Layout inside a directory (usually ``<world>/corpus``):

- ``pages.bin``: the records one after another, each a zlib-compressed UTF-8 JSON object
  ``{"id", "url", "title", "text", "kind", "entity"}``;
- ``offsets.npy``: ``uint64`` byte offsets, one more than there are records;
- ``urls.txt``: one URL per line, in record order (loaded into a dict for ``access``).

Records are compressed one by one so that reading a page never inflates its neighbours; the file
is memory-mapped, so a store of a few hundred MB costs little resident memory and is safe to read
from many threads at once. Ordinals (a record's position) are what the search engines index.
"""

from __future__ import annotations

import json
import mmap
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wideseek_env.search.base import DamagedWorldError

PAGES_FILE = "pages.bin"
OFFSETS_FILE = "offsets.npy"
URLS_FILE = "urls.txt"


@dataclass(frozen=True)
class StoredPage:
    """One page of a world's corpus.

    ``kind`` is ``entity`` (one entity's page), ``list`` (a list of entity names), ``source``
    (a source article without its table) or ``other`` (unrelated pages that make search harder).
    ``entity`` is the entity key an entity page is about (empty for other kinds).
    """

    id: str
    url: str
    title: str
    text: str
    kind: str = "other"
    entity: str = ""


class DocStoreWriter:
    """Append pages to a new store; :meth:`close` writes the offsets and URL list."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self.directory / PAGES_FILE, "wb")  # noqa: SIM115 - closed in close()
        self._offsets: list[int] = [0]
        self._urls: list[str] = []
        self._seen: set[str] = set()

    def add(self, page: StoredPage) -> int:
        """Store ``page`` and return its ordinal. URLs and ids must be unique and single-line."""
        if page.url in self._seen or "\n" in page.url:
            raise ValueError(f"duplicate or multi-line page url {page.url!r} (page id {page.id!r})")
        self._seen.add(page.url)
        blob = zlib.compress(json.dumps(asdict(page), ensure_ascii=False).encode("utf-8"), 6)
        self._file.write(blob)
        self._offsets.append(self._offsets[-1] + len(blob))
        self._urls.append(page.url)
        return len(self._urls) - 1

    def __len__(self) -> int:
        return len(self._urls)

    def close(self) -> None:
        self._file.close()
        np.save(self.directory / OFFSETS_FILE, np.asarray(self._offsets, dtype=np.uint64))
        (self.directory / URLS_FILE).write_text(
            "".join(u + "\n" for u in self._urls), encoding="utf-8"
        )


class DocStore:
    """Read-only, thread-safe random access to a store written by :class:`DocStoreWriter`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        for name in (PAGES_FILE, OFFSETS_FILE, URLS_FILE):
            if not (self.directory / name).is_file():
                raise FileNotFoundError(f"page store {self.directory} has no {name}")
        self._offsets = np.load(self.directory / OFFSETS_FILE)
        urls = (self.directory / URLS_FILE).read_text(encoding="utf-8").splitlines()
        if len(urls) + 1 != len(self._offsets):
            raise ValueError(
                f"page store {self.directory}: {len(urls)} urls but {len(self._offsets) - 1} records"
            )
        self._by_url = {u: i for i, u in enumerate(urls)}
        self._fh = open(self.directory / PAGES_FILE, "rb")  # noqa: SIM115 - closed in close()
        size = (self.directory / PAGES_FILE).stat().st_size
        self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def ordinal(self, url: str) -> int | None:
        """The ordinal of the page at ``url``, or ``None`` if there is none."""
        return self._by_url.get(url)

    def get(self, ordinal: int) -> StoredPage:
        """The page with this ordinal (``IndexError`` when out of range)."""
        if not 0 <= ordinal < len(self):
            raise IndexError(f"page ordinal {ordinal} out of range [0, {len(self)})")
        start, end = int(self._offsets[ordinal]), int(self._offsets[ordinal + 1])
        try:
            return StoredPage(**json.loads(zlib.decompress(self._map[start:end])))
        except (zlib.error, ValueError, TypeError) as err:  # bytes changed since the build
            raise DamagedWorldError(
                f"{self.directory / PAGES_FILE}: page {ordinal} (bytes {start}-{end}) is "
                f"unreadable ({type(err).__name__}: {err}); rebuild the world") from None

    def by_url(self, url: str) -> StoredPage | None:
        i = self._by_url.get(url)
        return None if i is None else self.get(i)

    def __iter__(self) -> Iterator[StoredPage]:
        for i in range(len(self)):
            yield self.get(i)

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._fh.close()
