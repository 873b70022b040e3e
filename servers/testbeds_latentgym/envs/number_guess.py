"""number_guess: find a target in 1..100 with at most 8 guesses answered higher/lower/correct.

θ = the target (1..100, stored 0-based). Each guess is answered "higher" (the target is higher than the
guess), "lower" (the target is lower than the guess) or "correct", which ends the task. Reward
1 − (t−1)/8 if the target is found at guess t, 0 if 8 guesses miss it. A number already guessed in the task
is an invalid action (its answer is already on the record; rejecting it costs no turn and is counted), so
the random policy draws uniformly from the untried numbers and finds the target at each guess with chance
1/100: exactly .045 in expectation.

Latents (the target is uniform over the numbers a rule allows, so nested rules are told apart by the size
principle): a contiguous range of width 10 (91 starts) or 20 (81); a residue class mod 5, 7 or 10 (22
classes); a fixed set of 2 (4,950) or 3 (161,700) numbers; none (uniform on 1..100): 166,845 hypotheses.

The answers only ever narrow the target to an interval, so the in-task posterior is p0 restricted to it.
The planner is the exact DP W(i,j,d) = max_g[p_g·d/T + W(i,g−1,d−1) + W(g+1,j,d−1)] over the support of
p0 (d = guesses left, so a hit now pays d/T = 1 − (t−1)/T); a zero-mass guess is strictly dominated by the
nearest support point beside it, so restricting to the support is exact. One table per p0 serves the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from itertools import combinations
from typing import Any

import numpy as np

from ..latent import NONE, P_NONE, HintModel, Hypothesis, SparseLaw
from .base import Action, InvalidAction, LatentEnv, Result, TaskView, clip_repr, pick_best
from .plans import PlanCache

LOW, HIGH = 1, 100
N = HIGH - LOW + 1
T = 8  # guesses per task
WIDTHS = (10, 20)
MODULI = (5, 7, 10)
SET_SIZES = (2, 3)
RESULTS = ("higher", "lower", "correct")
# Each distinct task-start prior gets its own DP table (T × 101 × 101 floats, ~650 kB).
CACHE_SIZE = 32
COLUMN_FORM_MIN = 1000  # blocks with this many hypotheses get the fast column form of the law


def guess_reward(t: int) -> float:
    """1 − (t−1)/T for a hit at guess t (1-based), computed as (T − t + 1)/T: exact in binary."""
    return (T - t + 1) / T


@dataclass(frozen=True)
class _Block:
    """Consecutive hypotheses sharing a family and sub-family; `supports` holds each one's allowed numbers
    (1-based), as rows of a 2-D array or as a list of arrays of different lengths."""

    family: str
    subfamily: str
    kind: str  # the rule type used for type-level entropy
    supports: np.ndarray | list[np.ndarray]

    @property
    def size(self) -> int:
        return len(self.supports)

    @property
    def lengths(self) -> np.ndarray:
        if isinstance(self.supports, np.ndarray):
            return np.full(len(self.supports), self.supports.shape[1])
        return np.array([len(s) for s in self.supports])

    @property
    def flat(self) -> np.ndarray:
        if isinstance(self.supports, np.ndarray):
            return self.supports.ravel()
        return np.concatenate(self.supports)


class _BlockLaw(SparseLaw):
    """P(θ|z) as a `SparseLaw` (same COO arrays) whose products run block by block.

    The generic `lik`/`mix` scatter ~5·10^5 support entries through `np.bincount`; here a large block whose
    hypotheses all allow k numbers (the sets) is a (count × k) table, so `lik` is k gathers and `mix` k
    bincounts without the row bookkeeping. The small blocks (ranges, residues, none) keep the generic form.
    """

    def __init__(self, blocks: list[_Block]) -> None:
        lengths = np.concatenate([b.lengths for b in blocks])
        cols = np.concatenate([b.flat for b in blocks]) - LOW
        rows = np.repeat(np.arange(len(lengths)), lengths)
        super().__init__(rows, cols, np.repeat(1.0 / lengths, lengths), len(lengths), N)
        self.parts: list[tuple[slice, list[np.ndarray] | None, tuple[np.ndarray, ...] | None]] = []
        offset = 0
        for b in blocks:
            where = slice(offset, offset + b.size)
            if isinstance(b.supports, np.ndarray) and b.size >= COLUMN_FORM_MIN:
                table = b.supports - LOW
                columns = [np.ascontiguousarray(table[:, c]) for c in range(table.shape[1])]
                self.parts.append((where, columns, None))
            else:
                # The generic COO form, with rows local to the block.
                local = np.repeat(np.arange(b.size), b.lengths)
                self.parts.append((where, None, (local, b.flat - LOW, 1.0 / b.lengths[local])))
            offset += b.size
        self.offsets = np.array([where.start for where, _, _ in self.parts])

    def lik(self, theta_values: np.ndarray) -> np.ndarray:
        out = np.empty(self.n_z)
        for where, columns, ragged in self.parts:
            if columns is not None:
                acc = theta_values[columns[0]] + theta_values[columns[1]]
                for col in columns[2:]:
                    acc += theta_values[col]
                out[where] = acc * (1.0 / len(columns))
            else:
                local, cols, vals = ragged
                out[where] = np.bincount(local, weights=vals * theta_values[cols],
                                         minlength=where.stop - where.start)
        return out

    def mix(self, weights: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_theta)
        for where, columns, ragged in self.parts:
            if columns is not None:
                w = weights[where] * (1.0 / len(columns))
                for col in columns:
                    out += np.bincount(col, weights=w, minlength=self.n_theta)
            else:
                local, cols, vals = ragged
                out += np.bincount(cols, weights=vals * weights[where][local], minlength=self.n_theta)
        return out

    def row(self, z: int) -> np.ndarray:
        where, columns, ragged = self.parts[int(np.searchsorted(self.offsets, z, "right")) - 1]
        out = np.zeros(self.n_theta)
        i = z - where.start
        if columns is not None:
            out[[col[i] for col in columns]] = 1.0 / len(columns)
        else:
            local, cols, vals = ragged
            out[cols[local == i]] = vals[local == i]
        return out


@cache
def _triangle(n: int) -> tuple[np.ndarray, ...]:
    """Every split (a, g, b) with a ≤ g < b of the half-open support intervals [a, b), grouped by (a, b).

    Returns g, the flat indices of [a, g) and [g+1, b) in an (n+1)×(n+1) table, the start of each group
    (for `np.maximum.reduceat`) and the flat index of each group's (a, b).
    """
    a, b = np.triu_indices(n + 1, k=1)
    lengths = b - a
    starts = np.cumsum(lengths) - lengths
    left_end = np.repeat(a, lengths)
    g = left_end + np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    right_end = np.repeat(b, lengths)
    return g, left_end * (n + 1) + g, (g + 1) * (n + 1) + right_end, starts, a * (n + 1) + b


class _Plan:
    """The DP for one task-start prior, over its support s (sorted θ with p0 > 0).

    `W[d][a, b]` is the best expected reward (unnormalised: mass-weighted) from the support points
    s[a..b−1] with d guesses left; the empty intervals (a ≥ b) are 0.
    """

    def __init__(self, p0: np.ndarray) -> None:
        p = p0 / p0.sum()
        self.p = p
        self.support = np.flatnonzero(p > 0)
        n = len(self.support)
        g, left, right, starts, out = _triangle(n)
        mass = p[self.support][g]
        self.W = np.zeros((T, (n + 1) * (n + 1)))
        for d in range(1, T):
            prev = self.W[d - 1]
            # Hit g now (worth d/T), else go on in [a, g) or [g+1, b) with one guess fewer.
            split = mass * (d / T)
            split += prev[left]
            split += prev[right]
            self.W[d][out] = np.maximum.reduceat(split, starts)
        self.W = self.W.reshape(T, n + 1, n + 1)

    def values(self, lo: int, hi: int, d: int, guesses: np.ndarray) -> np.ndarray:
        """Expected rest-of-task reward of each guess (θ index) with d ≥ 1 guesses left, the target in
        [lo, hi] (θ indices) and the planner continuing."""
        s = self.support
        a = int(np.searchsorted(s, lo, "left"))
        b = int(np.searchsorted(s, hi, "right"))
        total = self.p[lo:hi + 1].sum()
        if total <= 0:
            raise ValueError("number_guess: the visible steps have zero probability under p0")
        prev = self.W[d - 1]
        left = np.searchsorted(s, guesses, "left")
        right = np.searchsorted(s, guesses, "right")
        inside = (guesses >= lo) & (guesses <= hi)
        # A guess outside [lo, hi] only spends a turn. Clipping keeps its (discarded) indices in range.
        hit = self.p[guesses] * (d / T) + prev[a, np.clip(left, a, b)] + prev[np.clip(right, a, b), b]
        return np.where(inside, hit, prev[a, b]) / total


class NumberGuess(LatentEnv):
    name = "number_guess"
    gym_id = "testbeds/NumberGuess-v0"
    summary = "Guess a number in 1-100 in at most 8 guesses, told higher or lower after each."
    rules = (f"Each task hides a target number between {LOW} and {HIGH}. You have {T} guesses. "
             "Each guess is answered \"higher\" (the target is higher than your guess), \"lower\" "
             "(the target is lower than your guess) or \"correct\", which ends the task; after the 8th "
             "guess the task ends anyway. A number you already guessed in the task may not be guessed "
             "again. Reward: 1 − (t−1)/8 if you find the target at guess t (1 at the first guess, 0.125 "
             "at the eighth), 0 if you do not find it.")
    actions_doc = ('{"type": "guess", "number": 42} guesses 42 (an integer from 1 to 100 not yet guessed '
                   'in this task). The answer looks like {"result": "lower", "turns_left": 6}: "higher" or '
                   '"lower" says where the target is relative to your guess, "correct" ends the task; '
                   "turns_left is the number of guesses you have left.")
    families = ("range", "residue", "set")
    family_doc = ("0.2: no pattern (each target is uniform on 1-100); 0.8/3 each: every target lies in "
                  "one fixed range of consecutive numbers, of width 10 or 20 (each width equally likely, "
                  "then each position); every target has one fixed remainder modulo 5, 7 or 10 (each "
                  "modulus equally likely, then each remainder); every target is one of a fixed set of 2 "
                  "or 3 numbers (each size equally likely, then each set). Under a rule, each task's "
                  "target is uniform over the numbers the rule allows.")
    statement_text = {
        "range": "every target lies in one fixed range of 10 or 20 consecutive numbers",
        "residue": "every target has the same remainder modulo 5, 7 or 10",
        "set": "every target is one of a fixed set of 2 or 3 numbers",
    }
    max_steps = T
    n_theta = N

    def __init__(self) -> None:
        self._plans: PlanCache[_Plan] = PlanCache(CACHE_SIZE)

    # -- latent space ---------------------------------------------------------------------------------
    # 166,845 hypotheses are too many for per-object Python work on the hot paths, so the prior, the hint
    # model and the type index are built from the block layout below (same values as the generic builders;
    # a test checks that), and the Hypothesis objects are made only when someone asks for them (~1 s).
    @cached_property
    def _blocks(self) -> list[_Block]:
        """The hypotheses in their fixed order: ranges, residues, sets, none."""
        values = np.arange(LOW, HIGH + 1)
        blocks = [_Block("range", f"width {w}", "range", np.arange(LOW, HIGH - w + 2)[:, None] + np.arange(w))
                  for w in WIDTHS]
        blocks += [_Block("residue", f"mod {m}", "residue", [values[values % m == r] for r in range(m)])
                   for m in MODULI]
        blocks += [_Block("set", f"{k}-set", f"{k}-set",
                          np.fromiter((x for c in combinations(range(LOW, HIGH + 1), k) for x in c),
                                      dtype=np.int64).reshape(-1, k))
                   for k in SET_SIZES]
        blocks.append(_Block("none", "", "none", values[None, :]))
        return blocks

    def build_hypotheses(self) -> list[Hypothesis]:
        out: list[Hypothesis] = []
        for block in self._blocks:
            if block.family == "range":
                out.extend(Hypothesis(f"range {r[0]}-{r[-1]}", "range", block.subfamily, (r[0], r[-1]))
                           for r in block.supports.tolist())
            elif block.family == "residue":
                m = len(block.supports)
                out.extend(Hypothesis(f"residue {r} mod {m}", "residue", block.subfamily, (m, r))
                           for r in range(m))
            elif block.family == "set":
                out.extend(Hypothesis("set " + ",".join(map(str, c)), "set", block.subfamily, c)
                           for c in map(tuple, block.supports.tolist()))
            else:
                out.append(Hypothesis("none", "none"))
        return out

    @cached_property
    def prior(self) -> np.ndarray:
        """`build_prior`'s rule, block by block: none 0.2; 0.8 split by family, sub-family, then uniformly."""
        structured = [b for b in self._blocks if b.family != NONE]
        n_families = len({b.family for b in structured})
        parts = []
        for block in self._blocks:
            if block.family == NONE:
                parts.append(np.full(block.size, P_NONE))
            else:
                n_subs = sum(1 for b in structured if b.family == block.family)
                parts.append(np.full(block.size, (1.0 - P_NONE) / n_families / n_subs / block.size))
        return np.concatenate(parts)

    @cached_property
    def hint_model(self) -> HintModel:
        """`HintModel.by_family`: statements are the families plus "none", true iff z is of that family."""
        statements = [*self.families, NONE]
        family = np.repeat([statements.index(b.family) for b in self._blocks], [b.size for b in self._blocks])
        return HintModel(statements=statements, truth=family[:, None] == np.arange(len(statements))[None, :])

    @cached_property
    def family_index(self) -> tuple[list[str], np.ndarray]:
        """Rule types for type-level entropy: range, residue, 2-set, 3-set, none. Sets of 2 and of 3 count as
        separate types (the design's H(type) values, e.g. 2.26 bits under the prior, are computed so)."""
        names = list(dict.fromkeys(b.kind for b in self._blocks))
        index = np.repeat([names.index(b.kind) for b in self._blocks], [b.size for b in self._blocks])
        return names, index

    @cache
    def _law(self) -> SparseLaw:
        return _BlockLaw(self._blocks)

    def law(self, k: int) -> SparseLaw:
        return self._law()

    def theta_label(self, theta: int) -> Any:
        return theta + LOW

    def reveal_mask(self, view: TaskView, shown: Any) -> np.ndarray:
        return (np.arange(LOW, HIGH + 1) == shown).astype(float)

    # -- one task -------------------------------------------------------------------------------------
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        """No nuisance randomness: the answers are a function of the target and the guesses."""
        return None

    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        return {"low": LOW, "high": HIGH, "max_guesses": T}

    @staticmethod
    def interval(view: TaskView) -> tuple[int, int]:
        """The 1-based range [low, high] of targets consistent with the answers so far."""
        lo, hi = LOW, HIGH
        for action, result in view.steps:
            g = action["number"]
            if result["result"] == "higher":
                lo = max(lo, g + 1)
            elif result["result"] == "lower":
                hi = min(hi, g - 1)
            else:
                lo, hi = g, g
        return lo, hi

    @staticmethod
    def guessed(view: TaskView) -> set[int]:
        return {a["number"] for a, _ in view.steps}

    def parse_action(self, view: TaskView, raw: Any) -> Action:
        allowed = (f'number_guess actions are {{"type": "guess", "number": <integer {LOW}-{HIGH}>}}, '
                   'e.g. {"type": "guess", "number": 42}')
        if not isinstance(raw, dict) or set(raw) != {"type", "number"}:
            raise InvalidAction(f"{allowed}; got {clip_repr(raw)}")
        kind, number = raw["type"], raw["number"]
        if not (isinstance(kind, str) and kind.strip().lower() == "guess"):
            raise InvalidAction(f"{allowed}; got {clip_repr(raw)}")
        if isinstance(number, str) and number.strip().lstrip("+-").isdigit():
            number = int(number.strip())
        elif isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not LOW <= number <= HIGH:
            raise InvalidAction(f"{allowed}; got {clip_repr(raw)}")
        if number in self.guessed(view):
            raise InvalidAction(f"you already guessed {number} in this task (its answer is in the task's "
                                "record); guess a number you have not tried")
        return {"type": "guess", "number": number}

    def _result(self, target: int, view: TaskView, number: int) -> Result:
        answer = "correct" if number == target else ("higher" if target > number else "lower")
        return {"result": answer, "turns_left": T - len(view.steps) - 1}

    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        result = self._result(theta + LOW, view, action["number"])
        t = len(view.steps) + 1
        if result["result"] == "correct":
            return result, True, guess_reward(t)
        return result, t == T, 0.0

    def observation(self, view: TaskView) -> dict[str, Any]:
        lo, hi = self.interval(view)
        return {"turns_left": T - len(view.steps), "max_guesses": T,
                "guesses": [{"number": a["number"], "result": r["result"]} for a, r in view.steps],
                "target_at_least": lo, "target_at_most": hi}

    def legal_actions(self, view: TaskView) -> list[Action]:
        """Guesses of the untried numbers, in increasing order."""
        tried = self.guessed(view)
        return [{"type": "guess", "number": g} for g in range(LOW, HIGH + 1) if g not in tried]

    # -- likelihoods ------------------------------------------------------------------------------------
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        targets = np.arange(LOW, HIGH + 1)
        g = action["number"]
        if set(result) != {"result", "turns_left"} or result["turns_left"] != T - len(view.steps) - 1:
            return np.zeros(N)
        answer = result["result"]
        if answer == "correct":
            return (targets == g).astype(float)
        if answer == "higher":
            return (targets > g).astype(float)
        if answer == "lower":
            return (targets < g).astype(float)
        return np.zeros(N)

    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        left = T - len(view.steps) - 1
        return [{"result": r, "turns_left": left} for r in RESULTS]

    def reward_vector(self, view: TaskView) -> np.ndarray:
        """Under θ the task ends at the first guess equal to θ; a θ never guessed earns 0."""
        out = np.zeros(N)
        for t, (action, _) in reversed(list(enumerate(view.steps, start=1))):
            out[action["number"] - LOW] = guess_reward(t)
        return out

    # -- planner -------------------------------------------------------------------------------------------
    def plan(self, p0: np.ndarray) -> _Plan:
        """The DP tables for task-start prior p0, from a small LRU keyed by p0's bytes."""
        return self._plans.get(p0, _Plan)

    def _scored(self, p0: np.ndarray, view: TaskView, actions: list[Action]) -> list[tuple[Action, float]]:
        d = T - len(view.steps)
        if d <= 0 or (view.steps and view.steps[-1][1]["result"] == "correct"):
            raise ValueError("number_guess: the task is over; no guess is left to value")
        lo, hi = self.interval(view)
        guesses = np.array([a["number"] - LOW for a in actions], dtype=np.int64)
        values = self.plan(p0).values(lo - LOW, hi - LOW, d, guesses)
        return [(a, float(v)) for a, v in zip(actions, values)]

    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        return self._scored(p0, view, [action])[0][1]

    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        return pick_best(self._scored(p0, view, self.legal_actions(view)))
