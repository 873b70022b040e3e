"""A formula parser over openpyxl's tokenizer (the same Excel tokenizer lineage xlcalculator's parser uses).

Why not xlcalculator's `FormulaParser`: importing it imports xlcalculator's whole package (pandas, scipy: ~1 s of
start-up, most of the time budget of grading one 5,000-cell workbook), and its shunting yard drops missing
arguments (`PMT(r,n,pv,,1)`). Precedence follows Excel: negation binds tighter than `^` (-2^2 = 4), then `%`,
`^`, `* /`, `+ -`, `&`, comparisons; all binary operators are left-associative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError

from .operands import XLError
from .values import ERROR_CODES


class ParseError(ValueError):
    """Formula text that is not a well-formed Excel formula."""


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class Ref:
    address: str


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Infix:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Prefix:
    op: str
    operand: Any


@dataclass(frozen=True, slots=True)
class Postfix:
    op: str
    operand: Any


@dataclass(frozen=True, slots=True)
class ArrayLit:
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Missing:
    """An omitted argument (`PMT(r, n, pv, , 1)`)."""


PRECEDENCE = {"^": 5, "*": 4, "/": 4, "+": 3, "-": 3, "&": 2, "=": 1, "<>": 1, "<": 1, ">": 1, "<=": 1, ">=": 1}


def literal(token: Token) -> Any:
    value, subtype = token.value, token.subtype
    if subtype == Token.TEXT:
        return value[1:-1].replace('""', '"')
    if subtype == Token.LOGICAL:
        return value.upper() == "TRUE"
    if subtype == Token.ERROR:
        return XLError(value.upper()) if value.upper() in ERROR_CODES else XLError("#VALUE!")
    if subtype == Token.NUMBER:
        number = float(value)
        return int(number) if number.is_integer() and not any(c in value for c in ".eE") else number
    raise ParseError(f"unexpected operand {value!r}")


class _Parser:
    def __init__(self, formula: str) -> None:
        text = formula if formula.startswith("=") else "=" + formula
        try:
            items = Tokenizer(text).items
        except (TokenizerError, ValueError, IndexError) as exc:
            raise ParseError(str(exc)) from None
        self.tokens = [t for t in items if t.type != Token.WSPACE]
        self.position = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise ParseError("formula ends too early")
        self.position += 1
        return token

    def parse(self) -> Any:
        if not self.tokens:
            raise ParseError("empty formula")
        node = self.expression(0)
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().value!r}")  # type: ignore[union-attr]
        return node

    def expression(self, floor: int) -> Any:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token.type != Token.OP_IN:
                if token is not None and token.type == Token.OPERAND:
                    raise ParseError(f"missing operator before {token.value!r} (range intersection is not supported)")
                return left
            precedence = PRECEDENCE.get(token.value)
            if precedence is None:
                raise ParseError(f"operator {token.value!r} is not supported")
            if precedence < floor:
                return left
            self.take()
            left = Infix(token.value, left, self.expression(precedence + 1))

    def unary(self) -> Any:
        # Signs are collected in a loop, not by recursion: '=' followed by thousands of '-' must not exhaust the
        # stack. Negation binds tighter than '%' and '^' is handled by the caller, so the result is the same tree.
        signs: list[str] = []
        while (token := self.peek()) is not None and token.type == Token.OP_PRE:
            self.take()
            signs.append(token.value)
        node = self.primary()
        while (token := self.peek()) is not None and token.type == Token.OP_POST:
            self.take()
            node = Postfix(token.value, node)
        for sign in reversed(signs):
            node = Prefix(sign, node)
        return node

    def primary(self) -> Any:
        token = self.take()
        if token.type == Token.OPERAND:
            return Ref(token.value) if token.subtype == Token.RANGE else Lit(literal(token))
        if token.type == Token.FUNC and token.subtype == Token.OPEN:
            return Func(token.value[:-1], self.arguments())
        if token.type == Token.PAREN and token.subtype == Token.OPEN:
            node = self.expression(0)
            closing = self.take()
            if closing.type != Token.PAREN or closing.subtype != Token.CLOSE:
                raise ParseError(f"expected ')' but found {closing.value!r}")
            return node
        if token.type == Token.ARRAY and token.subtype == Token.OPEN:
            return self.array()
        raise ParseError(f"unexpected {token.value!r}")

    def arguments(self) -> tuple[Any, ...]:
        args: list[Any] = []
        token = self.peek()
        if token is not None and token.type == Token.FUNC and token.subtype == Token.CLOSE:
            self.take()
            return ()
        while True:
            token = self.peek()
            if token is None:
                raise ParseError("unclosed function call")
            if (token.type == Token.SEP and token.subtype == Token.ARG) or (
                token.type == Token.FUNC and token.subtype == Token.CLOSE
            ):
                args.append(Missing())
            else:
                args.append(self.expression(0))
            token = self.take()
            if token.type == Token.FUNC and token.subtype == Token.CLOSE:
                return tuple(args)
            if not (token.type == Token.SEP and token.subtype == Token.ARG):
                raise ParseError(f"expected ',' or ')' but found {token.value!r}")

    def array(self) -> ArrayLit:
        rows: list[list[Any]] = [[]]
        while True:
            token = self.take()
            if token.type == Token.ARRAY and token.subtype == Token.CLOSE:
                break
            if token.type == Token.SEP:
                if token.subtype == Token.ROW:
                    rows.append([])
                continue
            sign = 1
            if token.type == Token.OP_PRE:
                sign = -1 if token.value == "-" else 1
                token = self.take()
            if token.type != Token.OPERAND or token.subtype == Token.RANGE:
                raise ParseError("array constants hold only numbers, text, logicals and errors")
            value = literal(token)
            rows[-1].append(-value if sign < 0 and isinstance(value, (int, float)) else value)
        if len({len(row) for row in rows}) != 1 or not rows[0]:
            raise ParseError("array constant rows differ in length")
        return ArrayLit(tuple(tuple(row) for row in rows))


def parse(formula: str) -> Any:
    """The syntax tree of a formula ('=' optional)."""
    return _Parser(formula).parse()
