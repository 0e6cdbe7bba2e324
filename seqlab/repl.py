"""``seqlab chat``: talk to a chat run in the terminal, keeping the conversation's context.

    you> hello
    bot> hello! how are you?
    you> /reset        (forget the conversation)
    you> /quit         (or Ctrl-D)

In a terminal the reply is printed piece by piece as the model produces it
(:meth:`~seqlab.api.Chatbot.stream_reply`). When stdin is not a terminal (piped), there is no
prompt: each input line gets exactly one output line, its reply, and the context carries over
from line to line as in a conversation (``/reset`` still works, and prints nothing).
"""

from __future__ import annotations

from typing import TextIO

from seqlab.errors import SeqlabError

__all__ = ["chat_loop"]

_HELP = "type a message and press Enter; /reset forgets the conversation, /quit (or Ctrl-D) leaves"


def chat_loop(bot, stdin: TextIO, stdout: TextIO, *, interactive: bool, stderr: TextIO | None = None,
              **options) -> list[str]:
    """Read messages from ``stdin`` and write the bot's replies to ``stdout`` until EOF or ``/quit``.

    Args:
        bot: a :class:`~seqlab.api.Chatbot`.
        stdin, stdout: where messages come from and replies go.
        interactive: prompts and streamed replies (a terminal) or one reply line per input line.
        stderr: where the interactive banner and errors go (default ``stdout``).
        options: generation options for every reply (``temperature=0.8``, ``seed=1``, ...).

    Returns:
        The conversation's turns since the last ``/reset``.
    """
    bot.settings(**options)  # a bad option fails before the first message
    err = stderr or stdout
    history: list[str] = []
    if interactive:
        print(f"seqlab chat: {_HELP}", file=err, flush=True)
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        message = line.strip()
        if message == "/quit":
            break
        if message == "/reset":
            history = []
            if interactive:
                print("(conversation reset)", file=stdout, flush=True)
            continue
        if not message:
            if not interactive:
                stdout.write("\n")
            continue
        try:
            if interactive:
                stdout.write("bot> ")
                pieces = []
                for piece in bot.stream_reply(history, message, **options):
                    pieces.append(piece)
                    stdout.write(piece)
                    stdout.flush()
                reply = "".join(pieces)
                stdout.write("\n")
            else:
                reply = bot.reply(history, message, **options)
                stdout.write(reply + "\n")
            stdout.flush()
        except SeqlabError as error:
            print(f"error: {error}", file=err, flush=True)
            if not interactive:
                stdout.write("\n")
            continue
        history += [message, reply]
    return history
