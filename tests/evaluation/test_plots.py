import json

import pytest
import torch

from seqlab.evaluation.plots import plot_attention, plot_confusion, plot_curves

MAGIC = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_plot_attention_writes_the_format_of_the_extension(tmp_path, suffix):
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    path = tmp_path / "figs" / f"attention{suffix}"
    written = plot_attention(
        weights, ["the", "cat", "sat", "</s>"], ["o", "gato", "</s>"], path, title="en-pt"
    )
    assert written == path
    assert path.read_bytes().startswith(MAGIC[suffix])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_plot_attention_shape_mismatch_names_both_shapes(tmp_path):
    with pytest.raises(
        ValueError, match=r"shape \(2, 3\) but the labels give \(target, source\) = \(3, 3\)"
    ):
        plot_attention(torch.zeros(2, 3), ["a", "b", "c"], ["x", "y", "z"], tmp_path / "a.png")
    assert not list(tmp_path.iterdir())


def test_unsupported_extension_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"a\.jpg: unsupported figure format"):
        plot_attention(torch.zeros(1, 1), ["a"], ["x"], tmp_path / "a.jpg")


def test_plot_curves_from_metrics_jsonl(tmp_path):
    lines = [{"step": s, "loss": 5.0 / s} for s in range(1, 6)] + [{"step": 5, "bleu": 12.5}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines))
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    path = plot_curves(records, ["loss", "bleu"], tmp_path / "curves.png")
    assert path.read_bytes().startswith(MAGIC[".png"])
    with pytest.raises(
        ValueError,
        match=r"no record has both 'step' and 'chrf'; keys present: \['bleu', 'loss', 'step'\]",
    ):
        plot_curves(records, ["chrf"], tmp_path / "c.png")


def test_plot_confusion_writes_a_png_and_checks_its_labels(tmp_path):
    counts = torch.tensor([[5, 1, 0], [2, 7, 1], [0, 0, 4]])
    path = plot_confusion(counts, ["neg", "neu", "pos"], tmp_path / "cm.png", title="dev")
    assert path.read_bytes().startswith(MAGIC[".png"])
    with pytest.raises(ValueError, match=r"confusion matrix has shape \(3, 3\) but 2 labels were given"):
        plot_confusion(counts, ["neg", "pos"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
