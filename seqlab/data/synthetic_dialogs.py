"""Embedded dialog corpus, generated from a small grammar of our own (``builtin:synthetic-dialogs``).

A smoke-demo corpus for the chat task, not real conversation: every conversation is drawn from a
hand-written grammar so that ``seqlab train configs/chat/demo.yaml`` runs with no download. A
conversation alternates a person's turns and the bot's replies (the replies are what the model
learns). It opens with a greeting (or not), covers one to three topics and may close with a
goodbye:

* greetings and mood: "hello" -> "hello! how are you?" -> "i am tired" -> "you should rest a little.";
* names: "what is your name?" -> "my name is seqbot. what is yours?" -> "i am ana" ->
  "nice to meet you, ana!", then "do you remember my name?" -> "yes, you are ana.";
* weather per city: "how is the weather in lisbon?" -> "it is sunny in lisbon today." ->
  "and tomorrow?" -> "tomorrow it will be windy in lisbon.";
* opening hours: "when does the bakery open?" -> "the bakery opens at seven.";
* likes: "do you like music?" -> "yes, i love music!" -> "why?" -> "because it makes me happy.";
* a few exchanges in Portuguese: "olá" -> "olá! tudo bem?" -> "tudo bem" -> "que bom!".

Several replies depend on earlier turns, not only on the last message ("and tomorrow?", "why?",
"do you remember my name?"), so a model with ``data.context_turns >= 2`` can answer them and a
single-turn model cannot. Facts (a city's weather, a shop's hours, what the bot likes) are fixed
tables, so the replies are learnable.
"""

from __future__ import annotations

import functools
import random

__all__ = ["DIALOG_SPLIT_SIZES", "builtin_dialogs", "generate_dialogs"]

DIALOG_SPLIT_SIZES = {"train": 4000, "dev": 200, "test": 200}
_SPLIT_SEED = 20261202

_NAMES = ["ana", "lucas", "maria", "pedro", "julia", "rafael", "sofia", "bruno", "clara", "diego", "laura",
          "tiago", "helena", "paulo"]
# city: (today, tomorrow)
_WEATHER = {"lisbon": ("sunny", "windy"), "paris": ("rainy", "cloudy"), "london": ("cloudy", "rainy"),
            "tokyo": ("warm", "sunny"), "madrid": ("hot", "sunny"), "berlin": ("cold", "snowy"),
            "rome": ("sunny", "warm"), "porto": ("windy", "rainy"), "oslo": ("snowy", "cold")}
_HOURS = {"bakery": "seven", "library": "nine", "museum": "ten", "bank": "eight", "market": "six",
          "pharmacy": "eight", "cinema": "two"}
# thing: (likes it, reason)
_LIKES = {"music": (True, "it makes me happy"), "books": (True, "i learn new words"),
          "rain": (False, "it gets into my circuits"), "football": (True, "the games are exciting"),
          "coffee": (False, "i cannot drink it"), "cats": (True, "they are soft and funny"),
          "noise": (False, "it hurts my ears"), "math": (True, "numbers are my friends")}
_GREETINGS = ["hello", "hi", "hey", "good morning", "hello there", "hi bot"]
_MOODS = {"i am fine": "glad to hear it!", "i am great": "wonderful!", "i am tired": "you should rest a little.",
          "i am sad": "i am sorry. i hope your day gets better.", "not bad": "good!"}
_GIVE_NAME = ["my name is {}", "i am {}", "call me {}", "{}"]
_GOODBYES = ["bye", "goodbye", "see you later", "i have to go"]


def _greeting(rng: random.Random, facts: dict) -> list[str]:
    mood = rng.choice(list(_MOODS))
    return [rng.choice(_GREETINGS), "hello! how are you?", mood, _MOODS[mood]]


def _name(rng: random.Random, facts: dict) -> list[str]:
    name = facts.setdefault("name", rng.choice(_NAMES))
    return ["what is your name?", "my name is seqbot. what is yours?", rng.choice(_GIVE_NAME).format(name),
            f"nice to meet you, {name}!"]


def _remember(rng: random.Random, facts: dict) -> list[str]:
    if "name" not in facts:
        return ["do you remember my name?", "i do not know your name yet. what is it?"]
    return ["do you remember my name?", f"yes, you are {facts['name']}."]


def _weather(rng: random.Random, facts: dict) -> list[str]:
    city = rng.choice(list(_WEATHER))
    today, tomorrow = _WEATHER[city]
    turns = [rng.choice(["how is the weather in {}?", "what is the weather like in {}?"]).format(city),
             f"it is {today} in {city} today."]
    if rng.random() < 0.6:
        turns += [rng.choice(["and tomorrow?", "what about tomorrow?"]), f"tomorrow it will be {tomorrow} in {city}."]
    return turns


def _hours(rng: random.Random, facts: dict) -> list[str]:
    shop = rng.choice(list(_HOURS))
    turns = [f"when does the {shop} open?", f"the {shop} opens at {_HOURS[shop]}."]
    if rng.random() < 0.3:
        turns += ["what time is it now?", "i do not have a watch, sorry."]
    return turns


def _likes(rng: random.Random, facts: dict) -> list[str]:
    thing = rng.choice(list(_LIKES))
    likes, reason = _LIKES[thing]
    turns = [f"do you like {thing}?", f"yes, i love {thing}!" if likes else f"no, i do not like {thing}."]
    if rng.random() < 0.6:
        turns += ["why?", f"because {reason}."]
    return turns


def _portuguese(rng: random.Random, facts: dict) -> list[str]:
    turns = [rng.choice(["olá", "oi", "bom dia"]), "olá! tudo bem?"]
    turns += rng.choice([["tudo bem", "que bom!"], ["estou cansado", "descanse um pouco."]])
    return turns


_TOPICS = [_name, _weather, _hours, _likes]


def _conversation(rng: random.Random) -> list[str]:
    facts: dict = {}
    if rng.random() < 0.1:
        return _portuguese(rng, facts)
    turns = _greeting(rng, facts) if rng.random() < 0.6 else []
    topics = rng.sample(_TOPICS, rng.randint(1, 3))
    for topic in topics:
        turns += topic(rng, facts)
        if (topic is _name or _name not in topics) and rng.random() < 0.3:
            turns += _remember(rng, facts)  # right after the name is given, or with no name at all
    if rng.random() < 0.4:
        turns += [rng.choice(_GOODBYES), "goodbye! talk to you soon."]
    return turns


def generate_dialogs(n: int, seed: int = 0) -> list[list[str]]:
    """n conversations of the grammar; each a list of turns, person first, bot replies at odd indices."""
    rng = random.Random(seed)
    return [_conversation(rng) for _ in range(n)]


@functools.lru_cache(maxsize=1)
def _all_splits() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(c) for c in generate_dialogs(sum(DIALOG_SPLIT_SIZES.values()), seed=_SPLIT_SEED))


def builtin_dialogs(name: str) -> list[list[str]]:
    """The built-in dialogs: "train" (4,000 conversations), "dev" (200) or "test" (200)."""
    if name not in DIALOG_SPLIT_SIZES:
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(DIALOG_SPLIT_SIZES)}")
    names = list(DIALOG_SPLIT_SIZES)
    start = sum(DIALOG_SPLIT_SIZES[n] for n in names[: names.index(name)])
    return [list(c) for c in _all_splits()[start : start + DIALOG_SPLIT_SIZES[name]]]
