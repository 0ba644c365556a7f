"""A small query language for topic filters, and its evaluation (pure).

::

    llama                      the text mentions llama (any form: llamas, Llama's)
    "open weights"             the phrase, words in this order
    meta llama                 both (AND is implied between terms)
    meta AND (llama OR "open source")
    llama NOT cpp              NOT, or a leading minus: llama -cpp
    ميتا OR meta               any script; case and Arabic letter forms are folded

Precedence: NOT binds tightest, then AND (explicit or implied), then OR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archiver.claims.textkeys import keys, words
from store.errors import UsageError

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|(-)(?=\S)|([^\s()"]+))')


@dataclass(frozen=True)
class Term:
    phrase: tuple[str, ...]  # folded words


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or


def parse(query: str) -> Node:
    """Parse a topic query; a malformed one is a ``UsageError`` that says where."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = query.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(
                f"topic {query!r}: cannot read from {text[pos:]!r} (unbalanced quote?)"
            )
        pos = m.end()
        lpar, rpar, quoted, minus, word = m.groups()
        if lpar:
            tokens.append(("(", "("))
        elif rpar:
            tokens.append((")", ")"))
        elif quoted is not None:
            tokens.append(("term", quoted))
        elif minus:
            tokens.append(("not", "-"))
        elif word in ("AND", "OR", "NOT"):
            tokens.append((word.lower(), word))
        else:
            tokens.append(("term", word))
    if not tokens:
        raise UsageError("topic query is empty; give at least one word")
    parser = _Parser(tokens, query)
    node = parser.or_()
    if parser.i != len(tokens):
        raise UsageError(f"topic {query!r}: unexpected {tokens[parser.i][1]!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], query: str):
        self.tokens, self.query, self.i = tokens, query, 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def or_(self) -> Node:
        children = [self.and_()]
        while self.peek() == "or":
            self.i += 1
            children.append(self.and_())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_(self) -> Node:
        children = [self.not_()]
        while self.peek() in ("and", "term", "not", "("):
            if self.peek() == "and":
                self.i += 1
            children.append(self.not_())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_(self) -> Node:
        if self.peek() == "not":
            self.i += 1
            return Not(self.not_())
        return self.atom()

    def atom(self) -> Node:
        kind = self.peek()
        if kind == "(":
            self.i += 1
            node = self.or_()
            if self.peek() != ")":
                raise UsageError(f"topic {self.query!r}: missing ')'")
            self.i += 1
            return node
        if kind == "term":
            value = self.tokens[self.i][1]
            self.i += 1
            phrase = tuple(words(value))
            if not phrase:
                raise UsageError(f"topic {self.query!r}: {value!r} has no words")
            return Term(phrase)
        found = self.tokens[self.i][1] if kind else "the end"
        raise UsageError(f"topic {self.query!r}: expected a word or phrase, found {found!r}")


def matches(node: Node, text: str) -> bool:
    """Whether ``text`` satisfies the query."""
    keyed = [keys(w) for w in words(text)]
    return _eval(node, keyed)


def _eval(node: Node, keyed: list[frozenset[str]]) -> bool:
    if isinstance(node, Term):
        first = keys(node.phrase[0])
        rest = [keys(w) for w in node.phrase[1:]]
        for i, k in enumerate(keyed):
            if k & first and all(
                i + 1 + j < len(keyed) and keyed[i + 1 + j] & r for j, r in enumerate(rest)
            ):
                return True
        return False
    if isinstance(node, Not):
        return not _eval(node.child, keyed)
    if isinstance(node, And):
        return all(_eval(c, keyed) for c in node.children)
    return any(_eval(c, keyed) for c in node.children)


def positive_terms(node: Node) -> list[Term]:
    """The terms that count in favour (not under a NOT), for 'uncertain' entries."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for c in node.children for t in positive_terms(c)]
