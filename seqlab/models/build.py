"""Build any configured sequence-to-sequence model: the one place that maps ``model.type`` to code."""

from __future__ import annotations

from seqlab.config import RecurrentConfig, TransformerConfig
from seqlab.models.base import Seq2SeqModel
from seqlab.nn.embeddings import init_embeddings_from_file

__all__ = ["build_model"]


def build_model(cfg: TransformerConfig | RecurrentConfig, src_vocab_size: int, tgt_vocab_size: int, *,
                src_vocab: list[str] | None = None, tgt_vocab: list[str] | None = None) -> Seq2SeqModel:
    """Return an untrained model for ``cfg``.

    Args:
        cfg: the ``model`` section of an experiment config.
        src_vocab_size, tgt_vocab_size: vocabulary sizes from the trained tokenizers.
        src_vocab, tgt_vocab: the token strings, needed only to initialise the embeddings from a
            word2vec file (``model.embeddings_from``).
    """
    if isinstance(cfg, TransformerConfig):
        from seqlab.models.transformer import build_transformer

        model = build_transformer(cfg, src_vocab_size, tgt_vocab_size)
        if cfg.embeddings_from is not None:
            init_embeddings_from_file(cfg.embeddings_from, model.encoder.embed.embedding, model.tgt_embed.embedding,
                                      src_vocab, tgt_vocab)
        return model
    from seqlab.models.recurrent import build_recurrent

    if cfg.embeddings_from is not None:
        return build_recurrent(cfg, src_vocab_size, tgt_vocab_size, src_vocab=src_vocab, tgt_vocab=tgt_vocab)
    return build_recurrent(cfg, src_vocab_size, tgt_vocab_size)
