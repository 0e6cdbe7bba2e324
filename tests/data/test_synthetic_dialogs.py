from seqlab.data.dialogs import dialog_pairs, read_conversations
from seqlab.data.synthetic_dialogs import (
    DIALOG_SPLIT_SIZES,
    builtin_dialogs,
    generate_dialogs,
)


def test_splits_have_their_sizes_and_are_deterministic():
    assert {name: len(builtin_dialogs(name)) for name in DIALOG_SPLIT_SIZES} == DIALOG_SPLIT_SIZES
    assert generate_dialogs(5, seed=2) == generate_dialogs(5, seed=2) != generate_dialogs(5, seed=3)


def test_replies_that_depend_on_earlier_turns_follow_them():
    pairs = dialog_pairs(read_conversations("builtin:synthetic-dialogs"), 2)
    tomorrow = [(c, r) for c, r in pairs if c.endswith("tomorrow?")]
    assert len(tomorrow) > 100
    for context, reply in tomorrow:  # the city of the question two turns back is in the reply
        city = context.split(" <sep> ")[1].split()[-2]  # "it is sunny in lisbon today."
        assert reply.endswith(f" in {city}.")
    remember = [(c, r) for c, r in pairs if c.endswith("do you remember my name?") and r.startswith("yes")]
    assert remember and all(r.split()[-1].rstrip(".") in c for c, r in remember)


def test_every_conversation_alternates_person_and_bot():
    for turns in builtin_dialogs("dev"):
        assert len(turns) % 2 == 0 and all(t.strip() for t in turns)
