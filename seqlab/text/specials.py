"""Special tokens shared by every tokenizer and model.

Every vocabulary starts with the same four entries, so models, losses and decoders can rely on
fixed ids: ``<pad>`` = 0 (ignored by the loss and masked in attention), ``<sos>`` = 1 (first decoder
input), ``<eos>`` = 2 (ends a sentence; decoding stops there), ``<unk>`` = 3.
"""

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
