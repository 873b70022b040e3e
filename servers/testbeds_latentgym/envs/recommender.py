"""recommender: recommend one of six products to a user whose persona may carry over from task to task.

θ = the user's persona (budget, style, priority), 27 values, index 9·budget + 3·style + priority. Each task is
a product category with items A-F, each with a price {low, mid, high}, a style {classic, modern, sporty} and a
feature {durable, eco, compact}; the catalogue is ξ, visible at the task's start and drawn independently of θ
and z. u_p(i) = how many of item i's attributes match persona p (budget↔price, style↔style,
priority↔feature). The agent may ask about each trait once (0.1 each) and then recommends an item, which ends
the task: reward max(0, (u − min u)/(max u − min u) − 0.1·asks), with min and max over the catalogue under
the task's persona. Catalogues where any persona's u is flat are redrawn, so the reward is always defined.

Latents: a fixed persona (27 hypotheses, one family "persona") or none (a fresh uniform persona each task).
Hints are trait facts ("budget=low", ...) rather than families, and `reveal_answer` shows the favourite set
(the items of maximal u), not the persona. The planner is an exact expectimax over which trait to ask next.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from itertools import product
from typing import Any

import numpy as np

from ..latent import HintModel, Hypothesis, SparseLaw
from .base import Action, InvalidAction, LatentEnv, Result, TaskView, clip_repr, pick_best
from .plans import PlanCache

TRAITS = ("budget", "style", "priority")
ATTRIBUTES = ("price", "style", "feature")  # the item attribute each trait is matched against
VALUES = (("low", "mid", "high"), ("classic", "modern", "sporty"), ("durable", "eco", "compact"))
VALUE_INDEX = tuple({v: n for n, v in enumerate(values)} for values in VALUES)
ITEMS = ("A", "B", "C", "D", "E", "F")
ASK_COST = 0.1
N_PERSONAS = 27
CATEGORIES = ("headphones", "backpacks", "running shoes", "coffee makers", "desk lamps", "water bottles",
              "rain jackets", "office chairs", "bicycles", "suitcases", "wristwatches", "tents")
# Rewards are rounded so that shown rewards read cleanly (0.7, not 0.6999999999999999); step, reward_vector
# and the planner all go through `task_reward`, so the outcome factor compares identical numbers.
DECIMALS = 4
PLAN_CACHE_SIZE = 64

# Hint statements are trait facts, named "trait=value", with their plain-language text.
STATEMENT_TEXT = {f"{trait}={value}": template.format(value)
                  for trait, values, template in zip(TRAITS, VALUES, ("the user always has a {} budget",
                                                                      "the user always prefers {} style",
                                                                      "the user always prioritises {} items"))
                  for value in values}

# PERSONAS[θ] = (budget, style, priority) value indices.
PERSONAS = np.array(list(product(range(3), repeat=3)), dtype=np.int64)
Catalogue = tuple[tuple[int, int, int], ...]  # per item: (price, style, feature) value indices
State = tuple[int, int, int]  # per trait: the answer's value index, or -1 if not asked yet


def persona_label(theta: int) -> dict[str, str]:
    return {trait: VALUES[j][int(PERSONAS[theta, j])] for j, trait in enumerate(TRAITS)}


def utilities(catalogue: Catalogue) -> np.ndarray:
    """u[θ, i]: the number of item i's attributes that match persona θ (27 × 6)."""
    items = np.array(catalogue, dtype=np.int64)
    return (PERSONAS[:, None, :] == items[None, :, :]).sum(axis=2)


@lru_cache(maxsize=256)
def normalised_utilities(catalogue: Catalogue) -> np.ndarray:
    """(u − min u)/(max u − min u) per persona over the catalogue (27 × 6, read-only: it is cached);
    needs no flat persona."""
    u = utilities(catalogue)
    lo, hi = u.min(axis=1, keepdims=True), u.max(axis=1, keepdims=True)
    if (hi == lo).any():
        raise ValueError("a catalogue where some persona rates every item alike has no defined reward")
    norm = (u - lo) / (hi - lo)
    norm.flags.writeable = False
    return norm


@lru_cache(maxsize=256)
def favourite_mask(catalogue: Catalogue) -> np.ndarray:
    """fav[θ, i]: item i has persona θ's maximal utility (27 × 6, read-only: it is cached)."""
    u = utilities(catalogue)
    fav = u == u.max(axis=1, keepdims=True)
    fav.flags.writeable = False
    return fav


def task_reward(normalised: np.ndarray | float, asks: int) -> np.ndarray:
    """max(0, normalised − 0.1·asks), rounded to DECIMALS places (elementwise)."""
    return np.round(np.maximum(0.0, np.asarray(normalised, dtype=float) - ASK_COST * asks), DECIMALS)


def is_flat_for_some_persona(catalogue: Catalogue) -> bool:
    u = utilities(catalogue)
    return bool((u.max(axis=1) == u.min(axis=1)).any())


@dataclass(frozen=True)
class Nuisance:
    """ξ_k: the task's category name and its catalogue."""

    category: str
    catalogue: Catalogue


def state_index(state: State) -> int:
    """The row of `state` in the plan tables: base-4 digits (answer + 1) per trait."""
    return 16 * (state[0] + 1) + 4 * (state[1] + 1) + (state[2] + 1)


STATES: list[State] = [(a - 1, b - 1, c - 1) for a in range(4) for b in range(4) for c in range(4)]
N_ASKED = np.array([sum(v >= 0 for v in s) for s in STATES])
# FITS[s, θ]: persona θ agrees with every answer of state s.
FITS = np.array([[all(v < 0 or PERSONAS[t, j] == v for j, v in enumerate(s)) for t in range(N_PERSONAS)]
                 for s in STATES])
# CHILDREN[s, j, v]: the state after asking trait j in s and hearing value v (-1 if j was already asked).
CHILDREN = np.array([[[state_index(s[:j] + (v,) + s[j + 1:]) if s[j] < 0 else -1 for v in range(3)]
                      for j in range(3)] for s in STATES])


@dataclass(frozen=True)
class Plan:
    """Expectimax tables for one (p0, catalogue), by `state_index`, unnormalised: each entry is
    Σ_θ p0(θ)·1[θ fits the state]·(expected reward). Dividing by `weight` gives the value in that state."""

    weight: np.ndarray  # (64,)
    recommend: np.ndarray  # (64, 6): recommend each item now
    ask: np.ndarray  # (64, 3): ask each trait now, planner continuing (-inf where already asked)
    value: np.ndarray  # (64,): the best of the above


def solve(p0: np.ndarray, catalogue: Catalogue) -> Plan:
    """Exact expectimax over asks: in each state, recommend the best item now or ask an unasked trait."""
    norm = normalised_utilities(catalogue)
    w = FITS * np.asarray(p0, dtype=np.float64)[None, :]
    recommend = np.empty((len(STATES), len(ITEMS)))
    for n in range(4):
        rows = N_ASKED == n
        recommend[rows] = w[rows] @ task_reward(norm, n)
    ask = np.full((len(STATES), 3), -np.inf)
    value = recommend.max(axis=1)
    for n in (2, 1, 0):  # children (one more answer) are final before their parents
        rows = np.flatnonzero(N_ASKED == n)
        children = CHILDREN[rows]
        open_ = children[:, :, 0] >= 0
        ask[rows] = np.where(open_, value[np.where(children >= 0, children, 0)].sum(axis=2), -np.inf)
        value[rows] = np.maximum(value[rows], ask[rows].max(axis=1))
    return Plan(w.sum(axis=1), recommend, ask, value)


class Recommender(LatentEnv):
    name = "recommender"
    gym_id = "testbeds/Recommender-v0"
    summary = "Recommend one of six products to a user whose tastes you can ask about, at a cost."
    rules = ("Each task is a product category with six items, A to F. Every item has a price (low, mid or "
             "high), a style (classic, modern or sporty) and a feature (durable, eco or compact), all shown "
             "at the start. The user has a budget (low, mid or high), a preferred style (classic, modern or "
             "sporty) and a priority (durable, eco or compact). An item's utility is how many of its price, "
             "style and feature match the user's budget, style and priority (0 to 3). You may ask about each "
             "of the three traits at most once (0.1 each), then recommend one item, which ends the task. "
             "Reward: max(0, (u - min u)/(max u - min u) - 0.1 x asks), where u is the recommended item's "
             "utility and min u, max u are the lowest and highest utilities among the six items for this "
             "user.")
    actions_doc = ('{"type": "ask", "trait": "budget"|"style"|"priority"} answers with the user\'s value of '
                   'that trait (each trait at most once, 0.1 each); {"type": "recommend", "item": "A".."F"} '
                   "recommends an item and ends the task.")
    families = ("persona",)
    family_doc = ("0.2: no pattern (each task's user has a fresh, uniformly random budget, style and "
                  "priority); 0.8: the same user throughout, with one fixed budget, style and priority (each "
                  "of the 27 combinations 0.8/27).")
    statement_text = STATEMENT_TEXT
    max_steps = len(TRAITS) + 1
    n_theta = N_PERSONAS

    def __init__(self) -> None:
        self._plans: PlanCache[Plan] = PlanCache(PLAN_CACHE_SIZE)

    def build_hypotheses(self) -> list[Hypothesis]:
        personas = [Hypothesis("-".join(persona_label(t).values()), "persona", "",
                               tuple(int(x) for x in PERSONAS[t])) for t in range(N_PERSONAS)]
        return [*personas, Hypothesis("none", "none")]

    @cache
    def _law(self) -> SparseLaw:
        return SparseLaw.from_supports([*([t] for t in range(N_PERSONAS)), range(N_PERSONAS)], N_PERSONAS)

    def law(self, k: int) -> SparseLaw:
        return self._law()

    def theta_label(self, theta: int) -> Any:
        return persona_label(theta)

    @cached_property
    def hint_model(self) -> HintModel:
        """Statements are trait facts: a persona makes its three values true, `none` only "none"."""
        statements = [*STATEMENT_TEXT, "none"]
        truth = np.zeros((len(self.hypotheses), len(statements)), dtype=bool)
        for z, h in enumerate(self.hypotheses):
            if h.family == "none":
                truth[z, -1] = True
            else:
                for j, v in enumerate(h.params):
                    truth[z, 3 * j + v] = True
        return HintModel(statements=statements, truth=truth)

    # -- one task -------------------------------------------------------------------------------------
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        """A catalogue of six items with uniform attributes, redrawn while any persona's utility is flat.

        The rejection rule looks at all 27 personas, not θ's, so the law stays free of θ and z."""
        while True:
            draw = rng.integers(0, 3, size=(len(ITEMS), len(ATTRIBUTES)))
            catalogue: Catalogue = tuple((int(a), int(b), int(c)) for a, b, c in draw)
            if not is_flat_for_some_persona(catalogue):
                return Nuisance(CATEGORIES[k % len(CATEGORIES)], catalogue)

    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        items = {item: {attr: VALUES[j][attrs[j]] for j, attr in enumerate(ATTRIBUTES)}
                 for item, attrs in zip(ITEMS, xi.catalogue)}
        return {"category": xi.category, "items": items}

    @staticmethod
    def catalogue(view: TaskView) -> Catalogue:
        """The catalogue as shown in the task's opening."""
        items = view.start["items"]
        return tuple((VALUE_INDEX[0][items[i]["price"]], VALUE_INDEX[1][items[i]["style"]],
                      VALUE_INDEX[2][items[i]["feature"]]) for i in ITEMS)

    @staticmethod
    def answers(view: TaskView) -> dict[str, str]:
        return {a["trait"]: r["answer"] for a, r in view.steps if a["type"] == "ask"}

    @classmethod
    def state(cls, view: TaskView) -> State:
        answers = cls.answers(view)
        return tuple(VALUES[j].index(answers[t]) if t in answers else -1
                     for j, t in enumerate(TRAITS))  # type: ignore[return-value]

    @staticmethod
    def finished(view: TaskView) -> bool:
        return any(a["type"] == "recommend" for a, _ in view.steps)

    def parse_action(self, view: TaskView, raw: Any) -> Action:
        usage = ('send {"type": "ask", "trait": "budget"|"style"|"priority"} or '
                 '{"type": "recommend", "item": "A".."F"}')
        if self.finished(view):
            raise InvalidAction("this task is already over: an item was recommended")
        if not isinstance(raw, dict):
            raise InvalidAction(f"an action is a JSON object; {usage}; got {clip_repr(raw)}")
        kind = raw.get("type")
        kind = kind.strip().lower() if isinstance(kind, str) else kind
        if kind == "ask":
            trait = raw.get("trait")
            trait = trait.strip().lower() if isinstance(trait, str) else trait
            if set(raw) != {"type", "trait"} or trait not in TRAITS:
                raise InvalidAction(f'an ask names one trait: {{"type": "ask", "trait": "budget"|"style"|'
                                    f'"priority"}}; got {clip_repr(raw)}')
            if trait in self.answers(view):
                left = [t for t in TRAITS if t not in self.answers(view)]
                raise InvalidAction(f"you already asked about {trait!r}; each trait can be asked once. "
                                    f"Not yet asked: {', '.join(left) or 'none'}; or recommend an item")
            return {"type": "ask", "trait": trait}
        if kind == "recommend":
            item = raw.get("item")
            item = item.strip().upper() if isinstance(item, str) else item
            if set(raw) != {"type", "item"} or item not in ITEMS:
                raise InvalidAction('a recommendation names one item: {"type": "recommend", '
                                    f'"item": "A".."F"}}; got {clip_repr(raw)}')
            return {"type": "recommend", "item": item}
        raise InvalidAction(f"unknown action: {usage}; got {clip_repr(raw)}")

    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        if action["type"] == "ask":
            j = TRAITS.index(action["trait"])
            return {"answer": VALUES[j][int(PERSONAS[theta, j])]}, False, 0.0
        i = ITEMS.index(action["item"])
        reward = task_reward(normalised_utilities(xi.catalogue)[theta, i], len(self.answers(view)))
        return {"recommended": action["item"]}, True, float(reward)

    def observation(self, view: TaskView) -> dict[str, Any]:
        answers = self.answers(view)
        return {"category": view.start["category"], "items": view.start["items"], "answers": answers,
                "traits_not_asked": [t for t in TRAITS if t not in answers], "asks_made": len(answers)}

    def legal_actions(self, view: TaskView) -> list[Action]:
        if self.finished(view):
            return []
        asked = self.answers(view)
        return [*({"type": "ask", "trait": t} for t in TRAITS if t not in asked),
                *({"type": "recommend", "item": i} for i in ITEMS)]

    # -- likelihoods ------------------------------------------------------------------------------------
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        if action["type"] == "recommend":
            return np.ones(N_PERSONAS)
        j = TRAITS.index(action["trait"])
        return (PERSONAS[:, j] == VALUES[j].index(result["answer"])).astype(float)

    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        if action["type"] == "recommend":
            return [{"recommended": action["item"]}]
        return [{"answer": v} for v in VALUES[TRAITS.index(action["trait"])]]

    def reward_vector(self, view: TaskView) -> np.ndarray:
        action = view.steps[-1][0]
        if action["type"] != "recommend":
            raise ValueError("reward_vector needs a finished task (its last step a recommendation)")
        i = ITEMS.index(action["item"])
        return task_reward(normalised_utilities(self.catalogue(view))[:, i], len(self.answers(view)))

    @staticmethod
    def favourites(catalogue: Catalogue, theta: int) -> list[str]:
        return [item for item, best in zip(ITEMS, favourite_mask(catalogue)[theta]) if best]

    def reveal(self, theta: int, xi: Any) -> Any:
        """The favourite set (items of maximal utility for the task's persona), not the persona itself."""
        return self.favourites(xi.catalogue, theta)

    def reveal_mask(self, view: TaskView, shown: Any) -> np.ndarray:
        shown_mask = np.array([item in shown for item in ITEMS])
        return (favourite_mask(self.catalogue(view)) == shown_mask).all(axis=1).astype(float)

    # -- planner -------------------------------------------------------------------------------------------
    def plan(self, p0: np.ndarray, catalogue: Catalogue) -> Plan:
        """The expectimax tables for (p0, catalogue), from a small LRU: the metrics ask at every step."""
        return self._plans.get(p0, lambda p: solve(p, catalogue), catalogue)

    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        plan = self.plan(p0, self.catalogue(view))
        state = state_index(self.state(view))
        weight = plan.weight[state]
        if weight <= 0 or self.finished(view):
            raise ValueError(f"{self.name}: no value here (the state has zero probability under p0, "
                             "or the task is over)")
        if action["type"] == "recommend":
            return float(plan.recommend[state][ITEMS.index(action["item"])] / weight)
        j = TRAITS.index(action["trait"])
        if not np.isfinite(plan.ask[state, j]):
            raise ValueError(f"{self.name}: {action['trait']!r} was already asked in this task")
        return float(plan.ask[state, j] / weight)

    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        return pick_best([(a, self.q_value(p0, view, a)) for a in self.legal_actions(view)])
