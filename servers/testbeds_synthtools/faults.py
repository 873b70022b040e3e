"""Seeded transient faults: 401 / 403 / 429 / 5xx fire only when enabled, at a rate, from a seed.

A call that passed the gateway may draw a fault before its effect runs. The draw is a pure function of
(seed, call index, tool, canonical arguments), so a run with the same seed and calls fails at the same
places in any process. A fault returns the tool's own error of that status when the spec has one (its
`Rate limit exceeded`, `Authentication failed` ...), else a generic message with a remedy. Nothing is
written: faults happen before the call's savepoint does any work.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .gateway import Failure, spec_failure
from .spec import Tool, sha256_hex

_GENERIC: dict[int, tuple[str, str]] = {
    401: ("unauthorized", "Authentication failed: the session credentials were rejected. Retry the call."),
    403: ("forbidden", "Access denied: the caller may not use this resource right now. Retry later."),
    429: ("rate_limited", "Rate limit exceeded: too many requests. Wait and retry the call."),
    500: ("internal_server_error", "Internal server error: the service failed unexpectedly. Retry the call."),
    502: ("bad_gateway", "Bad gateway: an upstream service failed. Retry the call."),
    503: ("service_unavailable", "Service unavailable: the service is temporarily down. Retry later."),
    504: ("gateway_timeout", "Gateway timeout: an upstream service timed out. Retry the call."),
}


class FaultConfig(BaseModel):
    """The fault option. Disabled unless `enabled` and `rate > 0`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Master switch; nothing fires when false.")
    rate: float = Field(0.0, ge=0.0, le=1.0, description="Probability that a call which passed the gateway faults.")
    seed: int = Field(0, description="Seed of the fault draws.")
    statuses: list[int] = Field(default_factory=lambda: [401, 403, 429, 500, 503],
                                description="Statuses to draw from, uniformly.")
    tools: list[str] | None = Field(None, description="Only these tools fault (None: all).")

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if s not in (401, 403, 429) and not 500 <= s <= 599]
        if bad or not v:
            raise ValueError(f"fault statuses must be 401, 403, 429 or 5xx, got {v}")
        return v


class FaultInjector:
    """Draws faults for calls by a `FaultConfig`."""

    def __init__(self, config: FaultConfig | None):
        self.config = config or FaultConfig()

    @property
    def active(self) -> bool:
        """Whether any fault can fire."""
        return self.config.enabled and self.config.rate > 0

    def draw(self, call_index: int, tool: Tool, canonical_args: Mapping[str, Any]) -> Failure | None:
        """The fault for this call, or None. Pure in (seed, call_index, tool, arguments)."""
        cfg = self.config
        if not self.active or (cfg.tools is not None and tool.name not in cfg.tools):
            return None
        digest = sha256_hex(["fault", cfg.seed, call_index, tool.name, dict(sorted(canonical_args.items()))])
        rnd = random.Random(int(digest[:16], 16))
        if rnd.random() >= cfg.rate:
            return None
        status = rnd.choice(cfg.statuses)
        own = [e for e in tool.errors if e.status == status]
        if own:
            return spec_failure(own[0], "fault")
        code, message = _GENERIC.get(status, ("server_error", f"Server error {status}: retry the call."))
        return Failure(status=status, code=code, message=message, stage="fault")
