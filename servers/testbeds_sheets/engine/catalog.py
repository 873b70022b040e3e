"""Which names are Excel functions: Excel 2007's list (openpyxl's FORMULAE) and the functions added since.

The embedded engine tells a real Excel function it does not implement (the cell is unsupported, never a silent
value) from a name that is no function at all (#NAME?, as in Excel); the formula writer uses the same list to add
the `_xlfn.` prefix newer functions need.
"""

from __future__ import annotations

from openpyxl.utils import FORMULAE

# Functions Excel added after 2007 (stored as `_xlfn.NAME`); together with every function our engine knows, any
# such name absent from openpyxl's list of Excel 2007 functions is written with the prefix.
MODERN_FUNCTIONS = frozenset({
    "AGGREGATE", "ARABIC", "BASE", "BINOM.DIST", "BINOM.INV", "BITAND", "BITLSHIFT", "BITOR", "BITRSHIFT", "BITXOR",
    "BYCOL", "BYROW", "CEILING.MATH", "CEILING.PRECISE", "CHISQ.DIST", "CHISQ.DIST.RT", "CHISQ.INV", "CHISQ.INV.RT",
    "CHISQ.TEST", "CHOOSECOLS", "CHOOSEROWS", "COMBINA", "CONCAT", "CONFIDENCE.NORM", "CONFIDENCE.T", "COT", "COTH",
    "COVARIANCE.P", "COVARIANCE.S", "CSC", "CSCH", "DAYS", "DECIMAL", "DROP", "ERF.PRECISE", "ERFC.PRECISE",
    "EXPAND", "EXPON.DIST", "F.DIST", "F.DIST.RT", "F.INV", "F.INV.RT", "F.TEST", "FILTER", "FLOOR.MATH",
    "FLOOR.PRECISE", "FORECAST.LINEAR", "FORMULATEXT", "GAMMA", "GAMMA.DIST", "GAMMA.INV", "GAMMALN.PRECISE", "GAUSS",
    "HSTACK", "HYPGEOM.DIST", "IFNA", "IFS", "IMAGE", "ISFORMULA", "ISOMITTED", "ISOWEEKNUM", "LAMBDA", "LET",
    "LOGNORM.DIST", "LOGNORM.INV", "MAKEARRAY", "MAP", "MAXIFS", "MINIFS", "MODE.MULT", "MODE.SNGL", "NEGBINOM.DIST",
    "NORM.DIST", "NORM.INV", "NORM.S.DIST", "NORM.S.INV", "NUMBERVALUE", "PDURATION", "PERCENTILE.EXC",
    "PERCENTILE.INC", "PERCENTRANK.EXC", "PERCENTRANK.INC", "PERMUTATIONA", "PHI", "POISSON.DIST", "QUARTILE.EXC",
    "QUARTILE.INC", "RANDARRAY", "RANK.AVG", "RANK.EQ", "REDUCE", "RRI", "SCAN", "SEC", "SECH", "SEQUENCE", "SHEET",
    "SHEETS", "SKEW.P", "SORT", "SORTBY", "STDEV.P", "STDEV.S", "SWITCH", "T.DIST", "T.DIST.2T", "T.DIST.RT",
    "T.INV", "T.INV.2T", "T.TEST", "TAKE", "TEXTAFTER", "TEXTBEFORE", "TEXTJOIN", "TEXTSPLIT", "TOCOL", "TOROW",
    "UNICHAR", "UNICODE", "UNIQUE", "VALUETOTEXT", "ARRAYTOTEXT", "VAR.P", "VAR.S", "VSTACK", "WEIBULL.DIST",
    "WRAPCOLS", "WRAPROWS", "XLOOKUP", "XMATCH", "XOR", "Z.TEST",
})


def is_excel_function(name: str) -> bool:
    """True for the name (upper case, without `_xlfn.`) of a function Excel knows."""
    return name in FORMULAE or name in MODERN_FUNCTIONS


__all__ = ["MODERN_FUNCTIONS", "is_excel_function"]
