"""Your own policy on the command line: ``--policy MODULE:FACTORY``.

``MODULE`` is imported (a dotted module name on ``sys.path``, or a ``.py`` file path) and
``FACTORY`` -- any callable -- is called with the ``--policy-kwargs`` JSON object as keyword
arguments. It must return a :class:`~wideseek_env.policies.base.Policy` (an object with
``act(requests) -> actions``). What is recorded in ``run.json`` (and compared on resume) is the
spec and the kwargs, plus the policy's own ``info`` mapping when it has one (for settings the
factory chooses itself). Every mistake is a one-line :class:`~wideseek_env.errors.ConfigError`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wideseek_env.errors import ConfigError


def _import(module: str) -> Any:
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise ConfigError(f"--policy: no file {path}")
        name = f"wideseek_user_policy_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ConfigError(f"--policy: cannot import {module!r} ({err}); is it on PYTHONPATH?") \
            from None


def load_policy(spec: str, kwargs: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """``(policy, info for run.json)`` from ``"module:factory"`` and the factory's kwargs."""
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"--policy {spec!r}: expected scripted, random, openai or "
                          "MODULE:FACTORY (for example my_agents:make_policy)")
    factory = getattr(_import(module), attr, None)
    if not callable(factory):
        raise ConfigError(f"--policy {spec!r}: {module} has no callable {attr!r}")
    try:
        policy = factory(**dict(kwargs or {}))
    except TypeError as err:
        raise ConfigError(f"--policy {spec!r}: calling {attr}(**{dict(kwargs or {})}) failed: "
                          f"{err}") from err
    if not callable(getattr(policy, "act", None)):
        raise ConfigError(f"--policy {spec!r}: {attr}() returned a {type(policy).__name__}, "
                          "which has no act(requests) method")
    info: dict[str, Any] = {"name": spec, "kwargs": dict(kwargs or {})}
    extra = getattr(policy, "info", None)
    if isinstance(extra, Mapping):
        info["info"] = dict(extra)
    return policy, info
