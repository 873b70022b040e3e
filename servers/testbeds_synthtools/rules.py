"""The safe rule language of toolset specs: cross-field constraints, error predicates, effect expressions.

A rule is one Python *expression* parsed with `ast.parse(mode="eval")` and checked against a whitelist of
node types when the spec loads; evaluation walks that tree. Nothing is ever passed to `eval`, `exec` or
`compile`, and no Python attribute, builtin or object method is reachable.

Grammar (everything else is a `RuleSyntaxError`):

- literals: strings, integers, decimals, `True`/`False`/`None`, lists (tuples read as lists);
- names: argument names, output keys, and the environment names the caller binds (`row`, `rows`, `now`,
  `count`); a name the environment does not bind evaluates to `None` (an absent optional argument);
  names starting with `_` are refused;
- `row.<column>` (a field of the bound row, `None` when no row is bound) and `rows.<column>` (that column
  over the bound list of rows); no other attribute access;
- `x[i]` indexing of lists (integer index) and objects (string key);
- arithmetic `+ - * / // %` and unary `- +` (no `**`: it can build unbounded numbers); `*` only on numbers;
- comparisons `== != < <= > >= in not in is is not` (chained as in Python), `and`, `or`, `not`,
  and the conditional `a if c else b`;
- calls of the functions in `FUNCTIONS` with positional arguments only.

Numbers are computed as `Decimal` (inputs go through `Decimal(str(x))`), so `149.99 * 0.08` is exact and
`round` rounds half up; `evaluate` converts results back to `int` (no fractional exponent) or `float`.
The helper predicates are `None`-tolerant: `lt(a, b)` holds when `a` or `b` is absent, so a constraint
over an optional argument only bites when the argument is given.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, DecimalException, InvalidOperation
from functools import lru_cache
from typing import Any

MAX_RULE_CHARS = 2000
MAX_DEPTH = 40
ROW_NAMES = frozenset({"row", "rows"})


class RuleError(ValueError):
    """Base of rule-language errors."""


class RuleSyntaxError(RuleError):
    """A rule that is not in the language (raised when the spec loads)."""


class RuleEvalError(RuleError):
    """A well-formed rule that cannot be evaluated on these values (e.g. comparing text with a number)."""


def _given(x: Any) -> bool:
    return x is not None


def _num(x: Any) -> Any:
    """Numbers as Decimal (bools stay bools: they are not numbers); other values unchanged."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int):
        return Decimal(x)
    if isinstance(x, float):
        return Decimal(str(x))
    if isinstance(x, list | tuple):
        return [_num(v) for v in x]
    return x


def _is_number(x: Any) -> bool:
    return isinstance(x, Decimal)


def _cmp(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True
    try:
        if op == "lt":
            return bool(a < b)
        if op == "le":
            return bool(a <= b)
        if op == "gt":
            return bool(a > b)
        return bool(a >= b)
    except TypeError as exc:
        raise RuleEvalError(f"{op}: cannot compare {_kind(a)} with {_kind(b)}") from exc


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, Decimal):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return "null" if x is None else type(x).__name__


def _sum(xs: Any) -> Decimal:
    if xs is None:
        return Decimal(0)
    if not isinstance(xs, list):
        raise RuleEvalError(f"sum: expected an array, got {_kind(xs)}")
    total = Decimal(0)
    for v in xs:
        if v is None:
            continue
        if not _is_number(v):
            raise RuleEvalError(f"sum: expected numbers, got {_kind(v)}")
        total += v
    return total


def _same_length(*xs: Any) -> bool:
    lengths = {len(x) for x in xs if x is not None}
    if any(x is not None and not isinstance(x, list | str) for x in xs):
        raise RuleEvalError("same_length: expected arrays")
    return len(lengths) <= 1


def _requires(a: Any, *others: Any) -> bool:
    return a is None or all(o is not None for o in others)


def _exclusive(*xs: Any) -> bool:
    return sum(1 for x in xs if x is not None) <= 1


def _sum_le(xs: Any, total: Any) -> bool:
    if xs is None or total is None:
        return True
    return _cmp("le", _sum(xs), total)


def _len(x: Any) -> Any:
    if x is None:
        return None
    if not isinstance(x, list | str | dict):
        raise RuleEvalError(f"len: expected an array or string, got {_kind(x)}")
    return Decimal(len(x))


def _minmax(name: str, pick: Callable[..., Any], *xs: Any) -> Any:
    values = xs[0] if len(xs) == 1 and isinstance(xs[0], list) else list(xs)
    values = [v for v in values if v is not None]
    if not values:
        return None
    try:
        return pick(values)
    except TypeError as exc:
        raise RuleEvalError(f"{name}: values are not comparable") from exc


def _abs(x: Any) -> Any:
    if x is None:
        return None
    if not _is_number(x):
        raise RuleEvalError(f"abs: expected a number, got {_kind(x)}")
    return abs(x)


def _round(x: Any, places: Any = Decimal(0)) -> Any:
    if x is None:
        return None
    if not _is_number(x) or not _is_number(places):
        raise RuleEvalError("round: expected numbers")
    n = int(places)
    if not -12 <= n <= 12:
        raise RuleEvalError("round: places must be between -12 and 12")
    return x.quantize(Decimal(1).scaleb(-n), rounding=ROUND_HALF_UP)


def _lower(x: Any) -> Any:
    if x is None:
        return None
    if not isinstance(x, str):
        raise RuleEvalError(f"lower: expected a string, got {_kind(x)}")
    return x.lower()


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    # name: (implementation, min args, max args or None for any)
    "lt": (lambda a, b: _cmp("lt", a, b), 2, 2),
    "le": (lambda a, b: _cmp("le", a, b), 2, 2),
    "gt": (lambda a, b: _cmp("gt", a, b), 2, 2),
    "ge": (lambda a, b: _cmp("ge", a, b), 2, 2),
    "same_length": (_same_length, 2, None),
    "requires": (_requires, 2, None),
    "exclusive": (_exclusive, 2, None),
    "sum_le": (_sum_le, 2, 2),
    "given": (_given, 1, 1),
    "len": (_len, 1, 1),
    "sum": (_sum, 1, 1),
    "min": (lambda *xs: _minmax("min", min, *xs), 1, None),
    "max": (lambda *xs: _minmax("max", max, *xs), 1, None),
    "abs": (_abs, 1, 1),
    "round": (_round, 1, 2),
    "lower": (_lower, 1, 1),
}
"""The callable functions. `lt/le/gt/ge(a, b)`: comparison, true when either side is absent;
`same_length(a, b, ...)`: the given arrays have equal lengths; `requires(a, b, ...)`: if `a` is given so are
the others; `exclusive(a, b, ...)`: at most one is given; `sum_le(xs, total)`: sum of `xs` <= `total`;
`given(x)`: `x` is not None; `len`, `sum`, `min`, `max`, `abs`, `round(x, places=0)` (half up), `lower`."""

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)


@dataclass(frozen=True)
class Rule:
    """A parsed, checked rule: its source text, tree, free names and `row.x` / `rows.x` fields."""

    source: str
    tree: ast.Expression
    names: frozenset[str]
    fields: frozenset[str]

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """Evaluate in `env` (see `evaluate`)."""
        return evaluate(self, env)


def _check(node: ast.AST, depth: int, names: set[str], fields: set[str]) -> None:
    if depth > MAX_DEPTH:
        raise RuleSyntaxError("rule is nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Expression):
        _check(node.body, d, names, fields)
    elif isinstance(node, ast.Constant):
        if not (node.value is None or isinstance(node.value, bool | int | float | str)):
            raise RuleSyntaxError(f"constant of type {type(node.value).__name__} is not allowed")
    elif isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise RuleSyntaxError(f"name {node.id!r} is not allowed (leading underscore)")
        names.add(node.id)
    elif isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id in ROW_NAMES):
            raise RuleSyntaxError("attribute access is only allowed as row.<column> or rows.<column>")
        if node.attr.startswith("_"):
            raise RuleSyntaxError(f"field {node.attr!r} is not allowed (leading underscore)")
        names.add(node.value.id)
        fields.add(node.attr)
    elif isinstance(node, ast.List | ast.Tuple):
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                raise RuleSyntaxError("starred expressions are not allowed")
            _check(elt, d, names, fields)
    elif isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            raise RuleSyntaxError("slices are not allowed")
        _check(node.value, d, names, fields)
        _check(node.slice, d, names, fields)
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINOPS):
            raise RuleSyntaxError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, d, names, fields)
        _check(node.right, d, names, fields)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            raise RuleSyntaxError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, d, names, fields)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, d, names, fields)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if not isinstance(op, _CMPOPS):
                raise RuleSyntaxError(f"comparison {type(op).__name__} is not allowed")
        _check(node.left, d, names, fields)
        for c in node.comparators:
            _check(c, d, names, fields)
    elif isinstance(node, ast.IfExp):
        _check(node.test, d, names, fields)
        _check(node.body, d, names, fields)
        _check(node.orelse, d, names, fields)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise RuleSyntaxError("only the rule functions can be called (no methods)")
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise RuleSyntaxError(f"unknown function {fname!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise RuleSyntaxError(f"{fname}: keyword arguments are not allowed")
        _, lo, hi = FUNCTIONS[fname]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{hi}" if hi is not None else f"at least {lo}"
            raise RuleSyntaxError(f"{fname} takes {want} arguments, got {n}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise RuleSyntaxError("starred arguments are not allowed")
            _check(a, d, names, fields)
    else:
        raise RuleSyntaxError(f"{type(node).__name__} is not allowed in a rule")


@lru_cache(maxsize=4096)
def parse(source: str) -> Rule:
    """Parse and check `source`; raise `RuleSyntaxError` if it is not in the language."""
    if not isinstance(source, str) or not source.strip():
        raise RuleSyntaxError("a rule is a non-empty string")
    if len(source) > MAX_RULE_CHARS:
        raise RuleSyntaxError(f"rule longer than {MAX_RULE_CHARS} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleSyntaxError(f"not an expression: {exc.msg}") from None
    names: set[str] = set()
    fields: set[str] = set()
    _check(tree, 0, names, fields)
    return Rule(source=source, tree=tree, names=frozenset(names), fields=frozenset(fields))


def check(source: str) -> str:
    """Return `source` unchanged if it parses (for pydantic validators), else raise `RuleSyntaxError`."""
    parse(source)
    return source


def _out(x: Any) -> Any:
    """Decimal -> int or float, recursively; a non-finite number (from `1e999` or an infinite input) is an error
    because JSON cannot carry it and no spec means it."""
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise RuleEvalError(f"the rule produced a non-finite number ({x})")
        if x == x.to_integral_value() and x.as_tuple().exponent >= 0:  # type: ignore[operator]
            return int(x)
        return float(x)
    if isinstance(x, list):
        return [_out(v) for v in x]
    if isinstance(x, dict):
        return {k: _out(v) for k, v in x.items()}
    return x


def _in(a: Any, b: Any) -> bool:
    if b is None:
        return False
    if isinstance(b, str):
        if not isinstance(a, str):
            raise RuleEvalError(f"'in' a string needs a string, got {_kind(a)}")
        return a in b
    if isinstance(b, list | dict):
        return a in b
    raise RuleEvalError(f"'in' needs an array, object or string, got {_kind(b)}")


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]):
        self.env = env

    def name(self, n: str) -> Any:
        return _num(self.env.get(n))

    def run(self, node: ast.AST) -> Any:  # noqa: C901 - one dispatch over the whitelisted nodes
        if isinstance(node, ast.Expression):
            return self.run(node.body)
        if isinstance(node, ast.Constant):
            return _num(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.env.get(node.value.id)  # type: ignore[attr-defined]
            if node.value.id == "row":  # type: ignore[attr-defined]
                return _num(base.get(node.attr)) if isinstance(base, Mapping) else None
            rows = base if isinstance(base, Sequence) and not isinstance(base, str) else []
            return [_num(r.get(node.attr)) if isinstance(r, Mapping) else None for r in rows]
        if isinstance(node, ast.List | ast.Tuple):
            return [self.run(e) for e in node.elts]
        if isinstance(node, ast.Subscript):
            return self.index(self.run(node.value), self.run(node.slice))
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.run(node.left), self.run(node.right))
        if isinstance(node, ast.UnaryOp):
            v = self.run(node.operand)
            if isinstance(node.op, ast.Not):
                return not v
            if not _is_number(v):
                raise RuleEvalError(f"unary minus/plus needs a number, got {_kind(v)}")
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            result: Any = None
            for sub in node.values:
                result = self.run(sub)
                if is_and and not result:
                    return result
                if not is_and and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self.run(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.run(comp)
                if not self.compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.run(node.body) if self.run(node.test) else self.run(node.orelse)
        if isinstance(node, ast.Call):
            fn = FUNCTIONS[node.func.id][0]  # type: ignore[attr-defined]
            return _num(fn(*[self.run(a) for a in node.args]))
        raise RuleEvalError(f"{type(node).__name__} cannot be evaluated")  # unreachable after parse

    @staticmethod
    def index(base: Any, key: Any) -> Any:
        if isinstance(base, list):
            if not _is_number(key) or key != key.to_integral_value():
                raise RuleEvalError("array index must be an integer")
            i = int(key)
            return base[i] if -len(base) <= i < len(base) else None
        if isinstance(base, Mapping):
            if not isinstance(key, str):
                raise RuleEvalError("object key must be a string")
            return _num(base.get(key))
        if base is None:
            return None
        raise RuleEvalError(f"cannot index {_kind(base)}")

    @staticmethod
    def binop(op: ast.operator, a: Any, b: Any) -> Any:
        try:
            if isinstance(op, ast.Add):
                if _is_number(a) and _is_number(b) or isinstance(a, str) and isinstance(b, str):
                    return a + b
                if isinstance(a, list) and isinstance(b, list):
                    return a + b
                raise RuleEvalError(f"cannot add {_kind(a)} and {_kind(b)}")
            if not (_is_number(a) and _is_number(b)):
                raise RuleEvalError(f"arithmetic needs numbers, got {_kind(a)} and {_kind(b)}")
            if isinstance(op, ast.Sub):
                return a - b
            if isinstance(op, ast.Mult):
                return a * b
            if isinstance(op, ast.Div):
                return a / b
            if isinstance(op, ast.FloorDiv):
                return a // b
            return a % b
        except (DecimalException, InvalidOperation, ZeroDivisionError) as exc:
            raise RuleEvalError(f"arithmetic error: {type(exc).__name__}") from exc

    @staticmethod
    def compare(op: ast.cmpop, a: Any, b: Any) -> bool:
        if isinstance(op, ast.Eq):
            return bool(a == b)
        if isinstance(op, ast.NotEq):
            return bool(a != b)
        if isinstance(op, ast.Is):
            return a is None and b is None or (a is not None and b is not None and a == b and type(a) is type(b))
        if isinstance(op, ast.IsNot):
            return not _Evaluator.compare(ast.Is(), a, b)
        if isinstance(op, ast.In):
            return _in(a, b)
        if isinstance(op, ast.NotIn):
            return not _in(a, b)
        try:
            if isinstance(op, ast.Lt):
                return bool(a < b)
            if isinstance(op, ast.LtE):
                return bool(a <= b)
            if isinstance(op, ast.Gt):
                return bool(a > b)
            return bool(a >= b)
        except TypeError as exc:
            raise RuleEvalError(f"cannot compare {_kind(a)} with {_kind(b)}") from exc


def evaluate(rule: Rule | str, env: Mapping[str, Any]) -> Any:
    """Evaluate `rule` with names bound by `env` (arguments, `row` mapping, `rows` list of mappings, `now`...).

    Unbound names are `None`. Numbers come back as `int` or `float`. Raises `RuleEvalError` on type errors,
    arithmetic failures (overflow, invalid operation) and non-finite results."""
    r = parse(rule) if isinstance(rule, str) else rule
    try:
        return _out(_Evaluator(env).run(r.tree))
    except RuleError:
        raise
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH keeps trees shallow
        raise RuleEvalError("rule too deep to evaluate") from exc
    except (ArithmeticError, TypeError, ValueError) as exc:
        # Values from callers are arbitrary JSON (huge, infinite, NaN, mixed types): whatever Decimal or Python
        # refuses on them is a failed evaluation of this rule, never an engine crash. ArithmeticError covers
        # decimal.InvalidOperation/Overflow and OverflowError.
        raise RuleEvalError(f"cannot evaluate the rule on these values: {type(exc).__name__}") from exc


def holds(rule: Rule | str, env: Mapping[str, Any]) -> bool:
    """Whether a constraint rule evaluates truthy in `env`."""
    return bool(evaluate(rule, env))
