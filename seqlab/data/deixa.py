"""The courses' Word2Vec example as a corpus: "deixa o menino jogar / deixa o moleque jogar / deixa o piá jogar".

menino, moleque and piá (three Brazilian Portuguese words for "boy") never occur together, but
they occur in the same contexts, so skip-gram gives them similar vectors: each one's nearest
neighbours are the other two. This generator writes those three sentences and more like them from
a small grammar of our own: the boys play, run and are called home; animals, food and places
appear in contexts of their own, so being near the boys means sharing the boys' contexts and
not merely being a noun. Deterministic in ``seed``; no download.
"""

from __future__ import annotations

import random

__all__ = ["BOYS", "generate_deixa_sentences"]

BOYS = ("menino", "moleque", "piá")
_PLAY = ("jogar", "brincar", "correr", "nadar")
_ANIMALS = ("cachorro", "gato", "cavalo")
_ANIMAL_DO = ("dorme", "come", "late", "descansa")
_FOOD = ("pão", "bolo", "arroz", "feijão")
_PLACES = ("praia", "feira", "padaria", "igreja")
_PEOPLE = ("mãe", "avó", "tia", "vizinha")

_TEMPLATES = (
    lambda r: f"deixa o {r.choice(BOYS)} {r.choice(_PLAY)}",
    lambda r: f"o {r.choice(BOYS)} quer {r.choice(_PLAY)} na rua",
    lambda r: f"chama o {r.choice(BOYS)} para {r.choice(_PLAY)}",
    lambda r: f"a {r.choice(_PEOPLE)} chamou o {r.choice(BOYS)} para casa",
    lambda r: f"o {r.choice(_ANIMALS)} {r.choice(_ANIMAL_DO)} no quintal",
    lambda r: f"dá água ao {r.choice(_ANIMALS)} velho",
    lambda r: f"a {r.choice(_PEOPLE)} comprou {r.choice(_FOOD)} na {r.choice(_PLACES)}",
    lambda r: f"come o {r.choice(_FOOD)} quente",
    lambda r: f"vamos à {r.choice(_PLACES)} amanhã cedo",
    lambda r: f"a {r.choice(_PLACES)} fica longe daqui",
)


def generate_deixa_sentences(n: int = 2000, *, seed: int = 0) -> list[str]:
    """The three course sentences, then ``n - 3`` generated ones.

    Args:
        n: how many sentences in all (at least 3).
        seed: seed of the generator.

    Returns:
        ``n`` lowercase sentences, words separated by single spaces.
    """
    if n < 3:
        raise ValueError(f"n must be at least 3 (the three course sentences), got {n}")
    rng = random.Random(seed)
    course = [f"deixa o {boy} jogar" for boy in BOYS]
    return course + [rng.choice(_TEMPLATES)(rng) for _ in range(n - 3)]
