"""The project's one error style: what counts as the *user's* mistake, and how it is printed.

Every ``wideseek`` command (see :mod:`wideseek_env.cli`) turns a user error into one line,
``wideseek <command>: error: <what and where>``, and exit status 2; an interrupt (Ctrl-C) into a
line saying how to resume and status 130. Anything else is a bug and keeps its traceback.

User errors are :class:`UserError` (raised by our own input checks) and the specific errors of
the parts a user points the project at: damaged worlds and task files, unreachable or
misconfigured servers (policy, judge, search), files and ports (``OSError``).
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for or set up (a flag, a file, a server)."""


class ConfigError(UserError, ValueError):
    """A setting that cannot work (``--width 0``, a run folder holding another run, ...)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes printed as one line (imported here, on demand, to stay light)."""
    from wideseek_env.policies.openai import PolicyError
    from wideseek_env.scoring.judge import JudgeError
    from wideseek_env.search.base import DamagedWorldError, SearchError
    from wideseek_env.tasks import TaskFormatError

    return (UserError, DamagedWorldError, TaskFormatError, PolicyError, JudgeError, SearchError,
            OSError)


def one_line(err: BaseException) -> str:
    """The error's message on one line (a judge's or server's text may hold line breaks)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 2000 else text[:1997] + "..."
