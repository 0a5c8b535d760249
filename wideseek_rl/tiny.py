"""A tiny local chat model for tests, demos and vLLM-on-CPU checks (no download).

`build_tiny_model(out_dir)` writes a Hugging Face model directory that both
`AutoModelForCausalLM.from_pretrained` and vLLM load:

- a byte-level BPE tokenizer (~1.2k tokens) trained with `tokenizers` on text generated here:
  English words, the chat markup, JSON tool calls, markdown tables and the toy env's words;
- a chat template in the Qwen/Hermes convention that renders tool schemas (`<tools>`), tool
  calls (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`) and tool messages
  (`<tool_response>`, consecutive ones grouped in one user turn); a conversation that ends with
  an assistant message renders as a string prefix of any extension of it;
- a randomly initialised Qwen3 model: hidden 64, 2 layers, 2 heads of size 32 (vLLM needs a
  head size of at least 32), tied embeddings, 32k positions.

The build is deterministic (same seed, same bytes; the tokenizer does not depend on the seed)
and takes well under a second; a directory already built with the same recipe is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from wideseek_env.env.keyword_relay import KEYWORDS

#: Bump when the recipe changes so cached directories are rebuilt.
RECIPE_VERSION = 1
VOCAB_SIZE = 1536
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Markup the model writes itself: kept in decoded text (special=False), one token each.
MARKUP_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)

# Whitespace control: HF renders templates with trim_blocks/lstrip_blocks, so every literal
# newline is written as an explicit '\n' inside an expression.
CHAT_TEMPLATE = (
    "{%- set sys = messages[0].content if messages and messages[0].role == 'system' else none -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if sys -%}{{- sys + '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\n\\nYou can call these functions. Their signatures are inside <tools></tools>:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nTo call a function, write a JSON object with its name and arguments '"
    " + 'between <tool_call> and </tool_call>:\\n<tool_call>\\n{\"name\": <function-name>, '"
    " + '\"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}"
    "{%- elif sys is not none -%}"
    "{{- '<|im_start|>system\\n' + sys + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if loop.first and message.role == 'system' -%}"
    "{%- elif message.role in ('user', 'system') -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' + (message.content or '') -}}"
    "{%- for call in (message.tool_calls or []) -%}"
    "{%- set fn = call.function if call.function is defined else call -%}"
    "{%- set args = fn.arguments if fn.arguments is string else (fn.arguments | tojson) -%}"
    "{{- ('\\n' if (message.content or not loop.first) else '') + '<tool_call>\\n{\"name\": '"
    " + (fn.name | tojson) + ', \"arguments\": ' + args + '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif message.role == 'tool' -%}"
    "{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + (message.content or '') + '\\n</tool_response>' -}}"
    "{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- raise_exception('unknown message role: ' + message.role) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

_WORD_TEXT = """
the a an of to in and or for with on at by from as is are was were be been has have had do does
did not no yes all any each every some many more most few other such only own same so than too
very can will just should now who what which when where why how this that these those it its
they them their we our you your he she his her i me my list find search access read page table
row column name year date number country city capital population area language currency code
airport element symbol mass river mountain lake company founded team player game book author
film director song album artist price total count first last best new old large small high low
report answer question task subtask result results source sources url link title snippet text
query queries delegate agent agents lead subagent subagents worker helper call tool tools
function arguments parameters description type string integer array object items required
properties say word keyword please tell write reply message done found error failed ok true
false null none unknown north south east west world state province region president born died
"""
_WORDS = tuple(_WORD_TEXT.split())


def _corpus_lines(seed: int) -> list[str]:
    """Deterministic training text covering the chat markup, tool JSON and plain words."""
    rng = random.Random(seed)
    words = [*_WORDS, *KEYWORDS]
    lines: list[str] = []
    for _ in range(600):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))))
    for _ in range(150):
        name = rng.choice(["delegate", "search", "access"])
        key = {"delegate": "tasks", "search": "queries", "access": "urls"}[name]
        items = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(3)]
        call = json.dumps({"name": name, "arguments": {key: items}})
        lines.append(f"<|im_start|>assistant\n<tool_call>\n{call}\n</tool_call><|im_end|>")
        lines.append(f"<|im_start|>user\n<tool_response>\n{items[0]}\n</tool_response><|im_end|>")
    for _ in range(100):
        cols = rng.sample(words, 3)
        row = " | ".join(str(rng.randint(0, 3000)) for _ in cols)
        lines.append(f"```markdown\n| {' | '.join(cols)} |\n|---|---|---|\n| {row} |\n```")
        lines.append(f"https://www.{rng.choice(words)}.org/wiki/{rng.choice(words)}_{rng.randint(1, 99)}")
    lines.append("0123456789 {}[]():;,.!?\"'-_/\\|#*@&%$+=<>~`^")
    return lines


def _recipe_hash(seed: int) -> str:
    blob = json.dumps(
        {"v": RECIPE_VERSION, "seed": seed, "vocab": VOCAB_SIZE, "template": CHAT_TEMPLATE,
         "words": [*_WORDS, *KEYWORDS]},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_chat_tokenizer(lines: Iterable[str], vocab_size: int, *,
                         model_max_length: int = 32768, isolate_spaces: bool = False) -> Any:
    """A byte-level BPE tokenizer trained on `lines` with the chat special tokens (`SPECIAL_TOKENS`)
    and the markup the model writes (`MARKUP_TOKENS`, one token each, kept in decoded text), and
    the chat template `CHAT_TEMPLATE`; `vocab_size` counts every token. Deterministic.

    By default a word carries the space before it, as in GPT-2 ("Norway" after a space is
    " N|or|way", after a quote "N|or|way"). With `isolate_spaces` every space is a token of its
    own, so a word has the same tokens wherever it stands (after a space, a quote, a slash, a
    line start) and copying it is copying tokens; texts take about 1.5 times as many tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(" "), "isolated"),
                                                  byte_level])
                         if isolate_spaces else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(MARKUP_TOKENS),
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """Build (or reuse) the tiny Qwen3 chat model in `out_dir` and return its path.

    The directory holds `config.json`, `model.safetensors`, `generation_config.json` and the
    tokenizer files with the chat template. It is written to a temporary sibling and renamed into
    place, so a crash never leaves a half-built model behind.
    """
    out = Path(out_dir)
    stamp = _recipe_hash(seed)
    if (out / "wideseek_tiny.json").is_file():
        meta = json.loads((out / "wideseek_tiny.json").read_text())
        if meta.get("recipe") == stamp:
            return out
        raise FileExistsError(f"{out} holds a tiny model of another recipe; remove it first")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a tiny-model directory")

    # The same for every seed: only the weights differ.
    tokenizer = train_chat_tokenizer(_corpus_lines(0), VOCAB_SIZE)
    shape = {"hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2,
             "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
             "max_position_embeddings": 32768}
    return write_qwen3_model(out, tokenizer, shape, seed=seed,
                             meta_file="wideseek_tiny.json", meta={"recipe": stamp, "seed": seed})


def write_qwen3_model(out: Path, tokenizer: Any, shape: dict[str, Any], *, seed: int,
                      meta_file: str, meta: dict[str, Any],
                      train: Callable[[Any], dict[str, Any]] | None = None) -> Path:
    """A randomly initialised (seeded) Qwen3 chat model of `shape` (Qwen3Config fields) with
    `tokenizer`, tied embeddings and no padding rows (every id the model samples decodes),
    written to `out` through a temporary sibling renamed into place (a crash never leaves a
    half-built model behind); `meta` goes to `meta_file` beside it. `train(model)`, if given,
    runs before the model is saved and its record is added to `meta`."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(vocab_size=len(tokenizer), tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=im_end, pad_token_id=eot, dtype="float32", **shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    if train is not None:
        meta = {**meta, **train(model)}
    model.generation_config = GenerationConfig(
        eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=True, temperature=1.0, top_p=1.0
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / meta_file).write_text(json.dumps(meta))
        if out.exists():
            out.rmdir()  # empty, checked by the caller
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
