"""The chat side of the API: ``seqlab.load`` of a chat run, replies, streaming, context truncation."""

import threading

import pytest

import seqlab
from seqlab.api import Chatbot, Translator
from seqlab.errors import ConfigError, SeqlabError

HISTORY = ["hello", "hello! how are you?", "i am tired", "you should rest a little."]


@pytest.fixture
def bot(tiny_chat_run) -> Chatbot:
    return seqlab.load(tiny_chat_run.path)


def test_load_returns_a_chatbot_for_a_chat_run_and_a_translator_otherwise(bot, tiny_run):
    assert isinstance(bot, Chatbot) and bot.run_task == "chat"
    translator = seqlab.load(tiny_run.path)
    assert type(translator) is Translator and translator.run_task == "translation"


def test_reply_decodes_the_context_of_the_last_turns(bot):
    context = bot.context_ids(HISTORY, "what is your name?")
    sep = bot.tokenizers.src.special_id("<sep>")
    assert context.count(sep) == 2  # data.context_turns = 2: two earlier turns and the message
    expected = bot._decode_ids([context], bot.settings())[0]
    assert bot.reply(HISTORY, "what is your name?") == expected
    assert bot.reply(["older turn that is dropped", *HISTORY], "what is your name?") == expected


def test_a_long_context_loses_its_oldest_turns_first(bot):
    limit = min(bot.model.max_positions - 1, bot.config.data.max_len)
    long_turn = " ".join(["hello"] * (limit - 5))
    ids = bot.context_ids([long_turn, "hi"], "what is your name?")
    assert len(ids) <= limit
    assert ids == bot.tokenizers.src.encode("hi <sep> what is your name?")


@pytest.mark.parametrize("options", [{}, {"strategy": "sample", "seed": 4, "temperature": 1.5},
                                     {"repetition_penalty": 1.5, "no_repeat_ngram": 2}, {"beam": 3}])
def test_stream_reply_joins_to_reply(bot, options):
    pieces = list(bot.stream_reply(HISTORY, "do you like cats?", **options))
    assert "".join(pieces) == bot.reply(HISTORY, "do you like cats?", **options)
    if options.get("beam", 1) > 1:
        assert len(pieces) <= 1


def test_stream_translate_joins_to_translate(tiny_run):
    translator = seqlab.load(tiny_run.path)
    for options in ({"beam": 1}, {"top_k": 5, "seed": 2}, {"beam": 2}):
        pieces = list(translator.stream_translate("Maria is tired.", **options))
        assert "".join(pieces) == translator.translate("Maria is tired.", **options)


def test_seeded_replies_are_reproducible_and_the_seed_matters(bot):
    a = [bot.reply([], "hello", temperature=3.0, seed=s, max_new_tokens=8) for s in range(4)]
    assert a == [bot.reply([], "hello", temperature=3.0, seed=s, max_new_tokens=8) for s in range(4)]
    assert len(set(a)) > 1


def test_bad_generation_options_and_inputs_are_clear_errors(bot):
    with pytest.raises(ConfigError, match="decode.top_p"):
        bot.reply([], "hello", top_p=0.0)
    with pytest.raises(ConfigError, match="decode.beem.*unknown key"):
        bot.reply([], "hello", beem=2)
    with pytest.raises(SeqlabError, match="message is empty"):
        bot.reply([], "  ")
    with pytest.raises(SeqlabError, match="history must be a list of strings"):
        bot.reply("hello", "hi")


def test_concurrent_replies_equal_the_same_requests_run_alone(bot):
    requests = [(HISTORY[: 2 * i], m, {"seed": i, "temperature": 1.2} if i % 2 else {})
                for i, m in enumerate(["hello", "what is your name?", "do you like cats?", "bye"])]
    alone = [bot.reply(h, m, **o) for h, m, o in requests]
    results = [None] * len(requests)

    def worker(i):
        h, m, o = requests[i]
        results[i] = bot.reply(h, m, **o)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == alone
