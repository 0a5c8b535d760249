"""Policies that act for batches of agents (no torch here)."""

from wideseek_env.policies.base import AgentAction, AgentRequest, Policy

__all__ = ["AgentAction", "AgentRequest", "Policy"]
