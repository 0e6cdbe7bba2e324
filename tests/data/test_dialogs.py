import json

import pytest

from seqlab.data.dialogs import (
    chat_splits,
    context_text,
    dialog_pairs,
    fit_context,
    read_conversations,
    split_conversations,
)
from seqlab.errors import DataError

HUMAN = ["[start] hello", "how are you?", "[start] . hi", "what is your name?", "bye"]
ROBOT = ["hi!", "fine, thanks", "hello there", "seqbot", "goodbye"]


def _files(tmp_path, human=HUMAN, robot=ROBOT):
    h, r = tmp_path / "human_text.txt", tmp_path / "robot_text.txt"
    h.write_text("\n".join(human) + "\n", encoding="utf-8")
    r.write_text("\n".join(robot) + "\n", encoding="utf-8")
    return [str(h), str(r)]


def test_start_opens_a_new_conversation_and_robot_lines_are_the_replies(tmp_path):
    convs = read_conversations(_files(tmp_path))
    assert [c.turns for c in convs] == [["hello", "hi!", "how are you?", "fine, thanks"],
                                        ["hi", "hello there", "what is your name?", "seqbot", "bye", "goodbye"]]
    assert [c.replies for c in convs] == [[1, 3], [1, 3, 5]]
    assert dialog_pairs(convs, 0)[:2] == [("hello", "hi!"), ("how are you?", "fine, thanks")]


def test_misaligned_files_name_both_files_and_their_line_counts(tmp_path):
    files = _files(tmp_path, robot=ROBOT[:3])
    with pytest.raises(DataError) as err:
        read_conversations(files)
    message = str(err.value)
    assert files[0] in message and files[1] in message and "has 5 lines" in message and "has 3" in message


def test_an_empty_reply_names_the_robot_file_and_line(tmp_path):
    files = _files(tmp_path, robot=["hi!", "  ", "x", "y", "z"])
    with pytest.raises(DataError, match=r"robot_text.txt:2: empty reply"):
        read_conversations(files)


def test_jsonl_turns_and_chatterbot_yaml(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"turns": ["a", "b", "c"]}) + "\n" + json.dumps({"turns": ["d", "e"]}) + "\n")
    convs = read_conversations(str(path))
    assert [(c.turns, c.replies) for c in convs] == [(["a", "b", "c"], [1, 2]), (["d", "e"], [1])]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"turns": ["a", "b"]}) + "\n" + json.dumps({"turns": "ab"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: no list of at least two string turns"):
        read_conversations(str(bad))
    yml = tmp_path / "greetings.yml"
    yml.write_text("categories:\n- greetings\nconversations:\n- - Hello\n  - Hi\n- - How are you?\n  - Good.\n"
                   "  - Great!\n")
    assert [c.turns for c in read_conversations(str(yml))] == [["Hello", "Hi"], ["How are you?", "Good.", "Great!"]]
    yml.write_text("categories: [x]\nconversations:\n- just one string\n")
    with pytest.raises(DataError, match="conversation 1 is not a list of at least two turns"):
        read_conversations(str(yml))


def test_context_joins_the_previous_turns_with_sep():
    turns = ["hi", "hello!", "what is your name?", "seqbot", "and yours?"]
    assert context_text(turns, 0) == "and yours?"
    assert context_text(turns, 2) == "what is your name? <sep> seqbot <sep> and yours?"
    assert context_text(turns, 10) == " <sep> ".join(turns)
    assert context_text(["", "x", "y"], 5) == "x <sep> y"  # blank turns carry nothing


def test_fit_context_drops_the_oldest_turns_first_then_the_oldest_tokens():
    sep = 9
    ids = [1, 1, 1, sep, 2, 2, sep, 3, 3, 3]
    assert fit_context(ids, 10, sep) == ids
    assert fit_context(ids, 7, sep) == [2, 2, sep, 3, 3, 3]
    assert fit_context(ids, 5, sep) == [3, 3, 3]
    assert fit_context(ids, 2, sep) == [3, 3]  # a single turn keeps its end


def test_splits_are_by_conversation_and_seeded(tmp_path):
    convs = read_conversations("builtin:synthetic-dialogs")[:50]
    kept, held = split_conversations(convs, 0.1, seed=3)
    assert len(held) == 5 and len(kept) == 45
    assert {id(c) for c in kept}.isdisjoint(id(c) for c in held)
    assert [c.origin for c in split_conversations(convs, 0.1, seed=3)[1]] == [c.origin for c in held]
    assert [c.origin for c in split_conversations(convs, 0.1, seed=4)[1]] != [c.origin for c in held]


def test_chat_splits_hold_out_whole_conversations(tmp_path):
    from seqlab.tasks.chat import ChatDataConfig as DataConfig

    files = _files(tmp_path)
    data = DataConfig(train=files, dev=None, holdout=0.5, context_turns=1)
    train, dev = chat_splits(data, seed=0)
    assert len(train) + len(dev) == 5
    assert sorted(len(p) for p in (train, dev)) in ([2, 3],)  # one conversation each, never split
