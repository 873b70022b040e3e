"""LLM mode: an LLM fills the values the engine cannot bind, behind the same gateway and engine.

The engine runs the gateway, the preconditions and the declared effect first; only the output keys left to
synthesis (`free_keys`) go to the simulator. An `LLMSimulator` asks an LLM - any async callable
`llm(system, prompt, schema) -> str`, supplied by the server (MCP sampling) or a provider adapter; this
module never imports `mcp` - with the spec, examples, bound rows, recent calls and the values already
fixed, and expects JSON `{"result": {...}, "patches": [{"table", "key", "set": {...}}]}`. An answer that is
not JSON, fails the output schema or proposes a patch the engine refuses (undeclared column, unknown row,
bad value or transition) is retried with the problems stated; after `max_tries` invalid answers the
deterministic generator answers (`source = "fallback"`). Accepted patches are applied by the engine inside
the call's savepoint; keys the engine bound always keep the engine's values.

**Cache.** Content-addressed: key = sha256 of canonical JSON of `{cache_version, provider, model, sampling,
template_hash, spec_hash, tool, arguments (canonical), state_hash}` - keyed on the request, since under
sampling the client picks the model. Modes: `off` (no cache), `record` (hits are reused, misses call the
LLM and are stored, fallbacks included), `replay` (hits only; a miss raises `ReplayMiss` and the LLM is
never called). Stored as a SQLite file (`*.db`, `*.sqlite`, `*.sqlite3`) or a directory of JSON files.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .spec import Tool, canonical_json, sha256_hex

LLM = Callable[[str, str, dict[str, Any]], Awaitable[str]]
"""`async llm(system, prompt, schema) -> text`: the answer should be JSON matching `schema`."""

CACHE_VERSION = 1
CacheMode = Literal["record", "replay", "off"]

SYSTEM_TEMPLATE = (
    "You simulate one tool of a software system. Answer with one JSON object only, matching the given schema: "
    "{\"result\": <the tool's output object>, \"patches\": [<state changes, optional>]}. Keep every value in "
    "`fixed` exactly as given. Make values consistent with the arguments, the bound rows and the recent calls; "
    "echo identifiers; keep dates plausible. Propose patches only for the writable columns listed, as "
    "{\"table\": ..., \"key\": <row key>, \"set\": {column: value}}; otherwise return an empty list."
)
PROMPT_TEMPLATE = (
    "Tool: {name} ({title})\nDescription: {description}\nUsage: {usage}\n"
    "Output schema: {output_schema}\nErrors: {errors}\nExamples: {examples}\n"
    "Arguments: {arguments}\nNow: {now}\nBound rows: {rows}\nRecent calls: {recent}\n"
    "Fixed output values (keep them): {fixed}\nFill these output keys: {free}\nWritable columns: {writable}\n"
    "{problems}"
)
TEMPLATE_HASH = sha256_hex([SYSTEM_TEMPLATE, PROMPT_TEMPLATE])


class SimulationError(RuntimeError):
    """The simulator cannot answer (e.g. a stale cache entry)."""

    code = "simulation_error"


class ReplayMiss(SimulationError):
    """Replay mode and the cache has no entry for this request; no LLM is called."""

    code = "replay_miss"


class Patch(BaseModel):
    """A proposed state change: set columns of the row of `table` keyed `key`."""

    model_config = ConfigDict(extra="forbid")

    table: str
    key: Any
    set: dict[str, Any] = Field(default_factory=dict)


class SimRequest(BaseModel):
    """What the engine hands the simulator for one call."""

    model_config = ConfigDict(extra="forbid")

    toolset_id: str
    tool: Tool
    arguments: dict[str, Any] = Field(description="Canonical arguments (defaults applied, keys sorted).")
    fixed: dict[str, Any] = Field(description="Output keys the engine bound; they are kept whatever the LLM says.")
    draft: dict[str, Any] = Field(description="The deterministic result (fixed keys plus synthesised ones).")
    free_keys: list[str] = Field(description="Output keys left for the simulator to fill.")
    rows: list[dict[str, Any]] = Field(default_factory=list, description="Rows the call bound.")
    recent_calls: list[dict[str, Any]] = Field(default_factory=list)
    state_hash: str
    now: str
    writable: dict[str, list[str]] = Field(default_factory=dict, description="table -> columns a patch may set.")
    lenient_dates: bool = False


class SimResponse(BaseModel):
    """The simulator's answer."""

    model_config = ConfigDict(extra="forbid")

    result: dict[str, Any]
    patches: list[Patch] = Field(default_factory=list)
    source: Literal["llm", "cache", "fallback", "deterministic"]
    tries: int = 0
    refusals: list[str] = Field(default_factory=list, description="Why earlier answers were refused.")


CheckFn = Callable[[dict[str, Any], list[Patch]], list[str]]
"""The engine's check of an answer: problems with the result or the patches (empty: acceptable)."""


class Simulator(Protocol):
    """Answers a `SimRequest`; `check` is the engine's validator of results and patches."""

    async def simulate(self, request: SimRequest, check: CheckFn) -> SimResponse: ...


class DeterministicSimulator:
    """The deterministic generator as a simulator: returns the engine's draft unchanged."""

    async def simulate(self, request: SimRequest, check: CheckFn) -> SimResponse:
        """The draft, no patches."""
        return SimResponse(result=dict(request.draft), source="deterministic")


class SimCache:
    """Content-addressed store of simulator answers: a SQLite file or a directory of JSON files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path.suffix in (".db", ".sqlite", ".sqlite3"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                             "request TEXT NOT NULL)")
        else:
            self.path.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for `key`, or None."""
        with self._lock:
            if self._db is not None:
                got = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
                return None if got is None else json.loads(got[0])
            p = self.path / f"{key}.json"
            return json.loads(p.read_text(encoding="utf-8"))["value"] if p.exists() else None

    def put(self, key: str, value: dict[str, Any], request: dict[str, Any]) -> None:
        """Store `value` under `key` (the request is kept beside it for inspection)."""
        with self._lock:
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO answers (key, value, request) VALUES (?, ?, ?)",
                                 (key, canonical_json(value), canonical_json(request)))
                return
            tmp = self.path / f"{key}.json.tmp"
            tmp.write_text(canonical_json({"value": value, "request": request}), encoding="utf-8")
            tmp.replace(self.path / f"{key}.json")

    def __len__(self) -> int:
        with self._lock:
            if self._db is not None:
                return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
            return sum(1 for _ in self.path.glob("*.json"))

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None


def answer_schema(request: SimRequest) -> dict[str, Any]:
    """The JSON Schema the LLM's answer must match."""
    return {
        "type": "object",
        "properties": {
            "result": request.tool.output_schema,
            "patches": {"type": "array", "items": {
                "type": "object", "properties": {"table": {"type": "string"}, "key": {},
                                                 "set": {"type": "object"}},
                "required": ["table", "key", "set"], "additionalProperties": False}},
        },
        "required": ["result"],
        "additionalProperties": False,
    }


def render_prompt(request: SimRequest, problems: list[str]) -> str:
    """The user prompt for one try (problems of the previous try appended)."""
    tool = request.tool
    js = canonical_json
    return PROMPT_TEMPLATE.format(
        name=tool.name, title=tool.title, description=tool.description, usage=tool.usage,
        output_schema=js(tool.output_schema),
        errors=js([{"code": e.code, "status": e.status, "message": f"{e.title}: {e.guidance}"} for e in tool.errors]),
        examples=js([{"arguments": e.arguments, "result": e.result} for e in tool.examples[:3]]),
        arguments=js(request.arguments), now=request.now, rows=js(request.rows[:10]),
        recent=js(request.recent_calls), fixed=js(request.fixed), free=js(request.free_keys),
        writable=js(request.writable),
        problems=("Your previous answer was refused: " + "; ".join(problems) + "\n") if problems else "",
    )


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def parse_answer(text: str) -> tuple[dict[str, Any], list[Patch]]:
    """Parse the LLM's text into (result, patches); raises ValueError with a reason."""
    m = _FENCE.match(text)
    body = m.group(1) if m else text
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("result"), dict):
        raise ValueError("expected an object with a 'result' object")
    extra = set(data) - {"result", "patches"}
    if extra:
        raise ValueError(f"unexpected keys {sorted(extra)}")
    raw = data.get("patches") or []
    if not isinstance(raw, list):
        raise ValueError("'patches' must be a list")
    try:
        patches = [Patch.model_validate(p) for p in raw]
    except ValidationError as exc:
        raise ValueError(f"bad patch: {exc.errors()[0]['msg']}") from None
    return data["result"], patches


class LLMSimulator:
    """Asks an LLM for the free output keys (and optional patches), with retries, fallback and a cache."""

    def __init__(self, llm: LLM | None, *, provider: str = "mcp-sampling", model: str = "client",
                 sampling: dict[str, Any] | None = None, max_tries: int = 3, cache: SimCache | None = None,
                 mode: CacheMode = "off"):
        if mode != "off" and cache is None:
            raise ValueError(f"cache mode {mode!r} needs a cache")
        if llm is None and mode != "replay":
            raise ValueError("an LLM callable is needed unless replaying")
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.llm, self.provider, self.model = llm, provider, model
        self.sampling = dict(sampling or {"temperature": 0})
        self.max_tries, self.cache, self.mode = max_tries, cache, mode
        self.live_calls = 0

    def cache_key(self, request: SimRequest) -> str:
        """sha256 of the canonical request description (see module docstring)."""
        return sha256_hex({
            "cache_version": CACHE_VERSION, "provider": self.provider, "model": self.model,
            "sampling": self.sampling, "template_hash": TEMPLATE_HASH,
            "spec_hash": sha256_hex([request.toolset_id, request.tool.model_dump(mode="json")]),
            "tool": request.tool.name,
            "arguments": request.arguments, "state_hash": request.state_hash,
        })

    async def simulate(self, request: SimRequest, check: CheckFn) -> SimResponse:
        """Cache, then the LLM with retries, then the deterministic draft."""
        key = self.cache_key(request) if self.mode != "off" else ""
        if self.mode != "off":
            assert self.cache is not None
            hit = self.cache.get(key)
            if hit is not None:
                if hit.get("fallback"):
                    return SimResponse(result=dict(request.draft), source="fallback", tries=int(hit.get("tries", 0)),
                                       refusals=list(hit.get("refusals", [])))
                patches = [Patch.model_validate(p) for p in hit.get("patches", [])]
                problems = check(hit["result"], patches)
                if problems:
                    raise SimulationError(f"cached answer {key[:12]} is no longer valid: {problems[0]}")
                return SimResponse(result=hit["result"], patches=patches, source="cache", tries=0)
            if self.mode == "replay":
                raise ReplayMiss(f"replay miss for {request.tool.name} (key {key[:16]}): the cache has no answer "
                                 "for this call in this state; record it first")
        response = await self._ask(request, check)
        if self.mode == "record":
            assert self.cache is not None
            value: dict[str, Any] = ({"fallback": True, "tries": response.tries, "refusals": response.refusals}
                                     if response.source == "fallback" else
                                     {"result": response.result,
                                      "patches": [p.model_dump(mode="json") for p in response.patches]})
            self.cache.put(key, value, {"tool": request.tool.name, "arguments": request.arguments,
                                        "state_hash": request.state_hash})
        return response

    async def _ask(self, request: SimRequest, check: CheckFn) -> SimResponse:
        assert self.llm is not None
        schema = answer_schema(request)
        refusals: list[str] = []
        problems: list[str] = []
        for attempt in range(1, self.max_tries + 1):
            self.live_calls += 1
            text = await self.llm(SYSTEM_TEMPLATE, render_prompt(request, problems), schema)
            try:
                result, patches = parse_answer(text)
            except ValueError as exc:
                problems = [str(exc)]
            else:
                merged = {**result, **request.fixed}
                problems = check(merged, patches)
                if not problems:
                    return SimResponse(result=merged, patches=patches, source="llm", tries=attempt,
                                       refusals=refusals)
            refusals.append(f"try {attempt}: " + "; ".join(problems))
        return SimResponse(result=dict(request.draft), source="fallback", tries=self.max_tries, refusals=refusals)
