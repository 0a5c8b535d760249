"""A readable transcript of an episode as a tree: lead → subagents → tool calls → results.

Every message is shortened to ``max_chars`` (whitespace collapsed), the system prompts are left
out, and each subagent appears under the lead turn that delegated to it.
"""

from __future__ import annotations

from wideseek_env.env.config import EnvConfig
from wideseek_env.env.core import AgentState, Engine
from wideseek_env.tasks import Task


def _short(text: str, max_chars: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 1] + "…"


def _agent_lines(st: AgentState, indent: str, max_chars: int) -> list[str]:
    """The lines of one agent's conversation (without its children)."""
    status = st.status + (f" ({st.end_reason})" if st.end_reason else "")
    head = f"{st.agent_id} [{st.role}, {st.turns}/{st.max_turns} turns, {status}]"
    lines = [indent + head]
    turn = 0
    for msg in st.messages[1:]:  # skip the system prompt
        role = msg["role"]
        if role == "assistant":
            turn += 1
            label = f"turn {turn}"
        elif role == "tool":
            label = f"← {msg.get('name', 'tool')}"
        else:
            label = role
        lines.append(f"{indent}  {label}: {_short(msg['content'], max_chars)}")
    return lines


def render_tree(engine: Engine, max_chars: int = 300) -> str:
    """The transcript of the current episode (empty string before the first reset)."""
    if engine.task is None:
        return ""
    lead = engine.states["lead"]
    out = [f"task {engine.task.instance_id} ({engine.task.language})"]
    by_turn = {d.lead_turn: d for d in engine.delegations}
    turn = 0
    lead_lines = _agent_lines(lead, "", max_chars)
    out.append(lead_lines[0])
    body = iter(lead_lines[1:])
    for msg, line in zip(lead.messages[1:], body):
        out.append(line)
        if msg["role"] != "assistant":
            continue
        turn += 1
        deleg = by_turn.get(turn)
        if deleg is None:
            continue
        for agent_id in deleg.agents:
            out.extend(_agent_lines(engine.states[agent_id], "    ", max_chars))
    if engine.done and engine.kind == "qa":
        s = engine.summary()
        out.append(
            f"end: {s['episode_end']}; reward {s['reward']:.3f}; correct {s['correct']:.0f}; "
            f"token F1 {s['token_f1']:.3f}; subagents {s['subagents_used']}; turns "
            f"{s['total_turns']} (critical path {s['critical_path_turns']})"
        )
    elif engine.done:
        s = engine.summary()
        out.append(
            f"end: {s['episode_end']}; reward {s['reward']:.3f}; item F1 {s['item_f1']:.3f}; "
            f"row F1 {s['row_f1']:.3f}; subagents {s['subagents_used']}; turns {s['total_turns']} "
            f"(critical path {s['critical_path_turns']})"
        )
    return "\n".join(out)


class TranscriptViews:
    """What both envs show of their episode engine (`self._engine`, `self.config`,
    `self.render_mode`): the render modes, the task and the transcript."""

    _engine: Engine
    config: EnvConfig
    render_mode: str | None

    def render(self) -> str | None:
        """The transcript as a tree; printed for ``render_mode="human"``, returned for "ansi"."""
        if self.render_mode is None:
            return None
        text = self.transcript()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release: page-reading threads belong to a process-wide pool."""

    @property
    def task(self) -> Task | None:
        """The current episode's task (None before the first reset)."""
        return self._engine.task

    @property
    def tools_in_prompt(self) -> bool:
        """The tool schemas are in the system prompts: a policy must not pass them again."""
        return self.config.tools_in_prompt

    def transcript(self) -> str:
        """The current episode as a tree, whatever the render mode."""
        return render_tree(self._engine, self.config.render_max_chars)
