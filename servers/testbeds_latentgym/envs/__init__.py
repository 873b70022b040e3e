"""The environment registry: one instance per environment, built on first use (some tables are large)."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import LatentEnv

_MODULES = {
    "number_guess": ("number_guess", "NumberGuess"),
    "bandit": ("bandit", "Bandit"),
    "mastermind": ("mastermind", "Mastermind"),
    "recommender": ("recommender", "Recommender"),
    "secretary": ("secretary", "Secretary"),
}


@cache
def get_env(name: str) -> LatentEnv:
    try:
        module, cls = _MODULES[name]
    except KeyError:
        raise KeyError(f"unknown environment {name!r}; choose one of {', '.join(_MODULES)}") from None
    return getattr(import_module(f"{__name__}.{module}"), cls)()


def env_names() -> list[str]:
    return list(_MODULES)
