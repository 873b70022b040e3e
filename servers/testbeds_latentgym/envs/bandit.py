"""bandit: find the best of 5 colour-named arms; z is a law for which arm is best in each task.

θ_k = j_k, the best arm (0..4 in the fixed order red, green, blue, yellow, purple). The best arm pays 1 with
probability 0.7, the others with 0.3 (the rules say so). A task allows at most 9 pulls and ends with a commit;
after 9 pulls only a commit is legal (a forced, explicit commit: the last pull never counts as one). Reward
1[committed arm = j_k]·(1 − 0.05·pulls). Pull i of arm a reads the pre-drawn uniform u_{k,a,i} and pays 1 iff
u < p(a), so ξ_k's law is free of z (and of θ).

Latents: a fixed best arm (5 × .08); a rotation j_k = j_1 ± (k−1) mod 5 along the fixed order (10 × .04,
start arm × direction); none (j_k iid uniform). With 0.7/0.3 payouts the pulls enter the posterior over θ
only through d_j = successes − failures of arm j: P(j | pulls) ∝ p0(j)·(7/3)^{d_j}. The planner is an exact
backward DP over (d, pulls): 31,471 states, solved in numpy layer by layer and cached per task-start prior.
"""

from __future__ import annotations

from functools import cache, cached_property
from typing import Any

import numpy as np

from ..latent import Hypothesis, SparseLaw
from .base import Action, InvalidAction, LatentEnv, Result, TaskView, clip_repr, pick_best
from .plans import PlanCache

ARMS = ("red", "green", "blue", "yellow", "purple")
N_ARMS = len(ARMS)
MAX_PULLS = 9
P_BEST = 0.7
P_OTHER = 0.3
DIRECTIONS = {"forward": 1, "backward": -1}
# Each distinct task-start prior gets its own DP table (~250 kB); a sequence uses a handful.
CACHE_SIZE = 32
BASE = 2 * MAX_PULLS + 1  # d_j ranges over −9..9
PLACE = BASE ** np.arange(N_ARMS, dtype=np.int64)


def commit_reward(pulls: int) -> float:
    """1 − 0.05·pulls, computed as (20 − pulls)/20 so the float is the correctly rounded decimal."""
    return (20 - pulls) / 20


class _StateSpace:
    """Every reachable (d, pulls) state, by layer n = pulls: d ∈ Z^5 with |d|₁ ≤ n and |d|₁ ≡ n (mod 2).

    A state is keyed by the integer Σ_j (d_j + 9)·19^j; `keys[n]` holds layer n's sorted keys and `rows[n]`
    maps a key to its row. Per-arm arrays are arm-major (5 × S_n) so that reductions over arms run
    along contiguous rows: `up[n]`/`down[n]` give the row in layer n+1 after a success/failure on each arm,
    and `odds[n]` = (7/3)^d, the in-task likelihood ratios.
    """

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = [np.array([self.key((0,) * N_ARMS)])]
        for _ in range(MAX_PULLS):
            prev = self.keys[-1]
            moves = np.concatenate([prev[None, :] + PLACE[:, None], prev[None, :] - PLACE[:, None]])
            self.keys.append(np.unique(moves.ravel()))
        step = PLACE[:, None]
        self.up = [np.searchsorted(self.keys[n + 1], self.keys[n] + step) for n in range(MAX_PULLS)]
        self.down = [np.searchsorted(self.keys[n + 1], self.keys[n] - step) for n in range(MAX_PULLS)]
        d = [(keys[None, :] // PLACE[:, None]) % BASE - MAX_PULLS for keys in self.keys]
        self.odds = [(P_BEST / P_OTHER) ** dn for dn in d]
        self.rows = [dict(zip(keys.tolist(), range(len(keys)))) for keys in self.keys]

    @staticmethod
    def key(d: tuple[int, ...]) -> int:
        return sum((x + MAX_PULLS) * BASE**j for j, x in enumerate(d))

    def row(self, n: int, key: int) -> int:
        """The row of the state with this key in layer n."""
        try:
            return self.rows[n][key]
        except KeyError:
            raise KeyError(f"state key {key} is not reachable in {n} pulls") from None

    @property
    def n_states(self) -> int:
        return sum(len(keys) for keys in self.keys)


@cache
def state_space() -> _StateSpace:
    return _StateSpace()


def solve(p0: np.ndarray) -> list[np.ndarray]:
    """V[n][s]: the optimal expected rest-of-task reward at state s of layer n when θ ~ p0 a priori.

    The recursion runs on U = V·Σ_j p0(j)(7/3)^{d_j}, which is linear: committing to a pays p0(a)(7/3)^{d_a}
    (1 − 0.05n), and pulling a gives 0.3·U(d + e_a) + 0.7·U(d − e_a), because a success multiplies θ = j's
    likelihood by 0.3·(7/3)^{1[j=a]} and a failure by 0.7·(7/3)^{−1[j=a]}. Dividing by the same positive
    normaliser leaves every comparison unchanged, so the argmax is that of the normalised DP.
    """
    space = state_space()
    scaled: list[np.ndarray] = [np.empty(0)] * (MAX_PULLS + 1)
    values: list[np.ndarray] = [np.empty(0)] * (MAX_PULLS + 1)
    for n in range(MAX_PULLS, -1, -1):
        weights = p0[:, None] * space.odds[n]  # 5 × S_n: p0(j)(7/3)^{d_j}
        best = weights.max(axis=0) * commit_reward(n)
        if n < MAX_PULLS:
            nxt = scaled[n + 1]
            pull = P_OTHER * nxt[space.up[n]] + (1 - P_OTHER) * nxt[space.down[n]]
            best = np.maximum(best, pull.max(axis=0))
        scaled[n] = best
        values[n] = best / weights.sum(axis=0)
    return values


class Bandit(LatentEnv):
    name = "bandit"
    gym_id = "testbeds/Bandit-v0"
    summary = "Five-armed bandit: find the best arm with few pulls, then commit to it."
    rules = (f"Each task has five arms: {', '.join(ARMS)}. Exactly one of them is the best arm: it "
             f"pays 1 with probability {P_BEST}, every other arm pays 1 with probability {P_OTHER} (else 0). "
             f"Pull arms to learn (at most {MAX_PULLS} pulls per task; pulls earn nothing by themselves), "
             f"then commit to one arm, which ends the task. After {MAX_PULLS} pulls you must commit. "
             "Reward: 1 - 0.05 x (number of pulls) if you committed to the best arm, else 0.")
    actions_doc = ('{"type": "pull", "arm": "<colour>"} pulls an arm and shows its payout, e.g. '
                   '{"reward": 1, "pulls": 3} (pulls so far in this task, this one included); '
                   '{"type": "commit", "arm": "<colour>"} commits to an arm and ends the task. '
                   f"Colours: {', '.join(ARMS)}.")
    families = ("fixed", "rotation")
    family_doc = ("0.2: no pattern (each task's best arm is drawn uniformly at random); 0.4: the best arm "
                  "is the same in every task (0.08 for each arm); 0.4: the best arm rotates, moving one step "
                  "per task along the cycle red -> green -> blue -> yellow -> purple -> red, always forward "
                  "or always backward (0.04 for each starting arm and direction).")
    statement_text = {
        "fixed": "the best arm is the same in every task",
        "rotation": "the best arm moves one step per task along the cycle red, green, blue, yellow, purple",
    }
    max_steps = MAX_PULLS + 1
    n_theta = N_ARMS

    def __init__(self) -> None:
        self._tables: PlanCache[list[np.ndarray]] = PlanCache(CACHE_SIZE)

    # -- latent space ---------------------------------------------------------------------------------
    def build_hypotheses(self) -> list[Hypothesis]:
        fixed = [Hypothesis(f"fixed {arm}", "fixed", "", (j,)) for j, arm in enumerate(ARMS)]
        rotations = [Hypothesis(f"rotation from {arm}, {direction}", "rotation", direction, (j, step))
                     for direction, step in DIRECTIONS.items() for j, arm in enumerate(ARMS)]
        return [*fixed, *rotations, Hypothesis("none", "none")]

    @cache
    def _law(self, phase: int) -> SparseLaw:
        rows = []
        for h in self.hypotheses:
            row = np.zeros(N_ARMS)
            if h.family == "none":
                row[:] = 1.0 / N_ARMS
            elif h.family == "fixed":
                row[h.params[0]] = 1.0
            else:
                start, step = h.params
                row[(start + step * phase) % N_ARMS] = 1.0
            rows.append(row)
        return SparseLaw.from_dense(np.array(rows))

    def law(self, k: int) -> SparseLaw:
        # Rotations have period 5, so five tables serve any number of tasks.
        return self._law(k % N_ARMS)

    def theta_label(self, theta: int) -> Any:
        return ARMS[theta]

    # -- one task -------------------------------------------------------------------------------------
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        """u[a, i]: the uniform read by the i-th pull of arm a (free of θ as well as z)."""
        return rng.random((N_ARMS, MAX_PULLS))

    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        return {"arms": list(ARMS), "max_pulls": MAX_PULLS}

    @staticmethod
    def pulls(view: TaskView) -> int:
        return sum(1 for a, _ in view.steps if a["type"] == "pull")

    @staticmethod
    def d_vector(view: TaskView) -> tuple[int, ...]:
        """successes − failures per arm: the in-task sufficient statistic."""
        d = [0] * N_ARMS
        for action, result in view.steps:
            if action["type"] == "pull":
                d[ARMS.index(action["arm"])] += 1 if result["reward"] == 1 else -1
        return tuple(d)

    def parse_action(self, view: TaskView, raw: Any) -> Action:
        allowed = ('bandit actions are {"type": "pull", "arm": <colour>} or '
                   f'{{"type": "commit", "arm": <colour>}} with a colour among {", ".join(ARMS)}')
        if not isinstance(raw, dict) or set(raw) != {"type", "arm"}:
            raise InvalidAction(f"{allowed}; got {clip_repr(raw)}")
        kind, arm = raw["type"], raw["arm"]
        kind = kind.strip().lower() if isinstance(kind, str) else kind
        arm = arm.strip().lower() if isinstance(arm, str) else arm
        if kind not in ("pull", "commit") or arm not in ARMS:
            raise InvalidAction(f"{allowed}; got {clip_repr(raw)}")
        if kind == "pull" and self.pulls(view) >= MAX_PULLS:
            raise InvalidAction(f"all {MAX_PULLS} pulls of this task are used: commit to an arm with "
                                '{"type": "commit", "arm": <colour>}')
        return {"type": kind, "arm": arm}

    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        arm = ARMS.index(action["arm"])
        n = self.pulls(view)
        if action["type"] == "commit":
            return {"committed": action["arm"], "pulls": n}, True, commit_reward(n) if arm == theta else 0.0
        i = sum(1 for a, _ in view.steps if a == action)
        paid = int(xi[arm][i] < (P_BEST if arm == theta else P_OTHER))
        return {"reward": paid, "pulls": n + 1}, False, 0.0

    def observation(self, view: TaskView) -> dict[str, Any]:
        n = self.pulls(view)
        stats = {arm: {"pulls": 0, "rewards": 0} for arm in ARMS}
        for action, result in view.steps:
            if action["type"] == "pull":
                stats[action["arm"]]["pulls"] += 1
                stats[action["arm"]]["rewards"] += result["reward"]
        return {"by_arm": stats, "pulls": n, "pulls_left": MAX_PULLS - n, "must_commit": n == MAX_PULLS}

    def legal_actions(self, view: TaskView) -> list[Action]:
        """Pulls (while any are left), then commits, each in the order red, green, blue, yellow, purple."""
        kinds = ("commit",) if self.pulls(view) >= MAX_PULLS else ("pull", "commit")
        return [{"type": kind, "arm": arm} for kind in kinds for arm in ARMS]

    # -- likelihoods ------------------------------------------------------------------------------------
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        n = self.pulls(view)
        if action["type"] == "commit":
            return np.full(N_ARMS, float(result == {"committed": action["arm"], "pulls": n}))
        if result.get("pulls") != n + 1 or result.get("reward") not in (0, 1) or len(result) != 2:
            return np.zeros(N_ARMS)
        p_pay = np.full(N_ARMS, P_OTHER)
        p_pay[ARMS.index(action["arm"])] = P_BEST
        return p_pay if result["reward"] == 1 else 1.0 - p_pay

    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        n = self.pulls(view)
        if action["type"] == "commit":
            return [{"committed": action["arm"], "pulls": n}]
        return [{"reward": 0, "pulls": n + 1}, {"reward": 1, "pulls": n + 1}]

    def reward_vector(self, view: TaskView) -> np.ndarray:
        action, _ = view.steps[-1]
        if action["type"] != "commit":
            raise ValueError("a bandit task ends with a commit")
        out = np.zeros(N_ARMS)
        out[ARMS.index(action["arm"])] = commit_reward(self.pulls(view))
        return out

    # -- planner -------------------------------------------------------------------------------------------
    @cached_property
    def n_planner_states(self) -> int:
        return state_space().n_states

    def value_table(self, p0: np.ndarray) -> list[np.ndarray]:
        """The DP's values for task-start prior p0, from a small LRU keyed by p0's bytes."""
        return self._tables.get(p0, lambda p: solve(p / p.sum()))

    def _scored(self, p0: np.ndarray, view: TaskView, actions: list[Action]) -> list[tuple[Action, float]]:
        """Q of each action: commit from the in-task posterior, pull from it and the DP's next-layer values."""
        n = self.pulls(view)
        post = self.in_task_posterior(p0, view)
        space = state_space()
        state = space.key(self.d_vector(view))
        scored = []
        for action in actions:
            a = ARMS.index(action["arm"])
            if action["type"] == "commit":
                scored.append((action, float(post[a] * commit_reward(n))))
                continue
            if n >= MAX_PULLS:
                raise ValueError(f"no pulls are left after {MAX_PULLS}")
            nxt = self.value_table(p0)[n + 1]
            p_up = P_OTHER + (P_BEST - P_OTHER) * post[a]
            up = nxt[space.row(n + 1, state + BASE**a)]
            down = nxt[space.row(n + 1, state - BASE**a)]
            scored.append((action, float(p_up * up + (1 - p_up) * down)))
        return scored

    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        return self._scored(p0, view, [action])[0][1]

    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        return pick_best(self._scored(p0, view, self.legal_actions(view)))
