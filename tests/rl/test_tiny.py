"""The tiny model builder: deterministic, fast, loadable, with a chat template that renders tools."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from wideseek_env.env.keyword_relay import DELEGATE_SCHEMA
from wideseek_rl.tiny import build_tiny_model

SEARCH_SCHEMA = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {"queries": {"type": "array"}}},
}}


def test_build_is_fast_deterministic_and_reused(tmp_path: Path, tiny_model_dir: Path):
    import transformers  # noqa: F401 - import time is not build time

    t0 = time.perf_counter()
    again = build_tiny_model(tmp_path / "again", seed=0)
    assert time.perf_counter() - t0 < 10.0
    files = sorted(p.name for p in tiny_model_dir.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    for name in files:
        assert (tiny_model_dir / name).read_bytes() == (again / name).read_bytes(), name
    mtime = (again / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(again, seed=0) == again  # reused, not rebuilt
    assert (again / "model.safetensors").stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match="another recipe"):
        build_tiny_model(again, seed=1)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a tiny-model"):
        build_tiny_model(tmp_path / "foreign")


def test_other_seed_gives_other_weights(tmp_path: Path, tiny_model_dir: Path):
    other = build_tiny_model(tmp_path / "s1", seed=1)
    assert (other / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()


def test_loads_as_a_qwen3_causal_lm_that_vllm_can_serve(tiny_model_dir: Path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"]
    assert config["head_dim"] >= 32
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.vocab_size == len(tiny_tokenizer)
    assert 500 <= len(tiny_tokenizer) <= 2048
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 1_000_000


def test_tokenizer_round_trips_any_text_and_keeps_markup_tokens(tiny_tokenizer):
    for text in ["Make every helper say the word 'blue'.", "列出 Kestland 的所有河流", "€ ü 🚀 \t\n"]:
        ids = tiny_tokenizer.encode(text, add_special_tokens=False)
        assert tiny_tokenizer.decode(ids) == text
    call = '<tool_call>\n{"name": "delegate", "arguments": {"tasks": ["say blue"]}}\n</tool_call>'
    ids = tiny_tokenizer.encode(call + "<|im_end|>", add_special_tokens=False)
    tokens = tiny_tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "<tool_call>" and "</tool_call>" in tokens and tokens[-1] == "<|im_end|>"
    # Markup stays in decoded text; the end-of-turn token does not.
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == call
    assert tiny_tokenizer.eos_token == "<|im_end|>"


def test_chat_template_renders_tools_tool_calls_and_tool_messages(tiny_tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Find it."},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"type": "function", "function": {"name": "search", "arguments": {"queries": ["a"]}}},
            {"type": "function", "function": {"name": "search", "arguments": '{"queries": ["b"]}'}},
        ]},
        {"role": "tool", "content": "result a"},
        {"role": "tool", "content": "result b"},
        {"role": "assistant", "content": "<tool_call>\n{\"name\": \"delegate\"}\n</tool_call>"},
    ]
    text = tiny_tokenizer.apply_chat_template(messages, tools=[DELEGATE_SCHEMA, SEARCH_SCHEMA],
                                              tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert json.dumps(DELEGATE_SCHEMA) in text and json.dumps(SEARCH_SCHEMA) in text
    assert text.count("<|im_start|>system") == 1
    assert ('<|im_start|>assistant\nLet me look.\n<tool_call>\n{"name": "search", "arguments": '
            '{"queries": ["a"]}}\n</tool_call>\n<tool_call>\n{"name": "search", "arguments": '
            '{"queries": ["b"]}}\n</tool_call><|im_end|>\n') in text
    # Consecutive tool messages share one user turn.
    assert ("<|im_start|>user\n<tool_response>\nresult a\n</tool_response>\n<tool_response>\n"
            "result b\n</tool_response><|im_end|>\n") in text
    assert text.endswith("</tool_call><|im_end|>\n<|im_start|>assistant\n")
    plain = tiny_tokenizer.apply_chat_template(messages[:2], tokenize=False)
    assert plain == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nFind it.<|im_end|>\n"


def test_chat_template_is_prefix_stable_after_assistant_turns(tiny_tokenizer):
    convo = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
             {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t1"},
             {"role": "tool", "content": "t2"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "again"}]
    for n in (3, 6):  # cuts after an assistant message (consecutive tool messages are grouped)
        short = tiny_tokenizer.apply_chat_template(convo[:n], tools=[DELEGATE_SCHEMA], tokenize=False)
        longer = tiny_tokenizer.apply_chat_template(convo, tools=[DELEGATE_SCHEMA], tokenize=False,
                                                    add_generation_prompt=True)
        assert longer.startswith(short), n
