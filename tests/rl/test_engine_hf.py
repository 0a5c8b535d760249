"""The Hugging Face engine: exact log-probs, seeding, stopping, batching and weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wideseek_rl.engines.base import Completion, GenerationEngine, SamplingParams
from wideseek_rl.engines.hf import HFEngine, filter_logits

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]


def full_forward_logprobs(model, prompt, completion, temperature=1.0):
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    if temperature > 0:
        logits = logits / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None])[:, 0]


def test_is_a_generation_engine(tiny_engine):
    assert isinstance(tiny_engine, GenerationEngine)
    assert tiny_engine.stop_token_ids  # <|im_end|> and <|endoftext|>


@pytest.mark.parametrize("sampling", [
    SamplingParams(max_new_tokens=12, temperature=1.0, seed=3),
    SamplingParams(max_new_tokens=12, temperature=0.7, top_p=0.5, top_k=50, seed=4),
    SamplingParams(max_new_tokens=12, temperature=0.0),
])
def test_logprobs_are_exact_full_distribution_logprobs(tiny_engine, sampling):
    outs = tiny_engine.generate(PROMPTS, sampling)
    assert len(outs) == len(PROMPTS)
    for prompt, out in zip(PROMPTS, outs):
        assert len(out.token_ids) == len(out.logprobs) > 0
        expected = full_forward_logprobs(tiny_engine.model, prompt, out.token_ids, sampling.temperature)
        assert torch.allclose(torch.tensor(out.logprobs), expected, atol=1e-4)


def test_seeded_sampling_is_reproducible_and_seed_dependent(tiny_engine):
    a = tiny_engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, seed=1))
    b = tiny_engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, seed=1))
    c = tiny_engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, seed=2))
    assert a == b
    assert a != c


def test_greedy_batched_equals_one_by_one(tiny_model_dir: Path):
    engine = HFEngine.from_pretrained(tiny_model_dir, max_batch_size=2)
    greedy = SamplingParams(max_new_tokens=8, temperature=0.0)
    batched = engine.generate(PROMPTS, greedy)
    single = [engine.generate([p], greedy)[0] for p in PROMPTS]
    for x, y in zip(batched, single):
        assert x.token_ids == y.token_ids
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_stops_on_stop_tokens_and_reports_length(tiny_engine):
    greedy = SamplingParams(max_new_tokens=8, temperature=0.0)
    free = tiny_engine.generate(PROMPTS[:1], greedy)[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 8
    stop_at = free.token_ids[3]
    first = free.token_ids.index(stop_at)
    stopped = tiny_engine.generate(PROMPTS[:1], SamplingParams(
        max_new_tokens=8, temperature=0.0, stop_token_ids=(stop_at,)))[0]
    assert stopped.finish_reason == "stop"
    assert stopped.token_ids == free.token_ids[: first + 1]  # the stop token is included
    assert tiny_engine.generate(PROMPTS, SamplingParams(max_new_tokens=0)) == [
        Completion((), (), "length")] * 3
    with pytest.raises(ValueError, match="empty"):
        tiny_engine.generate([[]], greedy)


def test_load_weights_from_state_dict_and_directory(tmp_path: Path, tiny_model_dir: Path):
    from wideseek_rl.tiny import build_tiny_model

    other_dir = build_tiny_model(tmp_path / "other", seed=7)
    engine = HFEngine.from_pretrained(tiny_model_dir)
    other = HFEngine.from_pretrained(other_dir)
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    mine, theirs = engine.generate(PROMPTS, greedy), other.generate(PROMPTS, greedy)
    assert mine != theirs
    engine.load_weights(other.model.state_dict())
    assert engine.generate(PROMPTS, greedy) == theirs
    engine2 = HFEngine.from_pretrained(tiny_model_dir)
    engine2.load_weights(other_dir)
    assert engine2.generate(PROMPTS, greedy) == theirs
    engine2.load_weights(engine2.model.state_dict())  # its own tensors: a no-op
    with pytest.raises(ValueError, match="do not match"):
        engine2.load_weights({"not.a.weight": torch.zeros(1)})


def test_filter_logits_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2, top_p=1.0)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_k=0, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7, 0.5 + 0.3 reaches it
    kept = ~torch.isinf(filter_logits(logits, top_k=0, top_p=0.5))
    assert kept.tolist() == [[True, False, False, False]]


def test_sampling_params_validate():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="log-probs"):
        Completion((1, 2), (0.0,), "stop")
