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
