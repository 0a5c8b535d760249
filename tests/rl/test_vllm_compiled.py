"""The vLLM engine in vLLM's default, compiled mode (torch.compile of the model, the mode the
rollout-throughput benchmark measures): same greedy tokens and log-probs as the Hugging Face
engine, before and after an in-place weight reload. The other vLLM tests run eagerly, which
starts faster; this one checks that the compiled graphs read the reloaded weights too.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from wideseek_rl.engines.base import SamplingParams  # noqa: E402
from wideseek_rl.engines.hf import HFEngine  # noqa: E402
from wideseek_rl.engines.vllm import VLLMEngine  # noqa: E402
from wideseek_rl.tiny import build_tiny_model  # noqa: E402

pytestmark = pytest.mark.vllm
TOL = 1e-4


def test_compiled_engine_matches_hf_before_and_after_reload(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    path = build_tiny_model(tmp_path / "tiny", seed=3)
    tok = AutoTokenizer.from_pretrained(path)
    prompts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                       add_generation_prompt=True, return_dict=False)
               for t in ("say the word river", "list every country with its capital")]
    hf = HFEngine.from_pretrained(path, dtype=torch.float32)
    engine = VLLMEngine(path, dtype="float32", max_model_len=512, enforce_eager=False)
    try:
        assert not engine.llm.llm_engine.model_config.enforce_eager
        greedy = SamplingParams(max_new_tokens=16, temperature=0.0)

        def same_as_hf() -> list[tuple[int, ...]]:
            ours, ref = engine.generate(prompts, greedy), hf.generate(prompts, greedy)
            for a, b in zip(ours, ref):
                assert a.token_ids == b.token_ids
                np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)
            return [c.token_ids for c in ours]

        before = same_as_hf()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in hf.model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        engine.load_weights(hf.model.state_dict())
        assert same_as_hf() != before
    finally:
        engine.close()
