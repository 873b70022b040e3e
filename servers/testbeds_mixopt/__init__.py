"""mixopt: multi-fidelity, multi-scale Bayesian optimisation of pre-training data mixtures.

Importing this package does not import mcp or scikit-optimize."""

__version__ = "0.1.0"
