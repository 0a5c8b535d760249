"""Search backends: protocol, local on-disk index, HTTP server and client."""

from wideseek_env.search.base import Hit, Page, SearchBackend, SearchError

__all__ = ["Hit", "Page", "SearchBackend", "SearchError"]
