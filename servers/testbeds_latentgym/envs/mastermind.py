"""mastermind: crack a code of 4 distinct colours out of 6; z is a pattern every code of the sequence shares.

θ = the code's index (0..359) in lexicographic order of colour indices (COLOURS order). A guess is 4 distinct
colours; the answer gives black = right colour in the right place and white = |colours(g) ∩ colours(c)| −
black. Eight guesses; reward 1 − (t−1)/8 if the code is cracked at guess t, 0 otherwise.

Latents, each uniform over its code set C_z (the size principle handles nesting): `shared_colours` (3 colours
every code contains: 20 sets × 72 codes; or the 4 colours every code is made of: 15 × 24) and
`fixed_positions` (one position with a fixed colour: 24 × 60; or two: 180 × 12), plus `none` (uniform over
360). Results are 0/1 functions of θ, so L_k(z) = |C_z ∩ consistent| / |C_z| (times the feedback factor).

Planner (declared approximation, not the exact optimum): with at most 2 candidates (θ of positive posterior)
or on the last turn, play the MAP code; otherwise play the guess, consistent or not, that maximises the
entropy of the peg outcome under the in-task posterior, ties by P(correct), then by code order.

Q_ref is exact for that planner: `q_value` enumerates the planner's outcome tree. A node is determined by the
set of candidates and the turn (the in-task posterior is p0 restricted to the candidates), so trees are
memoised per p0 (small LRU keyed by p0's bytes) and per (candidate set, turn). Each node costs one
360 × |candidates| outcome histogram; the levels of a tree partition the candidates, so a whole tree costs
about depth × 360 × 360 operations plus per-node overhead. A tree has ~370-390 nodes, most of them leaves
or pairs valued in closed form; measured at ~10-40 ms of CPU. A 10-task bayes sequence plus
`metrics.evaluate` takes ~0.25 s of CPU (one tree per task-start belief, shared by the policy and the
metrics through the cache).

Since the planner is not optimal, another action can have a higher Q_ref than the planner's, so G_t can be
negative for non-planner actions. The bayes policy has G = 0: it plays `best_action`, whose value is the
same memoised number `q_value` returns for that action.
"""

from __future__ import annotations

from functools import cached_property
from itertools import combinations, permutations
from typing import Any

import numpy as np

from ..latent import Hypothesis, SparseLaw
from .base import TIE, Action, InvalidAction, LatentEnv, Result, TaskView, clip_repr
from .plans import PlanCache

COLOURS = ("red", "blue", "green", "yellow", "orange", "purple")
LENGTH = 4
MAX_GUESSES = 8
CODES: tuple[tuple[int, ...], ...] = tuple(permutations(range(len(COLOURS)), LENGTH))  # lexicographic
N_CODES = len(CODES)  # 360
LABELS: tuple[tuple[str, ...], ...] = tuple(tuple(COLOURS[c] for c in code) for code in CODES)
LABEL_INDEX = {label: i for i, label in enumerate(LABELS)}
# Every (black, white) pair two codes can give: 4 + 4 colours out of 6 share 2..4 colours, and 3 black
# forces 4 shared colours, hence 4 black.
OUTCOMES: tuple[tuple[int, int], ...] = ((0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1),
                                         (2, 2), (3, 0), (4, 0))
OUTCOME_INDEX = {o: i for i, o in enumerate(OUTCOMES)}
WIN = OUTCOME_INDEX[(LENGTH, 0)]
N_OUTCOMES = len(OUTCOMES)
# p0 trees kept: a sequence's policy run and its metrics each use one tree per task, plus no_transfer's.
TREE_CACHE = 32


def code_label(theta: int) -> list[str]:
    """The colour names of code θ, e.g. ["red", "blue", "green", "yellow"] for θ = 0."""
    return list(LABELS[theta])


def peg_table() -> np.ndarray:
    """peg[g, c] = index in OUTCOMES of the answer to guess g when the code is c (360 × 360, int8)."""
    codes = np.array(CODES)
    black = (codes[:, None, :] == codes[None, :, :]).sum(axis=2)
    has = np.zeros((N_CODES, len(COLOURS)), dtype=np.int64)
    np.put_along_axis(has, codes, 1, axis=1)
    white = has @ has.T - black
    lookup = np.full((LENGTH + 1, LENGTH + 1), -1, dtype=np.int64)
    for i, (b, w) in enumerate(OUTCOMES):
        lookup[b, w] = i
    table = lookup[black, white]
    if (table < 0).any():
        raise AssertionError("an answer outside OUTCOMES: the outcome list is wrong")
    return table.astype(np.int8)


def guess(theta: int) -> Action:
    """The guess action for code θ."""
    return {"type": "guess", "code": code_label(theta)}


class _Tree:
    """The planner's memoised outcome tree for one task-start prior p0.

    A node is (candidates, t): the sorted int16 code indices of positive posterior and the guesses used.
    The in-task posterior there is p0 restricted to the candidates, so the node fixes the planner's move.
    Posteriors are always recomputed from p0 (never passed down), so a node's numbers do not depend on
    the path or the order in which it was first reached.
    """

    def __init__(self, env: Mastermind, p0: np.ndarray) -> None:
        self.env = env
        self.p0 = p0
        self.values: dict[tuple[bytes, int], float] = {}
        self.q: dict[tuple[bytes, int, int], float] = {}
        self.moves: dict[tuple[bytes, int], int] = {}

    def posterior(self, idx: np.ndarray) -> np.ndarray:
        w = self.p0[idx]
        return w / w.sum()

    def move(self, idx: np.ndarray, t: int, w: np.ndarray | None = None) -> int:
        """The planner's guess with candidates `idx` after `t` guesses."""
        key = (idx.tobytes(), t)
        found = self.moves.get(key)
        if found is None:
            found = self.moves[key] = self.env.planner_move(idx, self.posterior(idx) if w is None else w, t)
        return found

    def value(self, idx: np.ndarray, t: int) -> float:
        if idx.size <= 2:
            # Most nodes are leaves or pairs: the MAP rule in closed form, with the same float operations
            # in the same order as `q_value` (the planner's move there is the first of the MAP ties).
            if idx.size == 1:
                return 1.0 - t / MAX_GUESSES
            w = self.posterior(idx)
            first = 0 if w[0] >= w[1] - TIE else 1
            total = float(w[first]) * (1.0 - t / MAX_GUESSES)
            if t + 1 < MAX_GUESSES:
                total += float(w[1 - first]) * (1.0 - (t + 1) / MAX_GUESSES)
            return total
        key = (idx.tobytes(), t)
        found = self.values.get(key)
        if found is None:
            w = self.posterior(idx)
            found = self.values[key] = self.q_value(idx, t, self.move(idx, t, w), w)
        return found

    def q_value(self, idx: np.ndarray, t: int, g: int, w: np.ndarray | None = None) -> float:
        """Expected rest-of-task reward of guessing g now (guess t+1), then following the planner."""
        key = (idx.tobytes(), t, g)
        found = self.q.get(key)
        if found is not None:
            return found
        if w is None:
            w = self.posterior(idx)
        answers = self.env.peg[g, idx]
        mass = np.bincount(answers, weights=w, minlength=N_OUTCOMES)
        total = float(mass[WIN]) * (1.0 - t / MAX_GUESSES)
        if t + 1 < MAX_GUESSES:
            # A stable sort groups the candidates by answer and keeps each group sorted (a canonical key).
            grouped = idx[np.argsort(answers, kind="stable")]
            ends = np.cumsum(np.bincount(answers, minlength=N_OUTCOMES)).tolist()
            start = 0
            for o, end in enumerate(ends):
                if end > start and o != WIN:
                    total += float(mass[o]) * self.value(grouped[start:end], t + 1)
                start = end
        self.q[key] = total
        return total


class Mastermind(LatentEnv):
    name = "mastermind"
    gym_id = "testbeds/Mastermind-v0"
    summary = "Code breaking: find a code of 4 distinct colours out of 6 in at most 8 guesses."
    rules = ("Each task hides a code of 4 distinct colours chosen from red, blue, green, yellow, orange and "
             "purple (order matters; 360 possible codes). Guess a code of 4 distinct colours; the answer "
             "gives black = colours in the right place and white = colours of the code that are in your "
             "guess but in the wrong place. You have 8 guesses. Reward: 1 − (t−1)/8 if you crack the code "
             "at guess t (1 at the first guess, 0.125 at the eighth), 0 if you do not crack it.")
    actions_doc = ('{"type": "guess", "code": ["red", "blue", "green", "yellow"]}: 4 distinct colours from '
                   'red, blue, green, yellow, orange, purple. Answer: {"black": 1, "white": 2, '
                   '"turns_left": 7}; black 4 cracks the code and ends the task.')
    families = ("shared_colours", "fixed_positions")
    family_doc = ("0.2: no pattern (every code equally likely); 0.4: the codes share colours: 0.2 for a set "
                  "of 3 colours that every code contains (20 possible sets), 0.2 for a set of 4 colours that "
                  "every code is made of (15 possible sets); 0.4: the codes share fixed positions: 0.2 for "
                  "one position that always holds the same colour (24 possibilities), 0.2 for two such "
                  "positions (180 possibilities). Within a pattern every code that fits it is equally "
                  "likely.")
    statement_text = {
        "shared_colours": "every code contains the same set of colours (3 or 4 of them)",
        "fixed_positions": "one or two positions always hold the same colour",
    }
    max_steps = MAX_GUESSES
    n_theta = N_CODES

    def __init__(self) -> None:
        self._trees: PlanCache[_Tree] = PlanCache(TREE_CACHE)

    # -- latent space -------------------------------------------------------------------------------
    def build_hypotheses(self) -> list[Hypothesis]:
        return [h for h, _ in self._hypotheses_with_codes] + [Hypothesis("none", "none")]

    @cached_property
    def _hypotheses_with_codes(self) -> list[tuple[Hypothesis, list[int]]]:
        codes = np.array(CODES)
        has = np.zeros((N_CODES, len(COLOURS)), dtype=bool)
        np.put_along_axis(has, codes, True, axis=1)
        out: list[tuple[Hypothesis, list[int]]] = []
        for size, sub in ((3, "size3"), (4, "size4")):
            for colours in combinations(range(len(COLOURS)), size):
                members = np.flatnonzero(has[:, list(colours)].all(axis=1)).tolist()
                label = "+".join(COLOURS[c] for c in colours)
                out.append((Hypothesis(f"colours {label}", "shared_colours", sub, colours), members))
        for n_fixed, sub in ((1, "one"), (2, "two")):
            for positions in combinations(range(LENGTH), n_fixed):
                for colours in permutations(range(len(COLOURS)), n_fixed):
                    fixed = tuple(zip(positions, colours))
                    members = np.flatnonzero((codes[:, list(positions)] == colours).all(axis=1)).tolist()
                    label = ", ".join(f"position {p + 1} {COLOURS[col]}" for p, col in fixed)
                    out.append((Hypothesis(label, "fixed_positions", sub, fixed), members))
        return out

    @cached_property
    def _law(self) -> SparseLaw:
        supports = [codes for _, codes in self._hypotheses_with_codes] + [list(range(N_CODES))]
        return SparseLaw.from_supports(supports, N_CODES)

    def law(self, k: int) -> SparseLaw:
        return self._law

    def theta_label(self, theta: int) -> Any:
        return code_label(theta)

    def reveal_mask(self, view: TaskView, shown: Any) -> np.ndarray:
        mask = np.zeros(N_CODES)
        index = self._code_of(shown) if isinstance(shown, list) else None
        if index is not None:
            mask[index] = 1.0
        return mask

    @staticmethod
    def _code_of(names: list[Any]) -> int | None:
        try:
            return LABEL_INDEX.get(tuple(names))
        except TypeError:  # unhashable entries: not a code
            return None

    @cached_property
    def peg(self) -> np.ndarray:
        return peg_table()

    @cached_property
    def _outcome_bins(self) -> np.ndarray:
        """bins[c, g] = peg[g, c]·360 + g: code c's answer to every guess, as histogram bins (row per code)."""
        return self.peg.T.astype(np.int64) * N_CODES + np.arange(N_CODES)[None, :]

    # -- one task -------------------------------------------------------------------------------------
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        return None  # answers are a function of the code: nothing random

    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        return self.observation(TaskView(0, {}))

    def parse_action(self, view: TaskView, raw: Any) -> Action:
        allowed = ", ".join(COLOURS)
        usage = (f'a guess is {{"type": "guess", "code": [four distinct colours]}} with colours from '
                 f'{allowed} (e.g. {{"type": "guess", "code": ["red", "blue", "green", "yellow"]}})')
        if not isinstance(raw, dict) or raw.get("type") != "guess" or set(raw) != {"type", "code"}:
            raise InvalidAction(f"{usage}; got {clip_repr(raw)}")
        code = raw["code"]
        if not isinstance(code, list) or len(code) != LENGTH or not all(isinstance(c, str) for c in code):
            raise InvalidAction(f"the code must be a list of {LENGTH} colour names; {usage}; got {clip_repr(code)}")
        names = [c.strip().lower() for c in code]
        unknown = [c for c in names if c not in COLOURS]
        if unknown:
            shown = ", ".join(map(repr, unknown))
            raise InvalidAction(f"unknown colour(s) {shown}: allowed colours are {allowed}")
        if len(set(names)) != LENGTH:
            raise InvalidAction(f"the {LENGTH} colours of a guess must be distinct; got {names!r}")
        return {"type": "guess", "code": names}

    def _guess_index(self, action: Action) -> int:
        return LABEL_INDEX[tuple(action["code"])]

    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        t = len(view.steps) + 1
        black, white = OUTCOMES[self.peg[self._guess_index(action), theta]]
        cracked = black == LENGTH
        reward = 1.0 - (t - 1) / MAX_GUESSES if cracked else 0.0
        return ({"black": black, "white": white, "turns_left": MAX_GUESSES - t},
                cracked or t == MAX_GUESSES, reward)

    def observation(self, view: TaskView) -> dict[str, Any]:
        return {"colours": list(COLOURS), "code_length": LENGTH,
                "guesses": [{"code": list(a["code"]), "black": r["black"], "white": r["white"]}
                            for a, r in view.steps],
                "turns_left": MAX_GUESSES - len(view.steps)}

    def legal_actions(self, view: TaskView) -> list[Action]:
        return [{"type": "guess", "code": list(label)} for label in LABELS]

    # -- likelihoods ------------------------------------------------------------------------------------
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        outcome = OUTCOME_INDEX.get((result.get("black"), result.get("white")))
        if outcome is None or result.get("turns_left") != MAX_GUESSES - len(view.steps) - 1:
            return np.zeros(N_CODES)
        return (self.peg[self._guess_index(action)] == outcome).astype(float)

    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        left = MAX_GUESSES - len(view.steps) - 1
        return [{"black": b, "white": w, "turns_left": left} for b, w in OUTCOMES]

    def reward_vector(self, view: TaskView) -> np.ndarray:
        rewards = np.zeros(N_CODES)
        for t, (action, _) in reversed(list(enumerate(view.steps))):  # the first crack wins
            rewards[self._guess_index(action)] = 1.0 - t / MAX_GUESSES
        return rewards

    # -- planner -------------------------------------------------------------------------------------------
    def candidates(self, p0: np.ndarray, view: TaskView) -> np.ndarray:
        """Sorted code indices with positive in-task posterior."""
        mask = p0 > 0
        for t, (action, result) in enumerate(view.steps):
            mask &= self.step_likelihood(view.prefix(t), action, result) > 0
        idx = np.flatnonzero(mask).astype(np.int16)
        if idx.size == 0:
            raise ValueError(f"{self.name}: the visible steps have zero probability under p0")
        return idx

    def planner_move(self, idx: np.ndarray, w: np.ndarray, t: int) -> int:
        """The planner's guess for candidates `idx` with posterior `w`, after `t` guesses."""
        if idx.size <= 2 or t == MAX_GUESSES - 1:
            return int(idx[np.flatnonzero(w >= w.max() - TIE)[0]])
        # hist[o, g] = P(answer o to guess g): one bincount over the candidates' rows of the bin table.
        bins = self._outcome_bins[idx].ravel()
        hist = np.bincount(bins, weights=np.repeat(w, N_CODES), minlength=N_OUTCOMES * N_CODES)
        hist = hist.reshape(N_OUTCOMES, N_CODES)
        entropy = -(hist * np.log(np.where(hist > 0, hist, 1.0))).sum(axis=0)
        top = np.flatnonzero(entropy >= entropy.max() - TIE)
        p_correct = hist[WIN, top]
        return int(top[np.flatnonzero(p_correct >= p_correct.max() - TIE)[0]])

    def _tree(self, p0: np.ndarray) -> _Tree:
        return self._trees.get(p0, lambda p: _Tree(self, p.copy()))

    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        return self._tree(p0).q_value(self.candidates(p0, view), len(view.steps), self._guess_index(action))

    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        tree = self._tree(p0)
        idx, t = self.candidates(p0, view), len(view.steps)
        move = tree.move(idx, t)
        return guess(move), tree.q_value(idx, t, move)
