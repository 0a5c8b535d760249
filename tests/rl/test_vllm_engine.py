"""The vLLM engine against the Hugging Face engine and the learner's scorer, on the tiny model in
fp32: same greedy tokens, sampling log-probs equal within 1e-4, stop handling, and generation
that follows new weights after `load_weights` (prefix cache included).

One engine is shared by the module: vLLM takes tens of seconds to start on a CPU.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from wideseek_rl.engines.base import SamplingParams  # noqa: E402
from wideseek_rl.engines.hf import HFEngine  # noqa: E402
from wideseek_rl.engines.vllm import VLLMEngine, derive_seeds  # noqa: E402
from wideseek_rl.learner import PolicyModule, build_sequences  # noqa: E402
from wideseek_rl.policy import LLMPolicy  # noqa: E402
from wideseek_rl.rollout import RolloutRunner  # noqa: E402
from wideseek_rl.tiny import build_tiny_model  # noqa: E402

pytestmark = pytest.mark.vllm
TOL = 1e-4


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("vllm") / "tiny", seed=0)


@pytest.fixture(scope="module")
def engine(tiny_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
        # vLLM torch.compiles its log-prob rank kernel on first use (tens of seconds on a CPU);
        # eager is as exact and the tests stay fast.
        mp.setattr(torch._dynamo.config, "disable", True)
        eng = VLLMEngine(tiny_path, dtype="float32", max_model_len=2048, enforce_eager=True)
        try:
            yield eng
        finally:
            eng.close()


@pytest.fixture(scope="module")
def hf(tiny_path):
    return HFEngine.from_pretrained(tiny_path, dtype=torch.float32)


@pytest.fixture(scope="module")
def prompts(tiny_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_path)
    texts = ["say the word river", "list every country with its capital and population",
             "find the airport code of each city in the table " * 4]
    return [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                    add_generation_prompt=True, return_dict=False)
            for t in texts]


def teacher_forced(model, prompt, completion, temperature):
    """The learner's log-probs of `completion` after `prompt` (PolicyModule, as in training)."""
    ids = torch.tensor([list(prompt) + list(completion)])
    with torch.no_grad():
        lp, _ = PolicyModule(model, temperature=temperature, chunk_tokens=0)(
            ids, torch.ones_like(ids))
    return lp[0, len(prompt) - 1 :].numpy()


def test_logprobs_match_hf_engine_and_learner(engine, hf, prompts):
    greedy = SamplingParams(max_new_tokens=24, temperature=0.0)
    ours, theirs = engine.generate(prompts, greedy), hf.generate(prompts, greedy)
    for a, b in zip(ours, theirs):
        assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)

    sampled = SamplingParams(max_new_tokens=40, temperature=0.7, seed=5)
    batch = prompts + prompts  # duplicates must still draw their own samples
    outs = engine.generate(batch, sampled)
    assert outs[0].token_ids != outs[len(prompts)].token_ids
    # A seeded call replays the tokens; prefix-cache hits may move log-probs in the last bits.
    again = engine.generate(batch, sampled)
    assert [o.token_ids for o in again] == [o.token_ids for o in outs]
    for a, b in zip(again, outs):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
    for prompt, out in zip(batch, outs):
        ref = teacher_forced(hf.model, prompt, out.token_ids, 0.7)
        np.testing.assert_allclose(out.logprobs, ref, atol=TOL, rtol=0)
    assert derive_seeds(5, 3) != derive_seeds(6, 3)


def test_stops_budgets_and_refusals(engine, hf, prompts):
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, seed=3)
    base = engine.generate(prompts[:1], sampling)[0]
    k = next(i for i in range(1, 12) if base.token_ids[i] not in base.token_ids[:i])
    stop = base.token_ids[k]
    out = engine.generate(prompts[:1], replace(sampling, stop_token_ids=(stop,)))[0]
    assert out.token_ids == base.token_ids[: k + 1] and out.finish_reason == "stop"
    np.testing.assert_allclose(out.logprobs, base.logprobs[: k + 1], atol=TOL, rtol=0)

    assert engine.generate(prompts, SamplingParams(max_new_tokens=0)) == [
        hf.generate([p], SamplingParams(max_new_tokens=0))[0] for p in prompts
    ]
    assert engine.generate([], SamplingParams()) == []
    # More prompt tokens than one engine step takes: on CPU, a seeded prompt prefilled in
    # chunks would crash vLLM (its CPU generators cannot rewind), so prompts go in whole.
    long = [[10 + (7 * i + j) % 1000 for j in range(1000)] for i in range(10)]
    outs = engine.generate(long, SamplingParams(max_new_tokens=2, seed=1))
    assert [len(o.token_ids) for o in outs] == [2] * 10
    with pytest.raises(ValueError, match="top_p=1"):
        engine.generate(prompts, SamplingParams(top_p=0.9))
    with pytest.raises(ValueError, match="max_model_len"):
        engine.generate([[5] * 2048], SamplingParams(max_new_tokens=4))
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        engine.generate([[5], []], SamplingParams(max_new_tokens=4))


def test_generation_follows_new_weights(engine, hf, prompts, tiny_path):
    greedy = SamplingParams(max_new_tokens=16, temperature=0.0)
    before = engine.generate(prompts, greedy)  # also fills the prefix cache with these prompts
    original = {k: v.clone() for k, v in hf.model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained model's state dict: the tied head is the embedding tensor
        for p in hf.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    new = hf.model.state_dict()
    try:
        engine.load_weights(new)
        after, ref = engine.generate(prompts, greedy), hf.generate(prompts, greedy)
        assert [c.token_ids for c in after] != [c.token_ids for c in before]
        for a, b in zip(after, ref):
            assert a.token_ids == b.token_ids
            np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)
    finally:
        engine.load_weights(tiny_path)  # back to the saved model, read from its directory
        hf.load_weights(original)
    for a, b in zip(engine.generate(prompts, greedy), before):
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL, rtol=0)
    assert engine.weight_version == 2


def test_rollout_logprobs_are_the_learners(engine, hf, tiny_path):
    """A real rollout on the toy env through LLMPolicy: every packed training row's sampling
    log-probs equal the learner's own scoring of that row (ratio 1 at the first update)."""
    from transformers import AutoTokenizer

    from wideseek_rl.envs import ToyEnvSpec

    tok = AutoTokenizer.from_pretrained(tiny_path)
    spec = ToyEnvSpec(width=2)
    policy = LLMPolicy(engine, tok, SamplingParams(max_new_tokens=12, temperature=1.0),
                       max_context_tokens=2048)
    policy.set_seed(0)
    runner = RolloutRunner(lambda: spec.make("train", tok), policy)
    episodes = runner.run(spec.task_options("train")[:2], 2, seed=0)
    rows = build_sequences(episodes, [1.0] * len(episodes))
    assert len(rows) >= 4 * 3  # lead + 2 helpers in each of the 4 episodes
    scorer = PolicyModule(hf.model, temperature=1.0, chunk_tokens=0)
    for row in rows:
        ids = torch.from_numpy(row.input_ids)[None]
        with torch.no_grad():
            lp, _ = scorer(ids, torch.ones_like(ids))
        mask = row.generated[1:]
        np.testing.assert_allclose(row.old_logprobs[1:][mask], lp[0].numpy()[mask],
                                   atol=TOL, rtol=0)


def test_one_call_serves_every_budget(engine, prompts):
    sampling = SamplingParams(max_new_tokens=20, temperature=1.0, seed=9)
    full = engine.generate(prompts, sampling)
    calls = engine.generate_calls
    capped = engine.generate(prompts, sampling, [4, 0, 11])
    assert engine.generate_calls == calls + 1
    assert capped[1].token_ids == () and capped[1].finish_reason == "length"
    for out, ref, cap in ((capped[0], full[0], 4), (capped[2], full[2], 11)):
        n = len(out.token_ids)  # vLLM seeds each prompt on its own: the same draws, cut
        assert n <= cap and out.token_ids == ref.token_ids[:n]
        np.testing.assert_allclose(out.logprobs, ref.logprobs[:n], atol=1e-5, rtol=0)


EXTERNAL_LAUNCHER = """
import json, os, sys
os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
import torch
from wideseek_rl.engines.base import SamplingParams
from wideseek_rl.engines.hf import HFEngine
from wideseek_rl.engines.vllm import VLLMEngine

if __name__ == "__main__":
    path = sys.argv[1]
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    greedy = SamplingParams(max_new_tokens=12, temperature=0.0)
    engine = VLLMEngine(path, dtype="float32", max_model_len=512, enforce_eager=True,
                        external_launcher=True)
    ours = engine.generate(prompts, greedy)
    ref = HFEngine.from_pretrained(path, dtype=torch.float32).generate(prompts, greedy)
    config = engine.llm.llm_engine.vllm_config.parallel_config
    print(json.dumps({
        "backend": config.distributed_executor_backend,
        "world": torch.distributed.get_world_size(),
        "rank": os.environ["RANK"],
        "same": [a.token_ids == b.token_ids for a, b in zip(ours, ref)],
        "max_dlogp": max(abs(x - y) for a, b in zip(ours, ref)
                         for x, y in zip(a.logprobs, b.logprobs)),
    }))
    engine.close()
"""


def test_external_launcher_engine_in_one_process(tiny_path, tmp_path):
    """The trainer's placement (vLLM's external launcher: the job's processes are the engine's
    workers, each rank's engine on its own device) with a single process, in a fresh
    interpreter: the launcher sets up torch.distributed for the process."""
    import json
    import subprocess
    import sys

    script = tmp_path / "external.py"
    script.write_text(EXTERNAL_LAUNCHER)
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    done = subprocess.run([sys.executable, str(script), str(tiny_path)], capture_output=True,
                          text=True, timeout=600, env={**env, "TORCH_COMPILE_DISABLE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "external_launcher" and out["world"] == 1 and out["rank"] == "0"
    assert out["same"] == [True, True] and out["max_dlogp"] < TOL
