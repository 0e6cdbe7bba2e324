"""``seqlab chat``: through a pseudo-terminal (prompts, streaming, /reset, /quit) and piped."""

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import seqlab

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = ["hello", "what is your name?", "how is the weather in paris?"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _expected(bot, messages):
    history, replies = [], []
    for m in messages:
        r = bot.reply(history, m)
        replies.append(r)
        history += [m, r]
    return replies


def test_piped_stdin_gives_one_reply_line_per_input_line_and_keeps_the_context(tiny_chat_run):
    bot = seqlab.load(tiny_chat_run.path)
    lines = [*MESSAGES, "/reset", MESSAGES[1]]
    done = subprocess.run([sys.executable, "-m", "seqlab", "chat", str(tiny_chat_run.path)], input="\n".join(lines),
                          capture_output=True, text=True, env=_env(), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == _expected(bot, MESSAGES) + _expected(bot, MESSAGES[1:2])


def test_sampling_options_reach_the_replies(tiny_chat_run):
    bot = seqlab.load(tiny_chat_run.path)
    command = [sys.executable, "-m", "seqlab", "chat", str(tiny_chat_run.path), "--temperature", "2.0", "--seed", "3",
               "--max-new-tokens", "6"]
    done = subprocess.run(command, input="hello\n", capture_output=True, text=True, env=_env(), timeout=120, check=False)
    assert done.stdout.splitlines() == [bot.reply([], "hello", temperature=2.0, seed=3, max_new_tokens=6)]
    bad = subprocess.run(command + ["--top-p", "2"], input="hello\n", capture_output=True, text=True, env=_env(),
                         timeout=120, check=False)
    assert bad.returncode == 2 and "decode.top_p" in bad.stderr


def _read_until(fd, marker: str, timeout: float = 60.0) -> str:
    out, deadline = b"", time.monotonic() + timeout
    while marker.encode() not in out:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {marker!r} in the terminal output: {out.decode(errors='replace')!r}")
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out.decode("utf-8", errors="replace").replace("\r\n", "\n")


@pytest.mark.slow
def test_the_repl_in_a_pseudo_terminal_prompts_streams_resets_and_quits(tiny_chat_run):
    expected = _expected(seqlab.load(tiny_chat_run.path), MESSAGES[:2])
    pid, fd = pty.fork()
    if pid == 0:  # the child: seqlab chat on the terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "seqlab", "chat", str(tiny_chat_run.path)], _env())
    try:
        assert "/reset" in _read_until(fd, "you> ")  # the banner says how to reset
        transcript = []
        for message in MESSAGES[:2]:
            os.write(fd, (message + "\n").encode())
            transcript.append(_read_until(fd, "you> "))
        os.write(fd, b"/reset\n")
        assert "(conversation reset)" in _read_until(fd, "you> ")
        os.write(fd, (MESSAGES[1] + "\n").encode())
        after_reset = _read_until(fd, "you> ")
        os.write(fd, b"/quit\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    for reply, text in zip(expected, transcript):
        assert f"bot> {reply}\n" in text
    assert f"bot> {_expected(seqlab.load(tiny_chat_run.path), MESSAGES[1:2])[0]}\n" in after_reset
