"""wideseek_env: a multi-agent (lead + N subagents) search environment for width scaling.

No torch, transformers, vllm or accelerate are imported by this package (DESIGN.md §2).
"""

__version__ = "0.1.0"
