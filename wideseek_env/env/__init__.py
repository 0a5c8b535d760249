"""The environments: :class:`WideSeekEnv` (PettingZoo, lead + subagents) and
:class:`WideSeekSingleAgentEnv` (Gymnasium, one agent), the text protocol and the tools."""

from wideseek_env.env.config import PRESETS, EnvConfig, approx_token_count
from wideseek_env.env.parallel import WideSeekEnv, parallel_env
from wideseek_env.env.protocol import FinalMessage, FormatError, ToolCall, parse_action, strip_think
from wideseek_env.env.single_agent import WideSeekSingleAgentEnv

__all__ = [
    "PRESETS",
    "EnvConfig",
    "FinalMessage",
    "FormatError",
    "ToolCall",
    "WideSeekEnv",
    "WideSeekSingleAgentEnv",
    "approx_token_count",
    "parallel_env",
    "parse_action",
    "strip_think",
]
