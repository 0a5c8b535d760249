"""wideseek_rl: multi-agent GRPO on Accelerate, trained against any PettingZoo ParallelEnv."""

__version__ = "0.1.0"
