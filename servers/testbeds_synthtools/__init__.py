"""synthtools: synthetic tool ecosystems (after SynthTools): toolset specs, a deterministic SQLite-backed simulator,
an LLM simulator behind the same gateway, an audit measured by fault injection, and tasks graded on final state."""

__version__ = "0.1.0"
