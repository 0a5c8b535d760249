"""Generation engines: turn prompt token ids into completion token ids with their log-probs.

`base` holds the `GenerationEngine` protocol and its records; `hf` a Hugging Face engine for CPU
and tests. Engines live apart from the trainer: the trainer only calls `generate` and
`load_weights`.
"""

from wideseek_rl.engines.base import Completion, GenerationEngine, SamplingParams

__all__ = ["Completion", "GenerationEngine", "SamplingParams"]
