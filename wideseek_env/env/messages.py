"""Read-only messages: what the env hands out can be read, serialised and copied, never edited.

A conversation is a list of :class:`ReadOnlyDict` messages that only grows, so an observation is a
cheap shallow copy of that list, and a caller that tries to edit a message gets a ``TypeError``
instead of silently changing the env's record (and every later observation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ReadOnlyDict(dict):
    """A ``dict`` that refuses changes (messages and tool schemas handed out by the env).

    It is still a real ``dict`` (JSON, chat templates and ``data_equivalence`` accept it); copy it
    with ``dict(m)`` to edit. Copying and pickling give back an equal read-only dict.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("messages and schemas from the env are read-only; copy them with dict(...)")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadOnlyDict, (dict(self),))

    def __copy__(self) -> ReadOnlyDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ReadOnlyDict:
        return self


def freeze(obj: Any) -> Any:
    """Deep read-only copy of JSON-like data: dicts -> :class:`ReadOnlyDict`, lists -> tuples."""
    if isinstance(obj, Mapping):
        return ReadOnlyDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def plain(obj: Any) -> Any:
    """A JSON-ready deep copy as plain dicts and lists (messages are read-only dicts, lists may be
    tuples)."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj
