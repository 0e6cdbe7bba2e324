"""Quality of a trained chat run on its held-out conversations: perplexity and sample exchanges.

    python benchmarks/chat_quality.py runs/human-robot [--checkpoint best] [--samples 10] [--out FILE]

The dev split is rebuilt from the run's own config exactly as training made it (the
conversations of ``data.dev``, or the ``data.holdout`` share of the training conversations drawn
with ``train.seed``: by conversation, never by line). Perplexity is exp of the mean
-log p(reply token | context) over every reply token of the split, ``<eos>`` included, with the
contexts cut and the over-long replies dropped as in training (so it equals the ``dev_ppl`` the
trainer logged for the same checkpoint). The sample exchanges are ``--samples``
replies of the split spread evenly over it, each answered greedily and by sampling
(temperature 0.8, top-p 0.9, seed 1), beside the reference reply. Printed as JSON (also written
to ``--out``) with the machine description of ``_timing.machine_info``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from _timing import machine_info

import seqlab
from seqlab.data.dialogs import dialog_pairs, read_conversations, split_conversations
from seqlab.evaluation.metrics import teacher_forced_nll
from seqlab.tasks.chat import ChatTask

SAMPLED = {"strategy": "sample", "temperature": 0.8, "top_p": 0.9, "seed": 1}


def held_out(cfg) -> list:
    """The dev conversations of the run, as training chose them."""
    data = cfg.data
    if data.dev:
        return read_conversations(data.dev, format=data.format, on_error=data.on_error)
    train = read_conversations(data.train, format=data.format, on_error=data.on_error)
    return split_conversations(train, data.holdout, cfg.train.seed)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    bot = seqlab.load(args.run, checkpoint=args.checkpoint)
    conversations = held_out(bot.config)
    # the dev pairs as training scored them: contexts cut from the left, over-long replies dropped
    limit = bot.model.max_positions - 1
    fit = ChatTask(bot.config).fit_source(bot.tokenizers)
    encoded = bot.tokenizers.encode_pairs(dialog_pairs(conversations, bot.config.data.context_turns))
    kept = [(fit(s, limit), t) for s, t in encoded if 0 < len(t) <= limit and s]
    nll, n = teacher_forced_nll(bot.model, [s for s, _ in kept], [t for _, t in kept])

    # evenly spaced over the split's replies, so the samples cover several conversations and positions
    replies = [(i, conv) for conv in conversations for i in conv.replies if conv.turns[i - 1].strip()]
    stride = max(1, len(replies) // args.samples)
    exchanges = []
    for i, conv in replies[::stride][: args.samples]:
        history, message = conv.turns[: i - 1], conv.turns[i - 1]
        exchanges.append({"message": message, "reference": conv.turns[i],
                          "greedy": bot.reply(history, message, strategy="greedy"),
                          "sampled": bot.reply(history, message, **SAMPLED)})
    report = {"run": args.run, "checkpoint": args.checkpoint, "machine": machine_info(),
              "dev_conversations": len(conversations), "dev_replies": len(kept), "dev_tokens": n,
              "dev_perplexity": math.exp(nll / n), "sampling": SAMPLED, "exchanges": exchanges}
    text = json.dumps(report, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
