"""Client-supplied sensor-name patterns (``?sensor-list /re/``) that cannot stall the server.

Pure module: no asyncio. A ``/regex/`` argument comes from the network, and
Python's backtracking :mod:`re` engine takes exponential time on patterns such
as ``(.|.)*!``, holding the event loop (and so every client) for seconds or
hours. :func:`compile_sensor_pattern` instead:

1. checks the text is a valid Python regular expression (so invalid patterns
   get :mod:`re`'s own error text, as in aiokatcp 2.x);
2. parses it into a restricted subset of the syntax that has no backtracking
   semantics (see :data:`SUPPORTED`) and refuses anything else with a
   :class:`ValueError` naming the construct;
3. builds a Thompson NFA (at most :data:`MAX_STATES` states) and matches each
   name with a lazily built DFA: the work per character is one dict look-up
   once a transition is cached, and building a transition costs at most the
   NFA size. Every such building step is charged to a budget (``step_budget``
   per compiled pattern, so per request); when it runs out the matcher raises
   :class:`ValueError`, which the server reports as ``fail``.

The result is exactly the :func:`re.search` answer for the supported subset
(``$`` matches only at the very end: sensor names have no newlines). A pattern
that is a plain literal, optionally anchored with ``^``/``$`` (``^rx\\.``,
``temperature``, ``^exact\\.name$``) is matched with :meth:`str.startswith`,
``in``, :meth:`str.endswith` or ``==`` at C speed.

The cost of matching N names of total length L is therefore at most
``O(L)`` dict look-ups plus ``step_budget`` building steps, whatever the
pattern: the default budget is about 50 ms of CPU (measured 0.47 us a step).
"""

from __future__ import annotations

import re
import warnings
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

__all__ = [
    "DEFAULT_STEP_BUDGET",
    "MAX_PATTERN_LENGTH",
    "MAX_STATES",
    "SUPPORTED",
    "InvalidPattern",
    "compile_sensor_pattern",
]

#: Longest pattern accepted (characters between the slashes).
MAX_PATTERN_LENGTH = 1000
#: Largest automaton a pattern may expand to (counted repeats are expanded).
MAX_STATES = 5000
#: Automaton-building steps one compiled pattern may spend across all the names it is
#: matched against (cached transitions are free). One step is about 0.5 us of CPU, so the
#: budget is about 50 ms: a request's pattern cannot hold the loop for 100 ms.
DEFAULT_STEP_BUDGET = 100_000
#: The supported syntax, for documentation and error messages.
SUPPORTED = (
    "literals, '.', character classes ([a-z0-9_], [^...], \\d \\w \\s \\D \\W \\S), "
    "groups ((...), (?:...), (?P<name>...)), '|', '*', '+', '?', {m}, {m,}, {,n}, {m,n} "
    "(lazy forms too), '^', '$', \\A, \\Z"
)

Pred = Callable[[str], bool]
# AST nodes: ("char", pred, literal-or-None), ("cat", [nodes]), ("alt", [nodes]),
# ("rep", node, min, max-or-None), ("bol",), ("eol",)
Node = Tuple[object, ...]

_SPECIAL_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_QUANT_RE = re.compile(r"\{(\d*)(,(\d*))?\}")


_CATEGORIES: Dict[str, Pred] = {
    "d": lambda c: bool(re.match(r"\d", c)),
    "w": lambda c: bool(re.match(r"\w", c)),
    "s": lambda c: bool(re.match(r"\s", c)),
}


class _Parser:
    """Recursive-descent parser for the supported subset of :mod:`re` syntax."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str, pos: Optional[int] = None) -> ValueError:
        where = self.pos if pos is None else pos
        return ValueError(
            f"{what} (at position {where}) is not supported in sensor patterns; "
            f"supported: {SUPPORTED}"
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Node:
        node = self.alternation()
        if self.pos != len(self.text):  # pragma: no cover - re.compile caught it
            raise ValueError(f"unbalanced parenthesis at position {self.pos}")
        return node

    def alternation(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def sequence(self) -> Node:
        items: List[Node] = []
        while self.peek() not in ("", "|", ")"):
            start = self.pos
            atom = self.atom()
            items.append(self.quantified(atom, start))
        return ("cat", items)

    def quantified(self, atom: Node, start: int) -> Node:
        c = self.peek()
        lo: int
        hi: Optional[int]
        if c == "*":
            lo, hi = 0, None
        elif c == "+":
            lo, hi = 1, None
        elif c == "?":
            lo, hi = 0, 1
        elif c == "{":
            m = _QUANT_RE.match(self.text, self.pos)
            if m is None or (not m.group(1) and m.group(2) is None):
                return atom  # a literal "{" (as in re: "{}" and "{x" are not repeats)
            lo = int(m.group(1) or 0)
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            self.pos = m.end() - 1
        else:
            return atom
        self.pos += 1
        if self.peek() == "?":
            self.pos += 1  # lazy: the same set of matching names
        elif self.peek() == "+":
            raise self.error("possessive quantifier")
        if atom[0] in ("bol", "eol"):
            raise self.error("repeated anchor", start)
        if self.peek() in ("*", "+", "?", "{"):
            if self.peek() != "{" or _QUANT_RE.match(self.text, self.pos):
                raise self.error("repeated quantifier")
        return ("rep", atom, lo, hi)

    def atom(self) -> Node:
        c = self.text[self.pos]
        self.pos += 1
        if c == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self.text.startswith("?P<", self.pos):
                end = self.text.index(">", self.pos)
                self.pos = end + 1
            elif self.peek() == "?":
                raise self.error(f"group construct '(?{self.text[self.pos + 1 : self.pos + 2]}'")
            node = self.alternation()
            if self.peek() != ")":  # pragma: no cover - re.compile caught it
                raise ValueError("missing )")
            self.pos += 1
            return node
        if c == "[":
            return self.char_class()
        if c == ".":
            return _DOT
        if c == "^":
            return ("bol",)
        if c == "$":
            return ("eol",)
        if c == "\\":
            return self.escape(in_class=False)
        return _literal(c)

    def escape(self, in_class: bool) -> Node:
        start = self.pos - 1
        c = self.text[self.pos]
        self.pos += 1
        if c in _CATEGORIES:
            return ("char", _CATEGORIES[c], None)
        if c.lower() in _CATEGORIES:
            inner = _CATEGORIES[c.lower()]
            return ("char", lambda ch: not inner(ch), None)
        if c in _SPECIAL_ESCAPES:
            return _literal(_SPECIAL_ESCAPES[c])
        if not in_class and c == "A":
            return ("bol",)
        if not in_class and c == "Z":
            return ("eol",)
        if c == "x":
            value = self.text[self.pos : self.pos + 2]
            self.pos += 2
            return _literal(chr(int(value, 16)))
        if c.isalnum():
            raise self.error(f"escape '\\{c}'", start)
        return _literal(c)

    def char_class(self) -> Node:
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        chars: List[str] = []
        ranges: List[Tuple[str, str]] = []
        preds: List[Pred] = []
        first = True
        while first or self.peek() != "]":
            first = False
            c = self.text[self.pos]
            self.pos += 1
            if c == "\\":
                node = self.escape(in_class=True)
                if node[2] is None:
                    preds.append(node[1])  # type: ignore[arg-type]
                    continue
                c = str(node[2])
            elif c == "[" and self.peek() in (":", "=", "."):
                raise self.error("POSIX class", self.pos - 1)
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                hi = self.text[self.pos]
                self.pos += 1
                if hi == "\\":
                    node = self.escape(in_class=True)
                    if node[2] is None:  # pragma: no cover - re.compile caught it
                        raise ValueError("bad character range")
                    hi = str(node[2])
                ranges.append((c, hi))
            else:
                chars.append(c)
        self.pos += 1
        charset = frozenset(chars)

        def pred(ch: str) -> bool:
            hit = (
                ch in charset
                or any(lo <= ch <= hi for lo, hi in ranges)
                or any(p(ch) for p in preds)
            )
            return hit != negated

        return ("char", pred, None)


def _not_newline(c: str) -> bool:
    return c != "\n"


_DOT: Node = ("char", _not_newline, None)


def _literal(c: str) -> Node:
    return ("char", c.__eq__, c)


# -- automaton ------------------------------------------------------------------------------

_CONSUME, _EPS, _BOL, _EOL, _MATCH = range(5)


class _NFA:
    def __init__(self) -> None:
        self.kind: List[int] = []
        self.pred: List[Optional[Pred]] = []
        self.outs: List[List[int]] = []

    def new(self, kind: int, outs: List[int], pred: Optional[Pred] = None) -> int:
        if len(self.kind) >= MAX_STATES:
            raise ValueError(
                f"pattern is too complex (more than {MAX_STATES} automaton states); "
                "use fewer or smaller counted repeats"
            )
        self.kind.append(kind)
        self.pred.append(pred)
        self.outs.append(outs)
        return len(self.kind) - 1

    def build(self, node: Node, nxt: int) -> int:
        """Add states for `node` leading to `nxt`; return the entry state."""
        kind = node[0]
        if kind == "char":
            return self.new(_CONSUME, [nxt], node[1])  # type: ignore[arg-type]
        if kind == "cat":
            for child in reversed(node[1]):  # type: ignore[call-overload]
                nxt = self.build(child, nxt)
            return nxt
        if kind == "alt":
            return self.new(_EPS, [self.build(child, nxt) for child in node[1]])  # type: ignore[attr-defined]
        if kind == "bol":
            return self.new(_BOL, [nxt])
        if kind == "eol":
            return self.new(_EOL, [nxt])
        child, lo, hi = node[1], node[2], node[3]
        assert isinstance(lo, int)
        if hi is None:
            loop = self.new(_EPS, [])
            self.outs[loop] = [self.build(child, loop), nxt]  # type: ignore[arg-type]
            tail = loop
        else:
            assert isinstance(hi, int)
            tail = nxt
            for _ in range(hi - lo):
                tail = self.new(_EPS, [self.build(child, tail), nxt])  # type: ignore[arg-type]
        for _ in range(lo):
            tail = self.build(child, tail)  # type: ignore[arg-type]
        return tail


class _DState:
    __slots__ = ("accept_at_end", "accepting", "consuming", "dead", "eols", "trans")

    def __init__(self, consuming: Tuple[int, ...], eols: Tuple[int, ...], accepting: bool) -> None:
        self.consuming = consuming
        self.eols = eols
        self.accepting = accepting
        self.accept_at_end = accepting
        self.dead = False
        self.trans: Dict[str, _DState] = {}


class _Matcher:
    """``re.search`` over one NFA through a lazily built, budgeted DFA."""

    def __init__(self, nfa: _NFA, start: int, budget: int) -> None:
        self.nfa = nfa
        self.budget = budget
        self.initial_budget = budget
        self.cache: Dict[FrozenSet[int], _DState] = {}
        self.start_rest = self.closure([start], bol=False, eol=False)
        self.start = self.state(self.closure([start], bol=True, eol=False), at_start=True)

    def charge(self, steps: int) -> None:
        self.budget -= steps
        if self.budget < 0:
            raise ValueError(
                "pattern needs too much work to match the sensor names "
                f"(more than {self.initial_budget} automaton steps); use a simpler pattern"
            )

    def closure(self, seeds: Sequence[int], bol: bool, eol: bool) -> FrozenSet[int]:
        """States reachable by epsilon moves (assertions allowed as given)."""
        kind = self.nfa.kind
        outs = self.nfa.outs
        seen = set()
        result = set()
        stack = list(seeds)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            k = kind[s]
            if k == _EPS or (k == _BOL and bol) or (k == _EOL and eol):
                stack.extend(outs[s])
            elif k != _BOL:
                result.add(s)  # consuming, match, or an EOL waiting for the end
        self.charge(len(seen) + 1)
        return frozenset(result)

    def state(self, states: FrozenSet[int], at_start: bool = False) -> _DState:
        key = states
        cached = None if at_start else self.cache.get(key)
        if cached is not None:
            return cached
        kind = self.nfa.kind
        consuming = tuple(sorted(s for s in states if kind[s] == _CONSUME))
        eols = tuple(s for s in states if kind[s] == _EOL)
        dstate = _DState(consuming, eols, any(kind[s] == _MATCH for s in states))
        if eols and not dstate.accepting:
            seeds = [out for s in eols for out in self.nfa.outs[s]]
            end = self.closure(seeds, bol=at_start, eol=True)
            dstate.accept_at_end = any(kind[s] == _MATCH for s in end)
        dstate.dead = not consuming and not self.start_rest and not dstate.accept_at_end
        if not at_start:
            self.cache[key] = dstate
        return dstate

    def step(self, dstate: _DState, c: str) -> _DState:
        pred = self.nfa.pred
        outs = self.nfa.outs
        self.charge(len(dstate.consuming))
        targets = [outs[s][0] for s in dstate.consuming if pred[s](c)]  # type: ignore[misc]
        nxt = self.state(self.closure(targets, bol=False, eol=False) | self.start_rest)
        dstate.trans[c] = nxt
        return nxt

    def __call__(self, name: str) -> bool:
        dstate = self.start
        if dstate.accepting:
            return True
        for c in name:
            nxt = dstate.trans.get(c)
            dstate = self.step(dstate, c) if nxt is None else nxt
            if dstate.accepting:
                return True
            if dstate.dead:
                return False
        return dstate.accept_at_end


def _literal_form(node: Node) -> Optional[Tuple[bool, str, bool]]:
    """``(anchored_start, text, anchored_end)`` if `node` is an (anchored) literal."""
    items = list(node[1]) if node[0] == "cat" else [node]  # type: ignore[call-overload]
    bol = bool(items) and items[0][0] == "bol"
    if bol:
        items = items[1:]
    eol = bool(items) and items[-1][0] == "eol"
    if eol:
        items = items[:-1]
    # ``.*`` at an unanchored end changes nothing for a search.
    while not eol and items and _is_dot_star(items[-1]):
        items = items[:-1]
    while not bol and items and _is_dot_star(items[0]):
        items = items[1:]
    if not all(item[0] == "char" and item[2] is not None for item in items):
        return None
    return bol, "".join(str(item[2]) for item in items), eol


def _is_dot_star(node: Node) -> bool:
    return node[0] == "rep" and node[1] is _DOT and node[2] == 0 and node[3] is None


class InvalidPattern(ValueError):
    """The pattern is not a valid Python regular expression (text: :mod:`re`'s message)."""


def compile_sensor_pattern(
    text: str, *, step_budget: int = DEFAULT_STEP_BUDGET
) -> Callable[[str], bool]:
    """Compile the body of a client's ``/regex/`` into a safe name matcher.

    Parameters
    ----------
    text
        The pattern without its slashes (Python :mod:`re` syntax, the subset
        in :data:`SUPPORTED`).
    step_budget
        Automaton-building steps the matcher may spend in total; bounds the
        CPU one request can take whatever the pattern.

    Returns
    -------
    matcher
        ``matcher(name)`` is ``re.search(text, name) is not None``. It raises
        :class:`ValueError` if the pattern needs more than `step_budget`
        steps for the names it is given.

    Raises
    ------
    ValueError
        for an invalid pattern (the :mod:`re` error text), one that is too long
        or too large, or one using an unsupported construct (named in the text)
    """
    if len(text) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"pattern is too long ({len(text)} characters; at most {MAX_PATTERN_LENGTH})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. FutureWarning for "[[": the client's problem
            re.compile(text)
    except re.error as exc:
        raise InvalidPattern(str(exc)) from None
    node = _Parser(text).parse()
    literal = _literal_form(node)
    if literal is not None:
        bol, lit, eol = literal
        if bol and eol:
            return lit.__eq__
        if bol:
            return lambda name: name.startswith(lit)
        if eol:
            return lambda name: name.endswith(lit)
        return lambda name: lit in name
    nfa = _NFA()
    match = nfa.new(_MATCH, [])
    start = nfa.build(node, match)
    return _Matcher(nfa, start, step_budget)
