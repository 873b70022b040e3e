"""Where toolsets come from: the procedural generator, the SynthTools corpus, or a spec file; and their tasks.

A toolset is named by a reference string:

- `gen:<field>:<seed>` (or `gen:<field>:<seed>:<n_tools>`): generated offline by `generator.generate_toolset`;
  the generated toolset's own id `generated.<field>.<seed>[.n<k>]` is accepted too;
- `<field>.<N>`: a toolset of the SynthTools corpus (needs a corpus root: `--corpus` or
  `TESTBEDS_SYNTHTOOLS_CORPUS`), imported with the server's own tool names reserved and its curated overlay;
- a path to a `.json` file holding one `Toolset` (validated as it loads);
- `llm:<sha8>` (or the toolset's id `llm.<field>.<sha8>`): a toolset an LLM wrote (`generate_toolset`), validated
  by `llm_generation` and registered with `Catalog.register_llm`; kept in process and, with a state directory,
  as `<state_dir>/llm_toolsets/<sha8>.json` (so a restarted server with the same directory still loads it).

Loaded toolsets and generated task lists are cached per process: both are pure functions of their inputs,
so clients sharing the process can never see different contents under one reference.

This module must not import `mcp`.
"""

from __future__ import annotations

import difflib
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from testbeds_serving.errors import InvalidArgument, NotFound

from .curated import curate
from .curated_tasks import CuratedTasks, curated_files, load_curated_tasks
from .generator import generate_toolset, list_fields
from .importer import import_toolset as import_corpus_toolset
from .importer import list_corpus
from .names import slug
from .spec import Toolset, sha256_hex
from .tasks import TIERS, Task, generate_tasks

Source = Literal["generated", "corpus", "llm"]

_GEN = re.compile(r"^gen:(?P<field>[a-z][a-z0-9_]*):(?P<seed>\d{1,18})(?::(?P<n>\d{1,3}))?$")
_GEN_ID = re.compile(r"^generated\.(?P<field>[a-z][a-z0-9_]*)\.(?P<seed>\d{1,18})(?:\.n(?P<n>\d{1,3}))?$")
_CORPUS_ID = re.compile(r"^[a-z0-9_]+\.\d+$")
_LLM = re.compile(r"^(?:llm:|llm\.[a-z0-9_]+\.)(?P<sha>[0-9a-f]{8})$")
LLM_DIR = "llm_toolsets"
_CACHE_SIZE = 64

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ToolsetSummary(BaseModel):
    """One entry of a toolset listing."""

    ref: str = Field(description="Pass this to load_toolset / start_task as `toolset`.")
    source: Source
    field: str
    n_tools: int | None = Field(None, description="Number of tools (corpus); generated toolsets vary by seed.")


class ToolsetPage(BaseModel):
    """A page of the toolset listing."""

    source: Source
    total: int = Field(description="Entries matching the filter.")
    offset: int
    items: list[ToolsetSummary]
    next_offset: int | None = Field(None, description="Offset of the next page, or null at the end.")
    note: str = ""


class _Lru(OrderedDict[K, V]):
    """A small thread-safe LRU memo."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.guard = threading.Lock()

    def get_or(self, key: K, make: Callable[[], V]) -> V:
        with self.guard:
            if key in self:
                self.move_to_end(key)
                return self[key]
        value = make()  # outside the lock: generation may take seconds
        with self.guard:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


_TASKS: _Lru[tuple[str, int, int], list[Task]] = _Lru(_CACHE_SIZE)
_CURATED: _Lru[str, CuratedTasks] = _Lru(_CACHE_SIZE)
# spec hash -> corpus root, for corpus toolsets with curated task files (set when a Catalog loads one), so the
# task classmethods can serve those tasks without a corpus argument.
_CURATED_ROOTS: dict[str, Path] = {}
_ROOTS_GUARD = threading.Lock()


def _field_error(field: str) -> InvalidArgument:
    fields = list_fields()
    close = difflib.get_close_matches(field, fields, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return InvalidArgument(f"unknown field {field!r}.{hint} list_toolsets(source='generated') lists the "
                           f"{len(fields)} fields")


class Catalog:
    """Resolves toolset references to `Toolset`s and toolsets to tasks.

    Args:
        corpus: root of the SynthTools corpus (the folder holding `tool_json/`), or None (generated and spec
            files only).
        reserved: names corpus tool names must avoid (the server's own tools).
        state_dir: where LLM-written toolsets are also kept (`<state_dir>/llm_toolsets/`), or None (in process
            only).
    """

    def __init__(self, corpus: Path | None = None, reserved: frozenset[str] = frozenset(),
                 state_dir: Path | None = None) -> None:
        self.corpus = Path(corpus) if corpus is not None else None
        self.reserved = reserved
        self.llm_dir = Path(state_dir) / LLM_DIR if state_dir is not None else None
        self._toolsets: _Lru[str, Toolset] = _Lru(_CACHE_SIZE)
        # Not an LRU: a registered LLM toolset exists nowhere else when there is no state directory.
        self._llm: dict[str, Toolset] = {}
        self._llm_guard = threading.Lock()

    # ------------------------------------------------------------------------------------------ listing

    def list_toolsets(self, source: Source = "generated", field: str | None = None, limit: int = 50,
                      offset: int = 0) -> ToolsetPage:
        """A page of generated fields (ref with seed 0; any seed works) or corpus toolsets, optionally one field."""
        if source == "generated":
            fields = list_fields()
            if field is not None and field not in fields:
                raise _field_error(field)
            chosen = [f for f in fields if field is None or f == field]
            items = [ToolsetSummary(ref=f"gen:{f}:0", source="generated", field=f) for f in chosen]
            note = ("Generated toolsets: gen:<field>:<seed> for any seed >= 0 gives another toolset of the field "
                    "(gen:<field>:<seed>:<n_tools> caps its size).")
        elif source == "llm":
            entries = self.llm_toolsets()
            items = [ToolsetSummary(ref=ref, source="llm", field=ts.field, n_tools=len(ts.tools))
                     for ref, ts in entries.items() if field is None or ts.field == field]
            note = "Toolsets written by an LLM with generate_toolset on this server (validated before they were kept)."
        else:
            if self.corpus is None:
                raise InvalidArgument("no SynthTools corpus is configured on this server (start it with --corpus "
                                      "PATH or TESTBEDS_SYNTHTOOLS_CORPUS); use source='generated'")
            entries = list_corpus(self.corpus)
            if field is not None:
                known = sorted({e.field for e in entries})
                if field not in known:
                    close = difflib.get_close_matches(field, known, n=3)
                    hint = f" Did you mean {', '.join(close)}?" if close else ""
                    raise InvalidArgument(f"the corpus has no field {field!r}.{hint}")
            items = [ToolsetSummary(ref=e.toolset_id, source="corpus", field=e.field, n_tools=len(e.stems))
                     for e in entries if field is None or e.field == field]
            note = "Corpus toolsets, by field and number."
        page = items[offset:offset + limit]
        nxt = offset + limit if offset + limit < len(items) else None
        return ToolsetPage(source=source, total=len(items), offset=offset, items=page, next_offset=nxt, note=note)

    # ------------------------------------------------------------------------------------------ loading

    def generated_ref(self, field: str | None, seed: int, n_tools: int | None = None) -> str:
        """The reference of a generated toolset (field None: the field the seed draws)."""
        if field is None:
            field = generate_toolset(None, seed).field
        return f"gen:{field}:{seed}" + (f":{n_tools}" if n_tools is not None else "")

    def load(self, ref: str) -> Toolset:
        """The toolset `ref` names (see the module docstring); raises `InvalidArgument` / `NotFound`."""
        ref = ref.strip()
        return self._toolsets.get_or(self._key(ref), lambda: self._load(ref))

    def _key(self, ref: str) -> str:
        llm = _LLM.match(ref)
        if llm:
            return f"llm:{llm['sha']}"
        m = _GEN.match(ref) or _GEN_ID.match(ref)
        if m:
            return f"gen:{m['field']}:{int(m['seed'])}" + (f":{int(m['n'])}" if m["n"] else "")
        if ref.endswith(".json"):
            path = Path(ref).expanduser()
            try:
                stat = path.stat()
            except OSError:
                return "file:" + ref
            # Keyed on the file's identity and mtime: an edited spec is read again.
            return f"file:{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"
        return "corpus:" + ref

    def _load(self, ref: str) -> Toolset:
        llm = _LLM.match(ref)
        if llm:
            return self._load_llm(llm["sha"])
        m = _GEN.match(ref) or _GEN_ID.match(ref)
        if m:
            field, seed = m["field"], int(m["seed"])
            n_tools = int(m["n"]) if m["n"] else None
            if field not in list_fields():
                raise _field_error(field)
            if n_tools is not None and n_tools < 1:
                raise InvalidArgument("n_tools must be at least 1")
            return generate_toolset(field, seed, n_tools=n_tools)
        if ref.endswith(".json"):
            return self._load_file(Path(ref).expanduser())
        if _CORPUS_ID.match(ref):
            if self.corpus is None:
                raise InvalidArgument(f"{ref!r} looks like a corpus toolset, but no SynthTools corpus is configured "
                                      "(start the server with --corpus PATH or TESTBEDS_SYNTHTOOLS_CORPUS); "
                                      "generated toolsets (gen:<field>:<seed>) always work")
            try:
                toolset = import_corpus_toolset(self.corpus, ref, reserved=self.reserved)
            except KeyError:
                raise NotFound(f"the corpus has no toolset {ref!r}; list_toolsets(source='corpus') lists them") \
                    from None
            toolset = curate(toolset)
            if curated_files(self.corpus, toolset.id):
                with _ROOTS_GUARD:
                    _CURATED_ROOTS[toolset.spec_hash()] = self.corpus
            return toolset
        raise InvalidArgument(f"cannot read toolset reference {ref!r}: use gen:<field>:<seed> (generated), "
                              "<field>.<N> (corpus), llm:<sha8> (from generate_toolset) or a path ending in .json "
                              "(a toolset spec file)")

    # ------------------------------------------------------------------------------------------ LLM toolsets

    @staticmethod
    def llm_sha(toolset: Toolset) -> str:
        """The 8 hex digits naming an LLM toolset: its spec hash with the id left out (the id contains them)."""
        return sha256_hex(toolset.model_dump(mode="json", exclude={"id"}))[:8]

    @classmethod
    def llm_named(cls, toolset: Toolset) -> tuple[str, Toolset]:
        """An LLM toolset's ref `llm:<sha8>` and the toolset under its final id `llm.<field slug>.<sha8>`."""
        sha = cls.llm_sha(toolset)
        return f"llm:{sha}", toolset.model_copy(update={"id": f"llm.{slug(toolset.field, fallback='field')}.{sha}"})

    def register_llm(self, toolset: Toolset) -> tuple[str, Toolset]:
        """Keep a validated LLM toolset; returns its ref `llm:<sha8>` and the toolset under its id
        `llm.<field slug>.<sha8>`. Registering the same spec again gives the same ref and changes nothing."""
        ref, named = self.llm_named(toolset)
        sha = ref.removeprefix("llm:")
        with self._llm_guard:
            kept = self._llm.setdefault(sha, named)
        if self.llm_dir is not None:
            self.llm_dir.mkdir(parents=True, exist_ok=True)
            path = self.llm_dir / f"{sha}.json"
            if not path.exists():
                # Written whole then renamed, so a concurrent reader never sees half a spec.
                tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                tmp.write_text(kept.model_dump_json(), encoding="utf-8")
                tmp.replace(path)
        return ref, kept

    def llm_toolsets(self) -> dict[str, Toolset]:
        """Every registered LLM toolset (this process's and the state directory's), by ref."""
        found: dict[str, Toolset] = {}
        if self.llm_dir is not None and self.llm_dir.is_dir():
            for path in sorted(self.llm_dir.glob("*.json")):
                if re.fullmatch(r"[0-9a-f]{8}", path.stem):
                    try:
                        found[f"llm:{path.stem}"] = self._load_llm(path.stem)
                    except (InvalidArgument, NotFound):
                        continue  # an unreadable file is not listed (loading it names the problem)
        with self._llm_guard:
            found.update({f"llm:{sha}": ts for sha, ts in self._llm.items()})
        return dict(sorted(found.items()))

    def _load_llm(self, sha: str) -> Toolset:
        with self._llm_guard:
            if sha in self._llm:
                return self._llm[sha]
        if self.llm_dir is not None and (self.llm_dir / f"{sha}.json").exists():
            toolset = self._load_file(self.llm_dir / f"{sha}.json")
            with self._llm_guard:
                return self._llm.setdefault(sha, toolset)
        raise NotFound(f"no LLM toolset llm:{sha} on this server; generate_toolset makes one and "
                       "list_toolsets(source='llm') lists them")

    @staticmethod
    def _load_file(path: Path) -> Toolset:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no spec file at {str(path)!r}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"cannot read spec file {str(path)!r}: {type(exc).__name__}") from None
        try:
            return Toolset.model_validate_json(text)
        except ValidationError as exc:
            # Locations and messages only: the file's values stay on the server.
            problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]]
            more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
            raise InvalidArgument(f"spec file {path.name!r} is not a valid toolset: {'; '.join(problems)}{more}") \
                from None

    # ------------------------------------------------------------------------------------------ tasks

    @staticmethod
    def tasks(toolset: Toolset, seed: int, per_tier: int = 2) -> list[Task]:
        """The toolset's tasks for `seed` (cached per process; generation runs the plans, ~1-4 s)."""
        key = (toolset.spec_hash(), seed, per_tier)
        return _TASKS.get_or(key, lambda: generate_tasks(toolset, seed, per_tier=per_tier))

    @staticmethod
    def curated(toolset: Toolset) -> CuratedTasks | None:
        """SynthTools' curated tasks of a corpus toolset loaded by a Catalog with a corpus (None when it has
        none), with the report of what was kept, made infeasible or dropped. Cached per process."""
        key = toolset.spec_hash()
        with _ROOTS_GUARD:
            root = _CURATED_ROOTS.get(key)
        if root is None:
            return None
        return _CURATED.get_or(key, lambda: load_curated_tasks(root, toolset))

    @classmethod
    def tier_tasks(cls, toolset: Toolset, tier: str, seed: int, per_tier: int = 2) -> list[Task]:
        """The tier's tasks, feasible and infeasible, in an order that does not reveal which is which: a corpus
        toolset's curated tasks first (fixed, whatever the seed), then the generated ones."""
        if tier not in TIERS:
            raise InvalidArgument(f"unknown tier {tier!r}; use one of {', '.join(TIERS)}")
        curated = cls.curated(toolset)
        first = [t for t in (curated.tasks if curated else []) if t.tier == tier]
        tasks = [t for t in cls.tasks(toolset, seed, per_tier) if t.tier == tier]
        return [*first, *sorted(tasks, key=lambda t: sha256_hex(["order", t.id]))]

    @classmethod
    def pick_task(cls, toolset: Toolset, tier: str, index: int, seed: int, per_tier: int = 2) -> Task:
        """Task `index` of the tier (see `tier_tasks`); a clear error when there is none."""
        tasks = cls.tier_tasks(toolset, tier, seed, per_tier)
        if not tasks:
            raise NotFound(f"toolset {toolset.id} has no {tier} task for seed {seed} (its workflows do not reach "
                           "that tier); try another tier or toolset")
        if not 0 <= index < len(tasks):
            raise InvalidArgument(f"index {index} is out of range: toolset {toolset.id} has {len(tasks)} {tier} "
                                  f"tasks for seed {seed} (index 0..{len(tasks) - 1})")
        return tasks[index]
