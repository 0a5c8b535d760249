"""``import wideseek_env`` stays light: no torch (or other learner-side libraries) gets imported,
even when the envs are built and stepped."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "accelerate", "vllm")

SCRIPT = f"""
import sys
import pettingzoo
import wideseek_env
from wideseek_env.env.toy import toy_backend, toy_tasks
env = pettingzoo.make("parallel", "wideseek/WideSeek-v0", tasks=toy_tasks(), backend=toy_backend())
env.reset(seed=0)
env.step({{"lead": '<tool_call>{{"name": "delegate", "arguments": {{"subtasks": ["a"]}}}}</tool_call>'}})
env.step({{"sub_0": "report"}})
env.step({{"lead": "| River |"}})
assert not env.agents
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print(loaded)
assert not loaded, loaded
"""


def test_importing_and_running_the_env_does_not_import_torch() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_task_records_and_the_scorer_do_not_import_each_other_back() -> None:
    """The tasks/scoring circle is broken: the records import nothing of the project, and the
    scorer imports only the records (task files load the scorer's table reader on first use)."""
    script = """
import sys
import wideseek_env.tasks.records
assert not [m for m in sys.modules if m.startswith("wideseek_env.scoring")], sys.modules
import wideseek_env.scoring
assert "wideseek_env.tasks.files" not in sys.modules
from wideseek_env.tasks import load_widesearch
assert "wideseek_env.tasks.files" in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
