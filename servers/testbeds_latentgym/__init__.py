"""latentgym: sequences of related tasks sharing a hidden latent, with exact posteriors and metrics.

Importing this package loads neither mcp nor gymnasium (the Gym adapter registers from `.gym`)."""

__version__ = "0.1.0"
