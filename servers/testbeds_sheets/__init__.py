"""sheets: a finance spreadsheet workspace of real .xlsx files, a task generator of controlled chain depth, and a
deterministic Accuracy / Formula / Format grader (after MBABench)."""

__version__ = "0.1.0"
