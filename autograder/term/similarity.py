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
    code = _statements_without_lone_strings(_raw_tokens(source))
    out: list[Token] = []
    for i, (kind, text, line) in enumerate(code):
        if kind == tokenize.STRING:
            if not out or out[-1].text != STRING:  # implicit concatenation: "a" "b" is one literal
                out.append(Token(STRING, line))
        elif kind == tokenize.NAME:
            after_dot = i > 0 and code[i - 1][1] == "."  # an attribute: pool.map, np.argmax
            out.append(Token(_name(text, bound, after_dot), line))
        elif text == "," and i + 1 < len(code) and code[i + 1][1] in _CLOSING:
            continue  # a trailing comma is layout
        else:
            out.append(Token(text, line))
    return out


def _statements_without_lone_strings(raw: list[tokenize.TokenInfo]) -> list[tuple[int, str, int]]:
    """(type, text, line) of the tokens that carry code: no layout, no statement made only of strings (a
    docstring, or a string standing as a comment), an f-string as one string token."""
    code: list[tuple[int, str, int]] = []
    statement: list[tuple[int, str, int]] = []
    depth = 0  # inside an f-string that Python 3.12+ splits into tokens
    for tok in raw + [None]:
        if tok is None or tok.type == tokenize.NEWLINE or (tok.type == tokenize.OP and tok.string == ";"):
            if not all(kind == tokenize.STRING for kind, _, _ in statement):
                code += statement
            statement = []
            continue
        if _FSTRING_START is not None and tok.type == _FSTRING_START:
            if depth == 0:
                statement.append((tokenize.STRING, "", tok.start[0]))
            depth += 1
        elif depth:
            depth -= tok.type == _FSTRING_END
        elif tok.type not in _LAYOUT:
            statement.append((tok.type, tok.string, tok.start[0]))
    return code


def _name(name: str, bound: set[str] | None, after_dot: bool) -> str:
    if keyword.iskeyword(name) or after_dot:
        return name
    if bound is None:  # the cell does not parse: every name that is not Python's own is the student's
        return name if name in _BUILTINS or keyword.issoftkeyword(name) else BOUND
    return BOUND if name in bound else name  # a soft keyword (match, _) is a name when bound


def _hash(tokens: list[Token]) -> int:
    text = "\x1f".join(t.text for t in tokens).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def kgrams(tokens: list[Token]) -> list[tuple[int, frozenset[int]]]:
    """(hash, the lines its tokens are on) of every run of TOKENS tokens."""
    return [
        (_hash(tokens[i : i + TOKENS]), frozenset(t.line for t in tokens[i : i + TOKENS]))
        for i in range(len(tokens) - TOKENS + 1)
    ]


def winnow(grams: list[tuple[int, frozenset[int]]]) -> dict[int, list[frozenset[int]]]:
    """The fingerprints: each window's smallest hash (the rightmost of equals), with the lines of its tokens."""
    chosen: dict[int, list[frozenset[int]]] = {}
    last = -1
    for start in range(max(1, len(grams) - WINDOW + 1)):
        window = grams[start : start + WINDOW]
        if not window:
            break
        offset = min(range(len(window)), key=lambda j: (window[j][0], -j))
        at = start + offset
        if at != last:
            value, lines = grams[at]
            chosen.setdefault(value, []).append(lines)
            last = at
    return chosen


@dataclass
class Code:
    """One submission's solution cells, ready to compare."""

    student: str
    source: str
    """The cells as submitted, one after the other."""
    fingerprints: dict[int, list[frozenset[int]]] = field(default_factory=dict)
    """Fingerprints beyond the given code, with the lines of ``source`` their tokens are on (comments and
    docstrings between them are not)."""

    @property
    def comparable(self) -> bool:
        return len(self.fingerprints) >= MIN_FINGERPRINTS


def fingerprint(student: str, source: str, given: set[int] = frozenset()) -> Code:
    """``source``'s fingerprints, without any hash found in the ``given`` code (see :func:`given_hashes`)."""
    prints = winnow(kgrams(normalise(source)))
    return Code(student, source, {h: lines for h, lines in prints.items() if h not in given})


def given_hashes(source: str) -> set[int]:
    """Every k-gram hash of the code students were given: none of it is evidence of anything."""
    return {h for h, _ in kgrams(normalise(source))}


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
        """Lines of ``code``'s source holding the tokens of the shared fingerprints."""
        return {line for value in self.shared for lines in code.fingerprints[value] for line in lines}


def ranked_pairs(codes: list[Code]) -> list[Pair]:
    """Every pair of comparable submissions sharing a fingerprint, most similar first."""
    usable = sorted((c for c in codes if c.comparable), key=lambda c: c.student)
    holders = Counter(h for code in usable for h in code.fingerprints)
    pairs = []
    for a, b in combinations(usable, 2):
        shared = a.fingerprints.keys() & b.fingerprints.keys()
        if shared:
            pairs.append(Pair(a, b, set(shared), sum(holders[h] == 2 for h in shared) / len(shared)))
    # Equal to the percent, the pair whose shared code no one else wrote ranks first.
    pairs.sort(key=lambda p: (-round(p.similarity, 2), -p.only_here, p.first.student, p.second.student))
    return pairs


def groups(pairs: list[Pair]) -> list[list[str]]:
    """Students linked by a chain of ``pairs``, largest group first: one shared source behind many pairs."""
    parent: dict[str, str] = {}

    def root(student: str) -> str:
        while parent.setdefault(student, student) != student:
            parent[student] = parent[parent[student]]
            student = parent[student]
        return student

    for pair in pairs:
        parent[root(pair.first.student)] = root(pair.second.student)
    members: dict[str, list[str]] = {}
    for student in sorted(parent):
        members.setdefault(root(student), []).append(student)
    return sorted(members.values(), key=lambda group: (-len(group), group))
