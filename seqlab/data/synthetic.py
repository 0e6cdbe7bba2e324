"""Embedded English-Portuguese demo corpus, generated from a small grammar of our own.

A smoke-demo corpus, not real language data: every pair comes from a hand-written grammar (a
few hundred words, Brazilian Portuguese), so ``seqlab train`` runs with no download. The
translations are exact by construction; BLEU on them says nothing about real translation.

The grammar covers names with gender, the pronouns I/you/he/she/we/they (eu/você/ele/ela/nós/
eles) and people ("my sister" -> "a minha irmã") conjugated in their person; four tenses
("visits" -> "visita", "is visiting" -> "está visitando", "visited" -> "visitou", "will visit" ->
"vai visitar") of regular and a few irregular verbs; negation ("does not" -> "não") and yes/no
questions, which keep the statement's word order in Portuguese ("Is Lucas visiting Chile?" ->
"Lucas está visitando o Chile?"); places with their article contracted with a preposition ("no
Chile", "na França", "em Portugal", "para o Brasil", "dos Estados Unidos"), months and days ("em
janeiro", "na segunda-feira", "aos domingos"); noun phrases that agree in gender and number with
the adjective after the noun ("the red cars" -> "os carros vermelhos", "two old houses" -> "duas
casas velhas", "his car" -> "o carro dele"); ser/estar with adjectives ("Maria is tired." ->
"Maria está cansada.") and locations ("The book is on the table." -> "O livro está na mesa.").

Example:
    >>> render_event("Lucas", "visit", "Chile", tense="progressive", time="in January")
    ('Lucas is visiting Chile in January.', 'Lucas está visitando o Chile em janeiro.')
    >>> render_event("Maria", "buy", NP("car", det="two", adj="red"), tense="past")
    ('Maria bought two red cars.', 'Maria comprou dois carros vermelhos.')
"""

from __future__ import annotations

import functools
import random
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "MOODS",
    "NP",
    "SPLIT_SIZES",
    "TENSES",
    "builtin_split",
    "draw_distinct",
    "generate_pairs",
    "render_event",
    "render_location",
    "render_state",
    "split_of",
]

TENSES = ("present", "progressive", "past", "future")
MOODS = ("statement", "negative", "question", "where")
SPLIT_SIZES = {"train": 30_000, "dev": 500, "test": 500}
_SPLIT_SEED = 20240601

# --- Vocabulary. Every table is "English key | Portuguese | attributes"; gender m/f, number s/p.

_MALE = "Lucas Pedro Miguel Rafael Gabriel Daniel Bruno Tiago Paulo Carlos Felipe Marcos Diego"
_FEMALE = "Maria Ana Julia Beatriz Laura Sofia Carla Camila Fernanda Mariana Helena Clara Alice"
_PEOPLE = """my brother|o meu irmão|m s;my sister|a minha irmã|f s;my father|o meu pai|m s;
my mother|a minha mãe|f s;my grandmother|a minha avó|f s;my grandfather|o meu avô|m s;
his wife|a esposa dele|f s;her husband|o marido dela|m s;the boy|o menino|m s;
the girl|a menina|f s;my friends|os meus amigos|m p;my parents|os meus pais|m p;
our neighbors|os nossos vizinhos|m p;the children|as crianças|f p;the students|os alunos|m p;
the girls|as meninas|f p"""
# (English, Portuguese, English person, Portuguese person 0..3 = eu/ele/nós/eles, agreement slot)
_PRONOUNS = [("I", "eu", "1s", 0, None), ("you", "você", "2s", 1, None), ("he", "ele", "3s", 1, 0),
             ("she", "ela", "3s", 1, 1), ("we", "nós", "pl", 2, None), ("they", "eles", "pl", 3, 2)]

_PLACES = """Brazil|o Brasil;Chile|o Chile;Peru|o Peru;Mexico|o México;Canada|o Canadá;Japan|o Japão;
Egypt|o Egito;Uruguay|o Uruguai;Paraguay|o Paraguai;Ecuador|o Equador;Panama|o Panamá;
the United Kingdom|o Reino Unido;France|a França;Italy|a Itália;Spain|a Espanha;
Germany|a Alemanha;Argentina|a Argentina;England|a Inglaterra;China|a China;India|a Índia;
Russia|a Rússia;Greece|a Grécia;Colombia|a Colômbia;Bolivia|a Bolívia;Australia|a Austrália;
Switzerland|a Suíça;Ireland|a Irlanda;Sweden|a Suécia;the United States|os Estados Unidos;
the Philippines|as Filipinas;Portugal|Portugal;Cuba|Cuba;Angola|Angola;Mozambique|Moçambique;
Israel|Israel;Cape Verde|Cabo Verde;Lisbon|Lisboa;Paris|Paris;London|Londres;Rome|Roma;
Madrid|Madri;Tokyo|Tóquio;Berlin|Berlim;São Paulo|São Paulo;Buenos Aires|Buenos Aires;
New York|Nova York;Porto|o Porto;Rio de Janeiro|o Rio de Janeiro;Cairo|o Cairo;Lima|Lima;
Santiago|Santiago;Montevideo|Montevidéu;Moscow|Moscou;Athens|Atenas;Venice|Veneza;Geneva|Genebra"""

# English forms | Portuguese infinitive | preposition | tenses (S P D F) | object tags.
# Place verbs take a place; object verbs take a noun phrase whose noun has one of the tags.
_PLACE_VERBS = """visit|visits|visited|visiting|visitar|;live in|lives in|lived in|living in|morar|em
travel to|travels to|traveled to|traveling to|viajar|para;work in|works in|worked in|working in|trabalhar|em
study in|studies in|studied in|studying in|estudar|em
return from|returns from|returned from|returning from|voltar|de"""
_OBJECT_VERBS = """buy|buys|bought|buying|comprar||SPDF|b;sell|sells|sold|selling|vender||SPDF|b
wash|washes|washed|washing|lavar||SPDF|w;clean|cleans|cleaned|cleaning|limpar||SPDF|w
open|opens|opened|opening|abrir||SPDF|o;close|closes|closed|closing|fechar||SPDF|o
look for|looks for|looked for|looking for|procurar||SPDF|c;find|finds|found|finding|encontrar||SDF|c
carry|carries|carried|carrying|carregar||SPDF|c;paint|paints|painted|painting|pintar||SPDF|p
bring|brings|brought|bringing|trazer||SPDF|c;make|makes|made|making|fazer||SPDF|m
eat|eats|ate|eating|comer||SPDF|e;write|writes|wrote|writing|escrever||SPDF|t
like|likes|liked|liking|gostar|de|SDF|bw;need|needs|needed|needing|precisar|de|SDF|b
see|sees|saw|seeing|ver||SDF|bcw;have|has|had|having|ter||SF|b"""
# present (eu, ele, nós, eles), preterite (same persons), gerund
_IRREGULAR = {
    "ver": (("vejo", "vê", "vemos", "veem"), ("vi", "viu", "vimos", "viram"), "vendo"),
    "trazer": (("trago", "traz", "trazemos", "trazem"), ("trouxe", "trouxe", "trouxemos", "trouxeram"),
               "trazendo"),
    "fazer": (("faço", "faz", "fazemos", "fazem"), ("fiz", "fez", "fizemos", "fizeram"), "fazendo"),
    "ter": (("tenho", "tem", "temos", "têm"), ("tive", "teve", "tivemos", "tiveram"), "tendo"),
}
_ESTAR = {"present": ("estou", "está", "estamos", "estão"),
          "past": ("estava", "estava", "estávamos", "estavam")}
_SER = {"present": ("sou", "é", "somos", "são"), "past": ("era", "era", "éramos", "eram")}
_IR = ("vou", "vai", "vamos", "vão")
_BE = {"1s": ("am", "was"), "2s": ("are", "were"), "3s": ("is", "was"), "pl": ("are", "were")}

# singular plural | Portuguese singular plural | gender | class (o object, f food, a animal,
# r room) | verb tags | location prepositions (O on, I in, U under, N next to, B behind,
# F in front of)
_NOUNS = """book books livro livros m o bcot -;letter letters carta cartas f o ct -
car cars carro carros m o bwp IUNBF;bicycle bicycles bicicleta bicicletas f o bwpc NB
house houses casa casas f o bwp INBF;key keys chave chaves f o bc -;bag bags bolsa bolsas f o bco I
box boxes caixa caixas f o bcopm IONB;chair chairs cadeira cadeiras f o bcwp OUNB
table tables mesa mesas f o bwp OUNB;bed beds cama camas f o bwp OUNB;sofa sofas sofá sofás m o bwp OUNB
desk desks escrivaninha escrivaninhas f o bwp OUN;shelf shelves estante estantes f o bwp O
door doors porta portas f o opw NBF;window windows janela janelas f o ow NF
shirt shirts camisa camisas f o bwc -;dress dresses vestido vestidos m o bwcm -
shoe shoes sapato sapatos m o bwc -;hat hats chapéu chapéus m o bc -
umbrella umbrellas guarda-chuva guarda-chuvas m o bco -;phone phones telefone telefones m o bc -
computer computers computador computadores m o bc -;clock clocks relógio relógios m o bc -
picture pictures quadro quadros m o bcp -;flower flowers flor flores f o bc -;ball balls bola bolas f o bc -
pen pens caneta canetas f o bc -;notebook notebooks caderno cadernos m o bc -;map maps mapa mapas m o bc -
camera cameras câmera câmeras f o bc -;bottle bottles garrafa garrafas f o bco -
plate plates prato pratos m o bwc -;cup cups xícara xícaras f o bwc -
newspaper newspapers jornal jornais m o bc -;ticket tickets ingresso ingressos m o bc -
drawer drawers gaveta gavetas f o o I;apple apples maçã maçãs f f bwce -
orange oranges laranja laranjas f f bce -;cake cakes bolo bolos m f bcem -;egg eggs ovo ovos m f bce -
sandwich sandwiches sanduíche sanduíches m f bcem -;cookie cookies biscoito biscoitos m f bcem -
dog dogs cachorro cachorros m a bwc -;cat cats gato gatos m a bwc -;horse horses cavalo cavalos m a bw -
bird birds pássaro pássaros m a bc -;kitchen kitchens cozinha cozinhas f r wp I
garden gardens jardim jardins m r - I;bedroom bedrooms quarto quartos m r wp I
office offices escritório escritórios m r wp I;floor floors chão chãos m r w O"""
_PREPS = {"O": ("on", "em"), "I": ("in", "em"), "U": ("under", "debaixo de"), "N": ("next to", "ao lado de"),
          "B": ("behind", "atrás de"), "F": ("in front of", "na frente de")}

# English | masculine feminine | group (an NP never gets two of one group) | noun classes | copula
_ADJECTIVES = """red vermelho vermelha c o ser;blue azul azul c o ser;green verde verde c o ser
white branco branca c oa ser;black preto preta c oa ser;yellow amarelo amarela c o ser
big grande grande s ofar ser;small pequeno pequena s ofar ser;new novo nova n or ser
old velho velha n oar ser;cheap barato barata p of ser;expensive caro cara p of ser
beautiful bonito bonita b oar ser;clean limpo limpa l oar estar;dirty sujo suja l oar estar
fresh fresco fresca f f estar;delicious delicioso deliciosa f f estar"""
# adjectives said of people (predicates only); "_" stands for a space
_PERSON_ADJECTIVES = """tired cansado cansada estar;happy feliz feliz estar;sad triste triste estar
sick doente doente estar;busy ocupado ocupada estar;ready pronto pronta estar
late atrasado atrasada estar;tall alto alta ser;young jovem jovem ser
hungry com_fome com_fome estar;thirsty com_sede com_sede estar"""

# English | masculine feminine masculine-plural feminine-plural | suffix ("o carro dele")
_DETERMINERS = """the|the|o a os as|;a|some|um uma alguns algumas|;my|my|o_meu a_minha os_meus as_minhas|
your|your|o_seu a_sua os_seus as_suas|;our|our|o_nosso a_nossa os_nossos as_nossas|
his|his|o a os as|dele;her|her|o a os as|dela;their|their|o a os as|deles
this|these|este esta estes estas|;that|those|aquele aquela aqueles aquelas|
two|two|dois duas dois duas|;three|three|três três três três|;four|four|quatro quatro quatro quatro|
five|five|cinco cinco cinco cinco|"""
_PLURAL_ONLY = ("two", "three", "four", "five")

_MONTHS = ("January February March April May June July August September October November December",
           "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro")
_DAYS = [("Monday", "segunda-feira", "f"), ("Tuesday", "terça-feira", "f"), ("Wednesday", "quarta-feira", "f"),
         ("Thursday", "quinta-feira", "f"), ("Friday", "sexta-feira", "f"), ("Saturday", "sábado", "m"),
         ("Sunday", "domingo", "m")]
# English | Portuguese | tenses it goes with (S present, P progressive, D past, F future)
_ADVERBS = """today|hoje|PDF;yesterday|ontem|D;tomorrow|amanhã|F;now|agora|P;every day|todos os dias|S
every week|todas as semanas|S;every month|todos os meses|S;every year|todos os anos|S
last week|na semana passada|D;last month|no mês passado|D;last year|no ano passado|D
next week|na próxima semana|F;next month|no próximo mês|F;next year|no próximo ano|F
in the morning|de manhã|SDF;in the afternoon|à tarde|SDF;at night|à noite|SDF
this week|esta semana|PDF;this year|este ano|PDF"""
_TENSE_CODE = {"present": "S", "progressive": "P", "past": "D", "future": "F"}


# Parsed entries. Agreement slot ("form"): 0 m, 1 f, 2 m-pl, 3 f-pl, None where the gender is
# unknown; Portuguese person: 0 eu, 1 ele/você, 2 nós, 3 eles; English person: 1s, 2s, 3s, pl.
_Subject = namedtuple("_Subject", "en pt en_person pt_person form")
_Verb = namedtuple("_Verb", "en inf prep present preterite gerund tenses tags")  # en: base, 3s, past, -ing
_Noun = namedtuple("_Noun", "en pt gender cls tags preps")  # en, pt: (singular, plural); gender 0 m, 1 f
_Adjective = namedtuple("_Adjective", "en forms group classes copula")  # forms: m, f, m-pl, f-pl


def _items(table: str) -> list[str]:
    return [item.strip() for line in table.splitlines() for item in line.split(";") if item.strip()]


def _plural(word: str) -> str:
    """Portuguese plural of an adjective: azul -> azuis, jovem -> jovens, feliz -> felizes."""
    if " " in word:  # "com fome"
        return word
    if word[-1] in "lm":  # azul -> azuis, jovem -> jovens
        return word[:-1] + {"l": "is", "m": "ns"}[word[-1]]
    return word + ("es" if word[-1] in "rz" else "s")


def _conjugate(inf: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Present, preterite (eu, ele, nós, eles) and gerund of a regular -ar/-er/-ir verb."""
    if inf in _IRREGULAR:
        return _IRREGULAR[inf]
    stem, v = inf[:-2], inf[-2]
    if v == "a":
        pret1 = {"c": stem[:-1] + "qu", "g": stem + "u", "ç": stem[:-1] + "c"}.get(stem[-1], stem) + "ei"
        return (stem + "o", stem + "a", stem + "amos", stem + "am"), \
            (pret1, stem + "ou", stem + "amos", stem + "aram"), stem + "ando"
    return (stem + "o", stem + "e", stem + v + "mos", stem + "em"), \
        (stem + "i", stem + v + "u", stem + v + "mos", stem + v + "ram"), stem + v + "ndo"


def _build_tables():
    subjects = {n: _Subject(n, n, "3s", 1, 0) for n in _MALE.split()}
    subjects.update({n: _Subject(n, n, "3s", 1, 1) for n in _FEMALE.split()})
    subjects.update({p[0]: _Subject(*p) for p in _PRONOUNS})
    for item in _items(_PEOPLE):
        en, pt, (gender, _, number) = item.split("|")
        pl = number == "p"
        subjects[en] = _Subject(en, pt, "pl" if pl else "3s", 3 if pl else 1, "mf".index(gender) + 2 * pl)
    places = dict(item.split("|") for item in _items(_PLACES))
    verbs = {}
    for line in _items(_PLACE_VERBS) + _items(_OBJECT_VERBS):
        fields = line.split("|") + ["SPDF", ""]
        en, (inf, prep, tenses, tags) = tuple(fields[:4]), fields[4:8]
        verbs[en[0]] = _Verb(en, inf, prep, *_conjugate(inf), tenses, tags)
    nouns = {}
    for item in _items(_NOUNS):
        en_s, en_p, pt_s, pt_p, g, cls, tags, preps = item.split()
        nouns[en_s] = _Noun((en_s, en_p), (pt_s, pt_p), "mf".index(g), cls, tags.strip("-"), preps.strip("-"))
    adjectives = {}
    for item in _items(_ADJECTIVES) + _items(_PERSON_ADJECTIVES):
        en, m, f, *rest = (w.replace("_", " ") for w in item.split())
        group, classes, copula = rest if len(rest) == 3 else ("person", "", rest[0])
        adjectives[en] = _Adjective(en, (m, f, _plural(m), _plural(f)), group, classes, copula)
    dets = {}
    for item in _items(_DETERMINERS):
        en_s, en_p, pt, suffix = item.split("|")
        dets[en_s] = (en_s, en_p, tuple(w.replace("_", " ") for w in pt.split()), suffix)
    times = {}
    for en, pt in zip(*(m.split() for m in _MONTHS)):
        times[f"in {en}"] = ("em " + pt, "SPDF")
    for en, pt, g in _DAYS:
        times[f"on {en}"] = (("no " if g == "m" else "na ") + pt, "DF")
        plural_pt = pt.replace("-", "s-") + "s"  # segundas-feiras, sábados
        times[f"on {en}s"] = (("aos " if g == "m" else "às ") + plural_pt, "S")
    times.update((en, (pt, tenses)) for en, pt, tenses in (item.split("|") for item in _items(_ADVERBS)))
    return subjects, places, verbs, nouns, adjectives, dets, times


_SUBJECTS, _PLACE_TABLE, _VERBS, _NOUN_TABLE, _ADJ_TABLE, _DETS, _TIMES = _build_tables()

# --- Rendering one sentence from explicit choices.


@dataclass(frozen=True)
class NP:
    """A noun-phrase choice: ``NP("car", det="my", adj="red", plural=True)`` is "my red cars".

    ``det`` is one of the, a (plural: some), my, your, his, her, our, their, this (these),
    that (those), two, three, four, five (the numbers imply ``plural``).
    """

    noun: str
    det: str = "the"
    adj: str | None = None
    plural: bool = False


def _lookup(table: dict, key, what: str):
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"unknown {what} {key!r}; expected one of {', '.join(sorted(table))}") from None


_CONTRACTING = frozenset(["o", "a", "os", "as", "este", "esta", "estes", "estas", "aquele", "aquela", "aqueles", "aquelas"])


def _contract(prep: str, phrase: str) -> str:
    """Join a Portuguese preposition to a phrase, contracting with its article or demonstrative.

    ``de + o Chile -> do Chile``, ``em + a França -> na França``, ``em + Portugal -> em Portugal``,
    ``ao lado de + a porta -> ao lado da porta``, ``a + as segundas -> às segundas``.
    """
    if not prep:
        return phrase
    head, _, p = prep.rpartition(" ")
    first = phrase.partition(" ")[0]
    if first in _CONTRACTING and p in ("de", "em"):
        phrase = ("d" if p == "de" else "n") + phrase
    elif first in _CONTRACTING and p == "a" and first[0] != "e":  # ao, à, aos, às, àquele
        phrase = ("à" + phrase[1:]) if first[0] == "a" else "a" + phrase
    else:
        phrase = f"{p} {phrase}"
    return f"{head} {phrase}" if head else phrase


def _noun_phrase(np: NP, owner: int | None = None) -> tuple[str, str, int]:
    """English text, Portuguese text and agreement slot (0 m, 1 f, 2 m-pl, 3 f-pl) of an NP.

    ``owner`` is the subject's slot: "their" is "delas" after a feminine plural subject
    ("The girls washed their car." -> "As meninas lavaram o carro delas."), else "deles".
    """
    noun = _lookup(_NOUN_TABLE, np.noun, "noun")
    en_s, en_p, pt_forms, suffix = _lookup(_DETS, np.det, "determiner")
    plural = np.plural or np.det in _PLURAL_ONLY
    slot = noun.gender + 2 * plural
    en = [en_p if plural else en_s]
    pt = [pt_forms[slot], noun.pt[plural]]
    if np.adj is not None:
        adj = _lookup(_ADJ_TABLE, np.adj, "adjective")
        if noun.cls not in adj.classes:
            raise ValueError(f"adjective {np.adj!r} does not go with noun {np.noun!r}")
        en.append(adj.en)
        pt.append(adj.forms[slot])
    en.append(noun.en[plural])
    if en[0] == "a" and en[1][0] in "aeiou":
        en[0] = "an"
    if suffix:
        pt.append("delas" if suffix == "deles" and owner == 3 else suffix)
    return " ".join(en), " ".join(pt), slot


def _subject(subject: str | NP) -> _Subject:
    if isinstance(subject, NP):
        en, pt, slot = _noun_phrase(subject)
        return _Subject(en, pt, "pl" if slot >= 2 else "3s", 3 if slot >= 2 else 1, slot)
    return _lookup(_SUBJECTS, subject, "subject")


def _sentence(en: list[str], pt: list[str], question: bool) -> tuple[str, str]:
    mark = "?" if question else "."
    en_s, pt_s = " ".join(w for w in en if w), " ".join(w for w in pt if w)
    return en_s[0].upper() + en_s[1:] + mark, pt_s[0].upper() + pt_s[1:] + mark


def _clause(s: _Subject, verb: _Verb | None, tense: str, mood: str, pt_vp: list[str],
            en_tail: list[str], pt_tail: list[str]) -> tuple[str, str]:
    """Assemble subject, verb phrase and complements in both languages for one mood.

    ``verb`` is None for "be" (copula and location sentences), whose Portuguese verb phrase
    ``pt_vp`` (ser or estar) the caller has conjugated.
    """
    if mood not in MOODS or (mood == "where" and verb is not None):
        raise ValueError(f"unknown mood {mood!r} for this sentence; expected one of {MOODS}")
    base = "be" if verb is None else verb.en[0]
    if tense == "future":
        aux, main = "will", base
    elif tense == "progressive":
        aux, main = _BE[s.en_person][0], verb.en[3]
    elif verb is None:
        aux, main = _BE[s.en_person][tense == "past"], None
    elif mood == "statement":
        aux, main = None, verb.en[2] if tense == "past" else verb.en[1 if s.en_person == "3s" else 0]
    else:
        aux, main = "did" if tense == "past" else "does" if s.en_person == "3s" else "do", base
    if mood == "where":
        return _sentence(["where", aux, s.en, main], ["onde", *pt_vp, s.pt], True)
    if mood == "question":
        en = [aux, s.en, main, *en_tail]
    else:
        en = [s.en, aux, "not" if mood == "negative" else None, main, *en_tail]
    pt = [s.pt, "não" if mood == "negative" else None, *pt_vp, *pt_tail]
    return _sentence(en, pt, mood == "question")


def _time(time: str | None, tense: str) -> tuple[str | None, str | None]:
    if time is None:
        return None, None
    pt, tenses = _lookup(_TIMES, time, "time expression")
    if _TENSE_CODE[tense] not in tenses:
        raise ValueError(f"time {time!r} does not go with the {tense} tense")
    return time, pt


def render_event(subject: str | NP, verb: str, complement: str | NP, *,
                 tense: str = "present", mood: str = "statement", time: str | None = None) -> tuple[str, str]:
    """Render "subject verb complement [time]" in English and Portuguese.

    Args:
        subject: a name ("Lucas"), pronoun ("I", "you", "he", "she", "we", "they"), person
            ("my sister", "the children") or an :class:`NP`.
        verb: English base form, e.g. "visit", "travel to", "buy", "look for".
        complement: a place ("Chile", "the United States") for place verbs, an :class:`NP`
            for object verbs.
        tense: "present", "progressive", "past" or "future".
        mood: "statement", "negative" or "question".
        time: an English time expression such as "in January", "on Monday", "on Mondays",
            "yesterday", "next week" (must suit the tense), or None.

    Returns:
        ``(english, portuguese)``.
    """
    s, v = _subject(subject), _lookup(_VERBS, verb, "verb")
    if _TENSE_CODE.get(tense, "?") not in v.tenses:
        raise ValueError(f"verb {verb!r} is not used in tense {tense!r}")
    if isinstance(complement, NP):
        if not v.tags or not set(_lookup(_NOUN_TABLE, complement.noun, "noun").tags) & set(v.tags):
            raise ValueError(f"verb {verb!r} does not take the object {complement.noun!r}")
        en_obj, pt_obj, _ = _noun_phrase(complement, owner=s.form)
    else:
        if v.tags:
            raise ValueError(f"verb {verb!r} takes a noun phrase, not the place {complement!r}")
        en_obj, pt_obj = complement, _lookup(_PLACE_TABLE, complement, "place")
    p = s.pt_person
    pt_vp = {"present": [v.present[p]], "progressive": [_ESTAR["present"][p], v.gerund],
             "past": [v.preterite[p]], "future": [_IR[p], v.inf]}[tense]
    en_time, pt_time = _time(time, tense)
    return _clause(s, v, tense, mood, pt_vp, [en_obj, en_time], [_contract(v.prep, pt_obj), pt_time])


def _be(copula: str, tense: str, person: int) -> list[str]:
    """Portuguese ser/estar: present, past (imperfect: era, estava) or future (vai ser)."""
    if tense == "future":
        return [_IR[person], copula]
    if tense not in ("present", "past"):
        raise ValueError(f"tense {tense!r} is not used with 'be'; expected present, past or future")
    return [(_SER if copula == "ser" else _ESTAR)[tense][person]]


def render_state(subject: str | NP, adjective: str, *, tense: str = "present",
                 mood: str = "statement") -> tuple[str, str]:
    """Render "subject is adjective" with ser or estar and an agreeing adjective.

    Args:
        subject: a person key (see :func:`render_event`) for person adjectives ("tired",
            "happy", "hungry"), or an :class:`NP` for object adjectives ("red", "clean").
        adjective: English adjective.
        tense: "present", "past" or "future".
        mood: "statement", "negative" or "question".

    Returns:
        ``(english, portuguese)``, e.g. ``("The red cars are cheap.", "Os carros vermelhos são baratos.")``.
    """
    s, adj = _subject(subject), _lookup(_ADJ_TABLE, adjective, "adjective")
    if (adj.group == "person") != (not isinstance(subject, NP)):
        raise ValueError(f"adjective {adjective!r} does not describe {s.en!r}")
    if isinstance(subject, NP):
        noun_np = _NOUN_TABLE[subject.noun]
        if noun_np.cls not in adj.classes:
            raise ValueError(f"adjective {adjective!r} does not describe {subject.noun!r}")
    slot = s.form
    if slot is None:  # I, you, we: only adjectives with one form for both genders
        if adj.forms[0] != adj.forms[1]:
            raise ValueError(f"{s.en!r} has no grammatical gender for the adjective {adjective!r}")
        slot = 2 if s.pt_person >= 2 else 0
    return _clause(s, None, tense, mood, _be(adj.copula, tense, s.pt_person), [adjective], [adj.forms[slot]])


def render_location(subject: str | NP, prep: str, place: str | NP, *,
                    tense: str = "present", mood: str = "statement") -> tuple[str, str]:
    """Render "subject is PREP place" with estar, or "Where is subject?" for ``mood="where"``.

    Args:
        subject: a person key or an :class:`NP`.
        prep: "on", "in", "under", "next to", "behind" or "in front of".
        place: a place key ("Chile", with prep "in") or a singular :class:`NP` whose noun takes
            the preposition ("the table" takes "on", "under", "next to", "behind").
        tense: "present", "past" or "future".
        mood: "statement", "negative", "question" or "where" (present or past only).

    Returns:
        ``(english, portuguese)``, e.g. ``("The book is on the table.", "O livro está na mesa.")``.
    """
    s = _subject(subject)
    code = next((c for c, (en, _) in _PREPS.items() if en == prep), None)
    if code is None:
        raise ValueError(f"unknown preposition {prep!r}; expected one of {[en for en, _ in _PREPS.values()]}")
    if isinstance(place, NP):
        plural = place.plural or place.det in _PLURAL_ONLY
        if plural or code not in _lookup(_NOUN_TABLE, place.noun, "noun").preps:
            raise ValueError(f"{prep!r} does not go with the location {place}")
        owner = None if isinstance(subject, NP) else s.form  # "their" of people, not of things
        en_place, pt_place, _ = _noun_phrase(place, owner=owner)
    else:
        if prep != "in":
            raise ValueError(f"a place name takes 'in', not {prep!r}")
        en_place, pt_place = place, _lookup(_PLACE_TABLE, place, "place")
    if mood == "where" and tense == "future":
        raise ValueError("'where' questions are rendered in the present or past only")
    en_tail, pt_tail = [prep, en_place], [_contract(_PREPS[code][1], pt_place)]
    return _clause(s, None, tense, mood, _be("estar", tense, s.pt_person), en_tail, pt_tail)


# --- Sampling.

_MOOD_CHOICES = ("statement", "statement", "negative", "question")
_SG_DETS = [d for d in _DETS if d not in _PLURAL_ONLY]
_PL_DETS = list(_DETS)
_PERSON_KEYS, _PLACE_KEYS = list(_SUBJECTS), list(_PLACE_TABLE)
_NAMED_KEYS = [k for k, s in _SUBJECTS.items() if s.form is not None and k not in ("he", "she", "they")]
_ADJ_FOR_CLASS = {c: [a.en for a in _ADJ_TABLE.values() if c in a.classes] for c in "ofar"}
_PERSON_ADJ = [a.en for a in _ADJ_TABLE.values() if a.group == "person"]
_INVARIANT_PERSON_ADJ = [a for a in _PERSON_ADJ if _ADJ_TABLE[a].forms[0] == _ADJ_TABLE[a].forms[1]]
_TIMES_FOR = {t: [k for k, (_, ts) in _TIMES.items() if c in ts] for t, c in _TENSE_CODE.items()}
_TENSES_OF = {k: [t for t in TENSES if _TENSE_CODE[t] in v.tenses] for k, v in _VERBS.items()}
_PLACE_VERB_KEYS = [k for k, v in _VERBS.items() if not v.tags]
_OBJECT_VERB_KEYS = [k for k, v in _VERBS.items() if v.tags]
_OBJECTS_FOR = {k: [n for n, noun in _NOUN_TABLE.items() if set(noun.tags) & set(v.tags)]
                for k, v in _VERBS.items() if v.tags}
_DESCRIBABLE = [n for n, noun in _NOUN_TABLE.items() if noun.cls in "ofa"]
_MOVABLE = [n for n, noun in _NOUN_TABLE.items() if "c" in noun.tags or noun.cls == "a"]
_LOCATIONS = [(n, c) for n, noun in _NOUN_TABLE.items() for c in noun.preps]
_ROOMS = [(n, c) for n, c in _LOCATIONS  # where a person can be: in a room, next to a box
          if c in "NBF" or (c == "I" and (_NOUN_TABLE[n].cls == "r" or n in ("car", "house")))]


def _sample_np(rng: random.Random, nouns: list[str], *, singular: bool = False) -> NP:
    noun, plural = rng.choice(nouns), not singular and rng.random() < 0.4
    adj = rng.choice(_ADJ_FOR_CLASS[_NOUN_TABLE[noun].cls]) if rng.random() < 0.5 else None
    return NP(noun, det=rng.choice(_PL_DETS if plural else _SG_DETS), adj=adj, plural=plural)


def _sample_time(rng: random.Random, tense: str) -> str | None:
    return rng.choice(_TIMES_FOR[tense]) if rng.random() < 0.65 else None


def _sample_pair(rng: random.Random) -> tuple[str, str]:
    """Draw one sentence frame and its words, and render it."""
    r, mood = rng.random(), rng.choice(_MOOD_CHOICES)
    if r < 0.3:
        tense = rng.choice(TENSES)
        return render_event(rng.choice(_PERSON_KEYS), rng.choice(_PLACE_VERB_KEYS), rng.choice(_PLACE_KEYS),
                            tense=tense, mood=mood, time=_sample_time(rng, tense))
    if r < 0.7:
        verb = rng.choice(_OBJECT_VERB_KEYS)
        tense = rng.choice(_TENSES_OF[verb])
        return render_event(rng.choice(_PERSON_KEYS), verb, _sample_np(rng, _OBJECTS_FOR[verb]),
                            tense=tense, mood=mood, time=_sample_time(rng, tense))
    tense = rng.choice(("present", "past", "future"))
    if r < 0.85:
        if rng.random() < 0.5:
            subject = rng.choice(_PERSON_KEYS)
            pool = _PERSON_ADJ if _SUBJECTS[subject].form is not None else _INVARIANT_PERSON_ADJ
            return render_state(subject, rng.choice(pool), tense=tense, mood=mood)
        np = _sample_np(rng, _DESCRIBABLE)  # the predicate is of another group: "The red car is old."
        group = _ADJ_TABLE[np.adj].group if np.adj else ""
        adjs = _ADJ_FOR_CLASS[_NOUN_TABLE[np.noun].cls]
        adj = rng.choice([a for a in adjs if _ADJ_TABLE[a].group != group])
        return render_state(np, adj, tense=tense, mood=mood)
    if rng.random() < 0.5:
        subject: str | NP = rng.choice(_PERSON_KEYS)
        if rng.random() < 0.4:
            return render_location(subject, "in", rng.choice(_PLACE_KEYS), tense=tense, mood=mood)
        noun, code = rng.choice(_ROOMS)
    else:
        subject = _sample_np(rng, _MOVABLE)
        noun, code = rng.choice([loc for loc in _LOCATIONS if loc[0] != subject.noun])
    if rng.random() < 0.2 and tense != "future" and (isinstance(subject, NP) or subject in _NAMED_KEYS):
        mood = "where"
    place = _sample_np(rng, [noun], singular=True)
    return render_location(subject, _PREPS[code][0], place, tense=tense, mood=mood)


def draw_distinct(sample: Callable[[random.Random], tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` pairs from ``sample(rng)`` whose first elements are distinct, deterministically from ``seed``.

    The same ``(n, seed)`` always gives the same list, and a larger ``n`` extends the list of a
    smaller one.

    Raises:
        ValueError: the generator produced fewer than ``n`` distinct first elements.
    """
    rng, seen, pairs = random.Random(seed), set(), []
    for _ in range(20 * n + 1000):
        if len(pairs) == n:
            break
        first, second = sample(rng)
        if first not in seen:
            seen.add(first)
            pairs.append((first, second))
    if len(pairs) < n:
        raise ValueError(f"the grammar produced only {len(pairs)} distinct sentences, fewer than {n}")
    return pairs


def split_of(items: Sequence, sizes: dict[str, int], name: str) -> list:
    """Split ``name`` of ``items`` cut into consecutive slices of ``sizes`` (in the dict's order)."""
    if name not in sizes:
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(sizes)}")
    names = list(sizes)
    start = sum(sizes[n] for n in names[:names.index(name)])
    return list(items[start:start + sizes[name]])


def generate_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Draw ``n`` pairs with distinct English sources, deterministically from ``seed``.

    Args:
        n: number of pairs.
        seed: seed of the generator; the same ``(n, seed)`` always gives the same list, and a
            larger ``n`` extends the list of a smaller one.

    Returns:
        ``[(english, portuguese), ...]`` of length ``n``.
    """
    return draw_distinct(_sample_pair, n, seed)


@functools.lru_cache(maxsize=1)
def _all_splits() -> tuple[tuple[str, str], ...]:
    return tuple(generate_pairs(sum(SPLIT_SIZES.values()), seed=_SPLIT_SEED))


def builtin_split(name: str) -> list[tuple[str, str]]:
    """The built-in corpus: "train" (30,000 pairs), "dev" (500) or "test" (500).

    The three splits are slices of one list of distinct sources, so no dev or test source
    appears in train. The list is generated once per process and cached.
    """
    if name not in SPLIT_SIZES:  # checked before generating the corpus
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_SIZES)}")
    return split_of(_all_splits(), SPLIT_SIZES, name)
