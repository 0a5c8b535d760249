"""The ``paper`` profile's texts: tool schemas, system prompts, user messages, turn hints and the
layout of tool results, structured as WideSeek-R1's reference implementation structures them
and written in our own words.

Structure followed (per role): ``# Role`` (who the agent is and that it reasons inside
``<think>…</think>`` first), ``# Tool Usage`` (what the tools do and how to use them), worked
examples (lead and single agent, table tasks only) and ``# Final Answer`` (a
```` ```markdown ```` fence for tables, ``\\boxed{}`` for QA). The lead's user message is
``# Task`` with the question; a subagent's holds the main task and its subtask. Every user and
tool message ends with a turn hint. Tool results are laid out in ``# Search query:`` /
``# Access URL:`` / ``# Subtask k:`` blocks followed by ``# Result:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wideseek_env.env.tools import ToolLimits
from wideseek_env.search.base import Page

FIRST_TURN = "\n\nThis is turn 1 of your work on this task. You must be done within {turns} turns."
NEXT_TURN = "\n\nYour next reply is turn {turn}. You MUST finish the whole answer by turn {turns}."
SEARCH_FAILED = "Error: the search failed ({error})."
NO_HITS = "No search results were found."
EMPTY_PAGE = "No information could be found at this URL."
SUBAGENT_FAILED = ("This subagent ran out of room (its context window or its turns) while "
                   "working on the subtask, so it failed. Please retry.")


# --------------------------------------------------------------------------- tool schemas


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


def tool_schema(tool: str, limits: ToolLimits, single: bool = False) -> dict[str, Any]:
    """The OpenAI ``tools`` entry of ``tool`` as the paper's model knows it (``single``: the
    single agent's one-item form of ``search`` and ``access``)."""
    query = {"type": "string", "description": "What to search for."}
    count = {"type": "integer", "default": limits.top_k,
             "description": f"How many results to return: fewer than 10, {limits.top_k} by "
                            "default."}
    url = {"type": "string", "description": "The full URL to open; only use URLs that a search "
                                             "returned."}
    info = {"type": "string", "description": "The question to answer, or the information to pull "
                                             "out, from this page."}
    if tool == "delegate":
        n = limits.max_subtasks
        fn = {"name": "create_sub_agents",
              "description": f"Start sub-agents that each carry out one subtask from its prompt. "
                             f"Several sub-agents can be started in one call, at most {n}.",
              "parameters": _obj({"sub_agents": {
                  "type": "array", "maxItems": n,
                  "description": "The sub-agents to start. They run in parallel, in no order.",
                  "items": _obj({"prompt": {
                      "type": "string",
                      "description": "Everything the sub-agent needs to know about its subtask."}},
                      ["prompt"])}}, ["sub_agents"])}
    elif tool == "search":
        desc = ("A web search: give queries and get back a list of pages with a short summary of "
                "each.")
        if single:
            fn = {"name": "search", "description": desc,
                  "parameters": _obj({"query": query, "count": count}, ["query"])}
        else:
            fn = {"name": "search",
                  "description": desc + f" At most {limits.max_queries} queries per call.",
                  "parameters": _obj({"queries": {
                      "type": "array", "maxItems": limits.max_queries,
                      "description": "The queries; they run in parallel, in no order.",
                      "items": _obj({"query": query, "count": count}, ["query"])}}, ["queries"])}
    elif tool == "access":
        desc = "Open web pages and get from each the information you ask for."
        if single:
            fn = {"name": "access", "description": desc,
                  "parameters": _obj({"url": url, "info_to_extract": info},
                                     ["url", "info_to_extract"])}
        else:
            fn = {"name": "access",
                  "description": desc + f" At most {limits.max_urls} pages per call.",
                  "parameters": _obj({"urls": {
                      "type": "array", "maxItems": limits.max_urls,
                      "description": "The pages to open; they are read in parallel, in no order.",
                      "items": _obj({"url": url, "info_to_extract": info},
                                    ["url", "info_to_extract"])}}, ["urls"])}
    else:
        raise ValueError(f"unknown tool {tool!r}")
    return {"type": "function", "function": fn}


# --------------------------------------------------------------------------- system prompts

_THINK = "Every time you receive new information, reason about it inside <think> and </think> first."

_LEAD = """# Role
You are the main agent on a demanding task. You solve it by splitting the original problem into
simpler, well-defined subtasks and handing them to sub-agents that can **search** the web.

{think}

# Tool Usage
When your reasoning shows that the task needs knowledge you do not have, split it into smaller
**parallel** subtasks and give them to sub-agents with the **create_sub_agents** tool.

Sub-agents work **at the same time** and have their own search tools. Make every subtask
**independent**: no subtask may wait for another one's result, and each covers one part of the
original problem.

The sub-agents' results come back to you in the next turn as the tool's response.

You may call the tool over several turns. In each turn, think about what the previous sub-agents
returned before you start a new set of subtasks, and go on until you know enough to solve the
original problem.
{examples}
# Final Answer
{answer}"""

_LEAD_EXAMPLES = """
# Worked Examples

Two examples of how to split a question.

## Example 1

**Question:**
List the physics Nobel laureates from 2015 to 2019 with their name, award year, country of
birth and doctoral university.

**How to proceed:**
Turn 1:

<think>
I need the laureates first; the details can only be asked about once I know who they are. One
sub-agent per year finds the names quickly.
</think>

<tool_call>
{{"name": "create_sub_agents", "arguments": {{"sub_agents": [{{"prompt": "Who won the Nobel Prize in Physics in 2015?"}}, {{"prompt": "Who won the Nobel Prize in Physics in 2016?"}}, ..., {{"prompt": "Who won the Nobel Prize in Physics in 2019?"}}]}}}}
</tool_call>

Turn 2, once the names (laureate1, laureate2, ...) are back:

<think>
I have every laureate and year. Their countries of birth and doctoral universities are still
missing, so each laureate gets a sub-agent of its own, at most ten per call.
</think>

<tool_call>
{{"name": "create_sub_agents", "arguments": {{"sub_agents": [{{"prompt": "Find the country of birth and the doctoral university of laureate1."}}, ..., {{"prompt": "Find the country of birth and the doctoral university of laureate10."}}]}}}}
</tool_call>

Turn 3 starts sub-agents for the laureates that remain.

## Example 2

**Question:**
Give the moons of Mars and Neptune that are larger than 100 km across, with their diameter and
year of discovery.

**How to proceed:**
Turn 1:

<think>
I do not know which moons qualify. One sub-agent per planet lists them.
</think>

<tool_call>
{{"name": "create_sub_agents", "arguments": {{"sub_agents": [{{"prompt": "List the moons of Mars with a diameter above 100 km."}}, {{"prompt": "List the moons of Neptune with a diameter above 100 km."}}]}}}}
</tool_call>

Turn 2, with the list (moon1, moon2, ...):

<tool_call>
{{"name": "create_sub_agents", "arguments": {{"sub_agents": [{{"prompt": "Find the diameter and the discovery year of moon1."}}, {{"prompt": "Find the diameter and the discovery year of moon2."}}, ...]}}}}
</tool_call>
"""

_SUB = """# Role
You are a sub-agent in charge of one part of a larger task. Complete the subtask you were given
accurately, with search and access tools and detailed evidence. You do not have to solve the
main task as a whole.

{think}

# Tool Usage
When your reasoning shows that you need more knowledge, use the search and access tools.

You may make several tool calls in one turn; they run at the same time, in no order, and their
results come back in the next turn as tool responses.

The search tool takes general queries and returns a list of page URLs with short summaries. The
access tool opens one page by its URL and gets more detailed information from it.

A good habit is to search first to find promising pages, then open a specific URL with access
for the details. Only open URLs that a search returned; never make one up.

You may call tools over several turns. In each turn, think about the last results before you
decide what to do next, and go on until you know enough to complete your subtask.

# Final Answer
When no more outside knowledge is needed, write a final summary of your subtask with the
supporting details. It goes back to the main agent and helps it decide what to do next.

Make the summary a clear, well-organised report.

Stay focused on your subtask, but remember that it is part of the main task, and keep the main
task in mind while you work on it."""

_SINGLE = """# Role
You are an agent on a demanding task. Solve it with the search and access tools.

{think}

# Tool Usage
When your reasoning shows that you need more knowledge, use the search and access tools; their
results come back in the next turn as tool responses.

The search tool takes general queries and returns a list of page URLs with short snippets. The
access tool opens one page by its URL and gets more detailed information from it.

A good habit is to search first to find promising pages, then open a specific URL with access
for the details. Only open URLs that a search returned; never make one up.

You may call tools over several turns. In each turn, think about the last results before you
decide what to do next, and go on until you know enough to solve the task.
{examples}
# Final Answer
{answer}"""

_SINGLE_EXAMPLES = """
# Worked Examples

Two examples of how to work through a question.

## Example 1

**Question:**
List the physics Nobel laureates from 2015 to 2019 with their name, award year, country of
birth and doctoral university.

**How to proceed:**
Turn 1:

<think>
I need the laureates first. I can run one search per turn, so I start with the list.
</think>

<tool_call>
{{"name": "search", "arguments": {{"query": "Nobel Prize in Physics laureates 2015 to 2019", "count": 5}}}}
</tool_call>

Once the laureates (laureate1, laureate2, ...) are known, one search per laureate (and access
where a snippet is not enough):

<tool_call>
{{"name": "search", "arguments": {{"query": "laureate1 country of birth doctoral university", "count": 3}}}}
</tool_call>

...

## Example 2

**Question:**
Give the moons of Mars and Neptune that are larger than 100 km across, with their diameter and
year of discovery.

**How to proceed:**
Turn 1:

<tool_call>
{{"name": "search", "arguments": {{"query": "moons of Mars and Neptune larger than 100 km", "count": 3}}}}
</tool_call>

Then, for each moon found (moon1, moon2, ...):

<tool_call>
{{"name": "search", "arguments": {{"query": "moon1 diameter discovery year", "count": 3}}}}
</tool_call>

...
"""

_ANSWER = {
    "table": ("When no more outside knowledge is needed, you must give your final answer in "
              "this format:\n```markdown\n{data_content}\n```"),
    "qa": "When no more outside knowledge is needed, you must put your final answer inside "
          "\\boxed{}.",
}


def system_prompt(role: str, kind: str) -> str:
    """The system prompt of ``role`` (``lead``, ``subagent``, ``single``) for a ``kind`` task
    (``table`` or ``qa``; worked examples for table tasks only)."""
    if role == "subagent":
        return _SUB.format(think=_THINK)
    answer = _ANSWER["qa" if kind == "qa" else "table"]
    if role == "lead":
        examples = _LEAD_EXAMPLES if kind != "qa" else ""
        return _LEAD.format(think=_THINK, examples=examples, answer=answer)
    examples = _SINGLE_EXAMPLES if kind != "qa" else ""
    return _SINGLE.format(think=_THINK, examples=examples, answer=answer)


def user_message(role: str, text: str, main_task: str) -> str:
    """The first user message (without its turn hint)."""
    if role == "subagent":
        return f"# Task\nThe main task:\n{main_task}\n\nYour subtask:\n{text}"
    if role == "single":
        return (f"# Task\nYour task: {text}\n\n# Instructions\nGive a detailed answer to this "
                "task, with the information that supports it.")
    return f"# Task\nYour task:\n{text}"


# --------------------------------------------------------------------------- tool results


def search_block(query: str, hits: Sequence[Any]) -> str:
    """One query's results: ``[Doc k](url):`` then the title and the snippet of each hit."""
    if not hits:
        body = NO_HITS
    else:
        body = "\n\n".join(f"[Doc {k}]({h.url}):\n{h.title}\n{h.snippet}"
                           for k, h in enumerate(hits, 1))
    return f"# Search query:\n{query}\n# Result:\n{body}"


def access_block(url: str, info: str | None, page: Page | str, summary: str | None) -> str:
    """One page read by ``access``: its text (cut to the page budget), its summary, or an error."""
    if isinstance(page, str):
        body = f"Error: {page}"
    elif summary is not None:
        return f"# Access URL:\n{url}\n# Info to extract:\n{info}\n# Result:\n{summary}"
    else:
        text = f"{page.title}\n\n{page.text}".strip()
        body = text or EMPTY_PAGE
    return f"# Access URL:\n{url}\n# Result:\n{body}"


def subtask_block(i: int, subtask: str, report: str | None) -> str:
    """One subtask's result in the lead's tool message (``None``: the subagent failed)."""
    return f"# Subtask {i}:\n{subtask}\n# Result:\n{SUBAGENT_FAILED if report is None else report}"
