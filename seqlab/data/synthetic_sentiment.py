"""A generated sentiment task of our own: short movie-review sentences from a small grammar.

The label is ``positive`` or ``negative`` and follows from the words *and their order*, so a bag of
words cannot reach 100%:

* a clause ``<aspect> <copula> [not] [<intensifier>] <adjective>`` has the adjective's polarity,
  flipped by ``not`` ("the plot was not dull" is positive);
* ``I [did not] <verb> <aspect>`` likewise, with verbs such as "loved" and "hated";
* ``<clause> but <clause>`` and ``although <clause>, <clause>`` join clauses of opposite polarity
  and take the polarity of the second: "the plot was dull but the acting was great" is positive,
  and the same words in the other order are negative;
* ``<clause> and <clause>`` joins two clauses of the same polarity.

``builtin:synthetic-sentiment`` (3,000 sentences), ``-dev`` (300) and ``-test`` (300) are disjoint
slices of one seeded list of distinct sentences (:func:`builtin_sentiment_split`).
"""

from __future__ import annotations

import functools
import random

from seqlab.data.synthetic import draw_distinct, split_of

__all__ = ["LABELS", "SENTIMENT_SPLIT_SIZES", "builtin_sentiment_split", "generate_sentiment"]

LABELS = ("negative", "positive")

_ASPECTS = ["the movie", "the film", "the plot", "the acting", "the ending", "the soundtrack", "the story",
            "the cast", "the script", "the dialogue", "the director's work", "the photography"]
_POSITIVE = ["good", "great", "wonderful", "brilliant", "charming", "funny", "moving", "clever", "beautiful",
             "gripping", "fresh", "touching"]
_NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "clumsy", "predictable", "silly", "weak", "tedious",
             "flat", "forgettable"]
_INTENSIFIERS = ["", "", "very", "really", "quite", "truly", "rather"]
_VERBS_POSITIVE = [("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("admired", "admire")]
_VERBS_NEGATIVE = [("hated", "hate"), ("disliked", "dislike"), ("regretted", "regret"), ("resented", "resent")]
"""(past tense, base form)"""

SENTIMENT_SPLIT_SIZES = {"train": 3000, "dev": 300, "test": 300}
_SPLIT_SEED = 20261202


def _clause(rng: random.Random, polarity: int) -> str:
    """A clause whose sentiment is ``polarity`` (+1 positive, -1 negative)."""
    negated = rng.random() < 0.35
    word_polarity = -polarity if negated else polarity
    aspect = rng.choice(_ASPECTS)
    if rng.random() < 0.25:
        past, base = rng.choice(_VERBS_POSITIVE if word_polarity > 0 else _VERBS_NEGATIVE)
        return f"i did not {base} {aspect}" if negated else f"i {past} {aspect}"
    copula = rng.choice(["is", "was"])
    adjective = rng.choice(_POSITIVE if word_polarity > 0 else _NEGATIVE)
    intensifier = rng.choice(_INTENSIFIERS[:4] if negated else _INTENSIFIERS)  # not "not rather"
    words = [aspect, copula, "not" if negated else "", intensifier, adjective]
    return " ".join(w for w in words if w)


def _sentence(rng: random.Random) -> tuple[str, str]:
    polarity = rng.choice([-1, 1])
    form = rng.random()
    if form < 0.4:
        text = _clause(rng, polarity)
    elif form < 0.65:
        text = f"{_clause(rng, -polarity)} but {_clause(rng, polarity)}"
    elif form < 0.8:
        text = f"although {_clause(rng, -polarity)} , {_clause(rng, polarity)}"
    else:
        text = f"{_clause(rng, polarity)} and {_clause(rng, polarity)}"
    return text + " .", LABELS[polarity > 0]


def generate_sentiment(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Draw ``n`` distinct ``(sentence, label)`` pairs, deterministically from ``seed``.

    Args:
        n: number of sentences.
        seed: the same ``(n, seed)`` always gives the same list; a larger ``n`` extends it.

    Returns:
        ``[(sentence, "positive" | "negative"), ...]``, lowercase words separated by spaces.
    """
    return draw_distinct(_sentence, n, seed)


@functools.lru_cache(maxsize=1)
def _all_splits() -> tuple[tuple[str, str], ...]:
    return tuple(generate_sentiment(sum(SENTIMENT_SPLIT_SIZES.values()), seed=_SPLIT_SEED))


def builtin_sentiment_split(name: str) -> list[tuple[str, str]]:
    """The built-in sentiment task: ``"train"`` (3,000), ``"dev"`` (300) or ``"test"`` (300), disjoint."""
    return split_of(_all_splits(), SENTIMENT_SPLIT_SIZES, name)
