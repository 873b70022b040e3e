"""Deterministic grader of sheets attempts: Accuracy, Formula and Format checks, perturbation, optional judge."""

from .colours import classify_font, classify_rgb, font_rgb, theme_palette
from .grade import ENGINES, grade, load
from .judge import build_prompt, parse_verdict, run_judge
from .locate import Located, locate_input, locate_output, normalise_label
from .numfmt import NumberFormat
from .numfmt import parse as parse_number_format
from .report import CRITERIA, DEFAULT_WEIGHTS, SUBJECTIVE_CRITERIA, CheckResult, GradeReport

__all__ = ["CRITERIA", "DEFAULT_WEIGHTS", "ENGINES", "SUBJECTIVE_CRITERIA", "CheckResult", "GradeReport", "Located",
           "NumberFormat", "build_prompt", "classify_font", "classify_rgb", "font_rgb", "grade", "load",
           "locate_input", "locate_output", "normalise_label", "parse_number_format", "parse_verdict", "run_judge",
           "theme_palette"]
