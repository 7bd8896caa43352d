"""Near-identical solutions: fingerprints of the graded cells that comments, names and layout do not change.

Each submission's solution cells (grade_id ``evolve_serial`` and ``evolve_parallel``) become a
stream of tokens without comments, docstrings or layout, in which every name the cells bind
(variables, parameters, helper functions, import aliases) is one placeholder and every string
literal another. The names they use from elsewhere (``np``, ``Pool``, ``episode``, ``range``)
stay: they carry the algorithm, and no renaming can change them. The stream's k-grams are hashed
and winnowed (Schleimer, Wilkerson and Aiken, SIGMOD 2003): the smallest hash of every window of
``WINDOW`` consecutive k-grams is kept, so any run of ``TOKENS + WINDOW - 1`` shared tokens is
found. Fingerprints of the code every student was given (the release's stubs) are dropped, so two
untouched stubs match nothing.

A pair's similarity is the share of each side's fingerprints found in the other, averaged: a
renamed, recommented and reformatted copy scores 1.0; a copy padded with as much code again
scores about 0.75.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import keyword
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

TOKENS = 8
"""Tokens per k-gram: shorter runs (``np . random . default_rng ( V )``) are what any solution writes."""
WINDOW = 4
"""k-grams per winnowing window: a shared run of TOKENS + WINDOW - 1 = 11 tokens is always found."""
MIN_FINGERPRINTS = 6
"""A submission with fewer fingerprints of its own (beyond the given code) has too little to compare."""
THRESHOLD = 0.8
"""Similarity from which a pair is shown side by side."""

BOUND = "V"
"""What every name the cells bind becomes."""
STRING = "S"
"""What every string literal becomes."""

_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
_LAYOUT.add(tokenize.ENCODING)
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12 splits f-strings into tokens
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_BUILTINS = frozenset(dir(builtins))
_CLOSING = {")", "]", "}"}


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    """1-based line of the source the token starts on."""


def bound_names(source: str) -> set[str] | None:
    """Every name ``source`` binds (assigned, parameters, defined, imported, caught), or None if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _raw_tokens(source: str) -> list[tokenize.TokenInfo]:
    """The tokens of ``source``, as far as it can be read (a cell that stops mid-string keeps what came before)."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def normalise(source: str) -> list[Token]:
    """``source`` as tokens free of comments, docstrings, layout, the student's names and string contents."""
    bound = bound_names(source)
    raw = _raw_tokens(source)
    out: list[Token] = []
    fstring_depth = 0
    for i, tok in enumerate(raw):
        if tok.type in _LAYOUT:
            continue
        if _FSTRING_START is not None and tok.type == _FSTRING_START:
            if fstring_depth == 0:
                out.append(Token(STRING, tok.start[0]))
            fstring_depth += 1
            continue
        if fstring_depth:
            fstring_depth -= tok.type == _FSTRING_END
            continue
        if tok.type == tokenize.STRING:
            if _is_statement(raw, i):  # a docstring, or a string standing as a comment
                continue
            if out and out[-1].text == STRING:  # implicit concatenation: "a" "b" is one literal
                continue
            out.append(Token(STRING, tok.start[0]))
        elif tok.type == tokenize.NAME:
            out.append(Token(_name(tok.string, raw, i, bound), tok.start[0]))
        elif tok.type == tokenize.OP and tok.string == "," and _next_text(raw, i) in _CLOSING:
            continue  # a trailing comma is layout
        else:
            out.append(Token(tok.string, tok.start[0]))
    return out


def _name(name: str, raw: list[tokenize.TokenInfo], i: int, bound: set[str] | None) -> str:
    if keyword.iskeyword(name) or _previous_text(raw, i) == ".":  # an attribute: pool.map, np.argmax
        return name
    if bound is None:  # the cell does not parse: every name that is not Python's own is the student's
        return name if name in _BUILTINS or keyword.issoftkeyword(name) else BOUND
    return BOUND if name in bound else name  # a soft keyword (match, _) is a name when bound


def _previous_text(raw: list[tokenize.TokenInfo], i: int) -> str:
    for tok in reversed(raw[:i]):
        if tok.type not in _LAYOUT:
            return tok.string
    return ""


def _next_text(raw: list[tokenize.TokenInfo], i: int) -> str:
    for tok in raw[i + 1 :]:
        if tok.type not in _LAYOUT or tok.type == tokenize.NEWLINE:
            return tok.string
    return ""


def _is_statement(raw: list[tokenize.TokenInfo], i: int) -> bool:
    """The string at ``i`` is a whole statement (nothing before it on its logical line, nothing after but strings)."""
    before = next((t for t in reversed(raw[:i]) if t.type not in (tokenize.NL, tokenize.COMMENT)), None)
    if before is not None and before.type not in (
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
    ):
        return before.type == tokenize.STRING and _is_statement(raw, raw.index(before))
    for tok in raw[i + 1 :]:
        if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.STRING):
            continue
        return tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.DEDENT) or tok.string == ";"
    return True


def _hash(tokens: list[Token]) -> int:
    text = "\x1f".join(t.text for t in tokens).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def kgrams(tokens: list[Token]) -> list[tuple[int, int, int]]:
    """(hash, first line, last line) of every run of TOKENS tokens."""
    return [
        (_hash(tokens[i : i + TOKENS]), tokens[i].line, tokens[i + TOKENS - 1].line)
        for i in range(len(tokens) - TOKENS + 1)
    ]


def winnow(grams: list[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """The fingerprints: each window's smallest hash (the rightmost of equals), with the lines it spans."""
    chosen: dict[int, list[tuple[int, int]]] = {}
    last = -1
    for start in range(max(1, len(grams) - WINDOW + 1)):
        window = grams[start : start + WINDOW]
        if not window:
            break
        offset = min(range(len(window)), key=lambda j: (window[j][0], -j))
        at = start + offset
        if at != last:
            value, first, final = grams[at]
            chosen.setdefault(value, []).append((first, final))
            last = at
    return chosen


@dataclass
class Code:
    """One submission's solution cells, ready to compare."""

    student: str
    source: str
    """The cells as submitted, one after the other."""
    fingerprints: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    """Fingerprints beyond the given code, with the lines of ``source`` each spans."""

    @property
    def comparable(self) -> bool:
        return len(self.fingerprints) >= MIN_FINGERPRINTS


def fingerprint(student: str, source: str, given: set[int] = frozenset()) -> Code:
    """``source``'s fingerprints, without any hash found in the ``given`` code (see :func:`given_hashes`)."""
    prints = winnow(kgrams(normalise(source)))
    return Code(student, source, {h: lines for h, lines in prints.items() if h not in given})


def given_hashes(source: str) -> set[int]:
    """Every k-gram hash of the code students were given: none of it is evidence of anything."""
    return {h for h, _, _ in kgrams(normalise(source))}


@dataclass
class Pair:
    first: Code
    second: Code
    shared: set[int]
    only_here: float = 0.0
    """Share of the shared fingerprints that no third submission has: code the two wrote and no one else did."""

    @property
    def first_in_second(self) -> float:
        """Share of the first's fingerprints found in the second's code."""
        return len(self.shared) / len(self.first.fingerprints)

    @property
    def second_in_first(self) -> float:
        return len(self.shared) / len(self.second.fingerprints)

    @property
    def similarity(self) -> float:
        return (self.first_in_second + self.second_in_first) / 2

    def lines(self, code: Code) -> set[int]:
        """Lines of ``code``'s source that the shared fingerprints span."""
        out = set()
        for value in self.shared:
            for first, last in code.fingerprints[value]:
                out.update(range(first, last + 1))
        return out


def ranked_pairs(codes: list[Code]) -> list[Pair]:
    """Every pair of comparable submissions sharing a fingerprint, most similar first (ties by student ids)."""
    usable = sorted((c for c in codes if c.comparable), key=lambda c: c.student)
    holders = Counter(h for code in usable for h in code.fingerprints)
    pairs = []
    for a, b in combinations(usable, 2):
        shared = a.fingerprints.keys() & b.fingerprints.keys()
        if shared:
            pairs.append(Pair(a, b, set(shared), sum(holders[h] == 2 for h in shared) / len(shared)))
    pairs.sort(key=lambda p: (-p.similarity, p.first.student, p.second.student))
    return pairs
