"""secretary: optimal stopping over 10 candidates; z is a law for where the best candidate tends to appear.

θ = the position M (1..10, stored 0-based) of the overall best. Under a window law W (early {1-3}, middle
{4-7}, late {8-10}), q_z(M) = 0.8·1[M∈W]/|W| + 0.02; under `none`, uniform. The agent sees each candidate's
rank among those seen so far and accepts or continues; the 10th must be accepted. Reward 1 for the overall
best, else 0 (binary, so `outcome` feedback is one bit). The planner is exact (a backward recursion on
the task-start predictive q̄).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from ..latent import Hypothesis, SparseLaw
from .base import Action, InvalidAction, LatentEnv, Result, TaskView, clip_repr, pick_best

N = 10
WINDOWS = {"early": range(1, 4), "middle": range(4, 8), "late": range(8, 11)}
ACCEPT: Action = {"type": "accept"}
CONTINUE: Action = {"type": "continue"}


class Secretary(LatentEnv):
    name = "secretary"
    gym_id = "testbeds/Secretary-v0"
    summary = "Optimal stopping: pick the best of 10 candidates seen one at a time."
    rules = ("Each task shows 10 candidates one at a time, in a random order. For each one you see its position "
             "and its rank among the candidates seen so far (1 = best so far). Accept it, which ends the task, or "
             "continue to the next; a passed candidate cannot be recalled and the 10th must be accepted. Reward: "
             "1 if you accepted the best of all 10, else 0.")
    actions_doc = ('{"type": "accept"} takes the current candidate; {"type": "continue"} moves to the next '
                   "(not allowed at position 10).")
    families = ("early", "middle", "late")
    family_doc = ("0.2: no pattern (the best is equally likely at any position); 0.8/3 each: the best tends to "
                  "be early (positions 1-3), in the middle (4-7) or late (8-10), with 80% of its probability "
                  "spread over that window and 2% on every position.")
    statement_text = {"early": "the best candidate tends to come early (positions 1-3)",
                      "middle": "the best candidate tends to come in the middle (positions 4-7)",
                      "late": "the best candidate tends to come late (positions 8-10)"}
    max_steps = N
    n_theta = N

    def build_hypotheses(self) -> list[Hypothesis]:
        return [*(Hypothesis(name, name, "", (w.start, w.stop - 1)) for name, w in WINDOWS.items()),
                Hypothesis("none", "none")]

    @cache
    def _law(self) -> SparseLaw:
        rows = []
        for h in self.hypotheses:
            if h.family == "none":
                rows.append(np.full(N, 1.0 / N))
            else:
                lo, hi = h.params
                q = np.full(N, 0.02)
                q[lo - 1:hi] += 0.8 / (hi - lo + 1)
                rows.append(q)
        return SparseLaw.from_dense(np.array(rows))

    def law(self, k: int) -> SparseLaw:
        return self._law()

    def theta_label(self, theta: int) -> Any:
        return theta + 1

    # -- one task -------------------------------------------------------------------------------------
    def draw_nuisance(self, theta: int, k: int, rng: np.random.Generator) -> Any:
        """Quality scores: the best (N) at θ, the others a random permutation of 1..N-1."""
        others = rng.permutation(np.arange(1, N)).tolist()
        return others[:theta] + [N] + others[theta:]

    @staticmethod
    def _rank_among_seen(quality: list[int], position: int) -> int:
        seen = quality[:position]
        return 1 + sum(q > seen[-1] for q in seen[:-1])

    def task_start(self, theta: int, xi: Any) -> dict[str, Any]:
        return {"position": 1, "rank_among_seen": 1, "candidates": N}

    @staticmethod
    def position(view: TaskView) -> int:
        return 1 + sum(1 for a, _ in view.steps if a["type"] == "continue")

    @staticmethod
    def current_rank(view: TaskView) -> int:
        return view.steps[-1][1]["rank_among_seen"] if view.steps else 1

    def parse_action(self, view: TaskView, raw: Any) -> Action:
        kind = raw.get("type") if isinstance(raw, dict) else None
        extra = set(raw) - {"type"} if isinstance(raw, dict) else set()
        if kind not in ("accept", "continue") or extra:
            raise InvalidAction(f"secretary actions are {{\"type\": \"accept\"}} or {{\"type\": \"continue\"}}; "
                                f"got {clip_repr(raw)}")
        if kind == "continue" and self.position(view) == N:
            raise InvalidAction(f"candidate {N} is the last one and must be accepted: send {{\"type\": \"accept\"}}")
        return dict(ACCEPT if kind == "accept" else CONTINUE)

    def step(self, theta: int, xi: Any, view: TaskView, action: Action) -> tuple[Result, bool, float]:
        t = self.position(view)
        if action["type"] == "accept":
            return {"accepted_position": t}, True, float(t == theta + 1)
        return {"position": t + 1, "rank_among_seen": self._rank_among_seen(xi, t + 1)}, False, 0.0

    def observation(self, view: TaskView) -> dict[str, Any]:
        t = self.position(view)
        return {"position": t, "rank_among_seen": self.current_rank(view), "candidates_left": N - t,
                "must_accept": t == N}

    def legal_actions(self, view: TaskView) -> list[Action]:
        return [dict(ACCEPT)] if self.position(view) == N else [dict(ACCEPT), dict(CONTINUE)]

    # -- likelihoods ------------------------------------------------------------------------------------
    def step_likelihood(self, view: TaskView, action: Action, result: Result) -> np.ndarray:
        if action["type"] == "accept":
            return np.ones(N)
        t, r = result["position"], result["rank_among_seen"]
        m = np.arange(1, N + 1)
        # Best already seen (m < t): the new one is not best so far, rank uniform on 2..t. Best here (m == t):
        # rank 1. Best still to come (m > t): rank uniform on 1..t.
        return np.where(m < t, (r != 1) / (t - 1), np.where(m == t, float(r == 1), 1.0 / t))

    def possible_results(self, view: TaskView, action: Action) -> list[Result]:
        if action["type"] == "accept":
            return [{"accepted_position": self.position(view)}]
        t = self.position(view) + 1
        return [{"position": t, "rank_among_seen": r} for r in range(1, t + 1)]

    def reward_vector(self, view: TaskView) -> np.ndarray:
        accepted = view.steps[-1][1]["accepted_position"]
        return (np.arange(1, N + 1) == accepted).astype(float)

    # -- planner -------------------------------------------------------------------------------------------
    @staticmethod
    def continuation_values(p0: np.ndarray) -> np.ndarray:
        """C[t] = value of playing on from position t+1 given the best is after position t (t = 0..N)."""
        q = p0 / p0.sum()
        tail = np.concatenate([np.cumsum(q[::-1])[::-1], [0.0]])  # tail[t] = Q̄(>t) = Σ_{M>t} q(M)
        c = np.zeros(N + 1)
        for t in range(N - 1, -1, -1):  # from C[t+1] to C[t]; candidate j = t+1 (1-based)
            j = t + 1
            if tail[t] <= 0:
                c[t] = 0.0
                continue
            best_here = j * q[j - 1] + tail[j]
            p_j = j * q[j - 1] / best_here if best_here > 0 else 0.0
            beta = (q[j - 1] + tail[j] / j) / tail[t]
            c[t] = beta * max(p_j, (1 - p_j) * c[j]) + (1 - beta) * c[j]
        return c

    def q_value(self, p0: np.ndarray, view: TaskView, action: Action) -> float:
        t = self.position(view)
        post = self.in_task_posterior(p0, view)
        if action["type"] == "accept":
            return float(post[t - 1]) if self.current_rank(view) == 1 else 0.0
        return float(post[t:].sum() * self.continuation_values(p0)[t])

    def best_action(self, p0: np.ndarray, view: TaskView) -> tuple[Action, float]:
        return pick_best([(a, self.q_value(p0, view, a)) for a in self.legal_actions(view)])
