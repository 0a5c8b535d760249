"""World integrity: checksums of a world's files in its card, checked on load, and its identity.

The builder records every file of the world folder (except ``world.json`` itself) in the card::

    "files": {"corpus/pages.bin": {"bytes": 12345, "sha256": "…"}, …},
    "world_id": "3f2a…"            # 16 hex digits

``world_id`` is a digest of the corpus and task files (path and SHA-256 of each), not of the
index: two builds of the same world with the same seed give the same id even though tantivy
names its segment files at random. It identifies *what the agents search and are scored on*;
runs record it and refuse to resume across a different one, and the retrieval server reports
it on ``/health``.

:func:`check_world` looks for damage at three depths (``verify``):

- ``none``: nothing;
- ``sizes``: the structure a world needs (card fields, page store files and their agreement,
  the default engine's index, the task files of every split) and every recorded file's size;
- ``full`` (the default): also every recorded file's SHA-256 (about 1.4 GB/s on one core here).

A damaged world raises :class:`DamagedWorldError` with one line naming the file and what is
wrong. A world built before checksums were recorded has no ``files``: only its structure is
checked, and its identity is ``None``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wideseek_env.search.base import DamagedWorldError
from wideseek_env.search.docstore import OFFSETS_FILE, PAGES_FILE, URLS_FILE

__all__ = ["DamagedWorldError", "IntegrityReport", "Verify", "card_fields", "check_world",
           "file_checksums", "world_identity"]

Verify = Literal["none", "sizes", "full"]
CARD_FILE = "world.json"  # the same name as worlds.layout.CARD_FILE (no import: no cycle)
IDENTITY_PREFIXES = ("corpus/", "tasks/")
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check_world` found: ``ok``, the problems (one line each), how deep it looked
    and how many recorded files it checked."""

    ok: bool
    problems: tuple[str, ...]
    verify: Verify
    files_checked: int
    has_checksums: bool

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": list(self.problems), "verify": self.verify,
                "files_checked": self.files_checked, "has_checksums": self.has_checksums}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(world_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"bytes", "sha256"}}`` of every file under ``world_dir`` but the card
    (and tantivy's lock files, which a reader may create or remove)."""
    root = Path(world_dir)
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel == CARD_FILE or path.name.endswith(".lock"):
            continue
        out[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return out


def world_identity(files: Mapping[str, Mapping[str, Any]]) -> str:
    """The 16-hex-digit id of a world from its recorded files (corpus and tasks only)."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        if rel.startswith(IDENTITY_PREFIXES):
            digest.update(f"{rel}\0{files[rel]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def card_fields(world_dir: str | Path) -> dict[str, Any]:
    """The card entries the builder adds once every file is written: ``files`` and ``world_id``."""
    files = file_checksums(world_dir)
    return {"files": files, "world_id": world_identity(files)}


def check_world(world_dir: str | Path, card: Mapping[str, Any], verify: Verify = "full",
                ) -> IntegrityReport:
    """Check ``world_dir`` against its card (see the module docstring); never raises."""
    if verify == "none":
        return IntegrityReport(True, (), verify, 0, "files" in card)
    root = Path(world_dir)
    problems = list(_structure(root, card))
    files = card.get("files")
    checked = 0
    if isinstance(files, Mapping):
        for rel, rec in files.items():
            path = root / rel
            checked += 1
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif path.stat().st_size != rec.get("bytes"):
                problems.append(f"{rel}: {path.stat().st_size} bytes where {CARD_FILE} records "
                                f"{rec.get('bytes')}")
            elif verify == "full" and sha256_file(path) != rec.get("sha256"):
                problems.append(f"{rel}: contents changed (SHA-256 differs from {CARD_FILE})")
        if card.get("world_id") != world_identity(files):
            problems.append(f"{CARD_FILE}: world_id does not match the recorded files")
    elif files is not None:
        problems.append(f"{CARD_FILE}: 'files' must be an object")
    return IntegrityReport(not problems, tuple(problems), verify, checked,
                           isinstance(files, Mapping))


def require_intact(world_dir: str | Path, card: Mapping[str, Any], verify: Verify = "full",
                   ) -> IntegrityReport:
    """:func:`check_world`, raising :class:`DamagedWorldError` (one line) on any problem."""
    report = check_world(world_dir, card, verify)
    if not report.ok:
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise DamagedWorldError(f"world {world_dir} is damaged: {report.problems[0]}{more}; "
                                "rebuild it (`wideseek world build … --overwrite`)")
    return report


def _structure(root: Path, card: Mapping[str, Any]) -> Iterable[str]:
    """Problems with what every world needs, whatever its card records."""
    for key in ("name", "counts", "splits"):
        if key not in card:
            yield f"{CARD_FILE}: no {key!r} field"
    corpus = root / "corpus"
    missing = [n for n in (PAGES_FILE, OFFSETS_FILE, URLS_FILE) if not (corpus / n).is_file()]
    if missing:
        yield f"corpus/{missing[0]}: missing"
    else:
        try:
            offsets = np.load(corpus / OFFSETS_FILE)
        except (ValueError, OSError, EOFError) as err:
            yield f"corpus/{OFFSETS_FILE}: unreadable ({err})"
        else:
            size = (corpus / PAGES_FILE).stat().st_size
            n_urls = (corpus / URLS_FILE).read_bytes().count(b"\n")
            if offsets.ndim != 1 or len(offsets) == 0 or int(offsets[-1]) != size:
                yield (f"corpus/{PAGES_FILE}: {size} bytes where corpus/{OFFSETS_FILE} says "
                       f"{int(offsets[-1]) if offsets.ndim == 1 and len(offsets) else '?'}")
            elif bool(np.any(np.diff(offsets.astype(np.int64)) < 0)):
                yield f"corpus/{OFFSETS_FILE}: offsets go backwards"
            elif n_urls != len(offsets) - 1:
                yield f"corpus/{URLS_FILE}: {n_urls} URLs for {len(offsets) - 1} pages"
            pages = card.get("counts", {}).get("pages") if isinstance(card.get("counts"),
                                                                      Mapping) else None
            if pages is not None and pages != len(offsets) - 1:
                yield f"corpus/{OFFSETS_FILE}: {len(offsets) - 1} pages where {CARD_FILE} says {pages}"
    engine = card.get("default_engine", "tantivy")
    if not (root / "index" / str(engine)).is_dir():
        yield f"index/{engine}: missing (the default engine's index)"
    splits = card.get("splits")
    for split in splits if isinstance(splits, Mapping) else ():
        if not (root / "tasks" / f"{split}.jsonl").is_file():
            yield f"tasks/{split}.jsonl: missing"


def read_card(world_dir: str | Path) -> dict[str, Any]:
    """``world.json`` of ``world_dir`` as a dict; a one-line error when it is not a world card."""
    path = Path(world_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedWorldError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(card, dict):
        raise DamagedWorldError(f"{path}: must hold a JSON object")
    return card
