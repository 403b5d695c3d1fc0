"""Knowledge-base retrieval over an agent's entries: BM25 (``bm25s``, numpy only) on simply normalised tokens.

Lower-cased words, English stop words dropped, a light suffix stripper ("hours" -> "hour", "opening" -> "open")
so that a spoken question matches the written entry. Each entry is indexed as its title (twice: a title is
the best summary) plus its content.

BM25 ranks; the threshold is on *coverage*: the share of the question's content words found in the entry
(at least ``min_coverage``), plus an optional floor on the BM25 score. An absolute BM25 floor alone does not
work on a knowledge base of a handful of entries: the IDF of a word found in the only entry is ~0.3, below the
score of an incidental match in a larger base. Unrelated questions share no content word and return nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import bm25s
import numpy as np

from voice.agent_config import KnowledgeEntry

DEFAULT_MIN_COVERAGE = 0.3
DEFAULT_MIN_SCORE = 0.0

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own please same she should so some such
    than that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    yourselves tell know like want need get got thanks thank hi hello hey okay ok yes yeah um uh well also may
    might must shall whats wheres whens hows im ive id youre dont doesnt cant wont isnt arent
    """.split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A tiny, deterministic suffix stripper (enough to match spoken plurals and -ing/-ed forms)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case words minus stop words, stemmed; apostrophes are dropped ("what's" -> "whats")."""
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    return [stem(w) for w in words if w not in STOPWORDS]


class KnowledgeBase:
    """BM25 over the entries; ``search`` returns ``(entry, score)`` best first, relevant ones only."""

    def __init__(
        self,
        entries: Iterable[KnowledgeEntry],
        *,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> None:
        self.entries: tuple[KnowledgeEntry, ...] = tuple(entries)
        self.min_coverage = min_coverage
        self.min_score = min_score
        self._retriever: bm25s.BM25 | None = None
        corpus = [tokenize(f"{e.title} {e.title} {e.content}") for e in self.entries]
        self._vocab = [frozenset(tokens) for tokens in corpus]
        if self.entries:
            self._retriever = bm25s.BM25()
            self._retriever.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, query: str, k: int = 3) -> list[tuple[KnowledgeEntry, float]]:
        tokens = tokenize(query)
        if self._retriever is None or not tokens or k <= 0:
            return []
        scores = np.asarray(self._retriever.get_scores(tokens), dtype=float)
        # Stable order: best score first, the earlier entry first on a tie (deterministic answers).
        order = sorted(range(len(self.entries)), key=lambda i: (-scores[i], i))
        wanted = set(tokens)
        return [
            (self.entries[i], round(float(scores[i]), 6))
            for i in order[:k]
            if scores[i] > 0
            and scores[i] >= self.min_score
            and len(wanted & self._vocab[i]) / len(wanted) >= self.min_coverage
        ]

    def best(self, query: str) -> KnowledgeEntry | None:
        found = self.search(query, k=1)
        return found[0][0] if found else None


def format_results(results: Sequence[tuple[KnowledgeEntry, float]]) -> str:
    """Search results as plain text for an LLM (the ``lookup_knowledge`` tool's output)."""
    if not results:
        return "No matching entry in the knowledge base."
    return "\n\n".join(f"{entry.title}: {entry.content}" if entry.title else entry.content for entry, _ in results)
