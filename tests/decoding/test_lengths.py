import pytest
import torch

from seqlab.decoding.lengths import as_length_tensor, max_target_lengths
from seqlab.text.specials import PAD


def test_max_target_lengths_ratio_offset_and_limit():
    src = torch.tensor([[5, 6, 7, PAD, PAD], [5, PAD, PAD, PAD, PAD], [5, 6, 7, 8, 9]])
    # ceil(1.5 * 3) + 2 = 7, ceil(1.5 * 1) + 2 = 4, ceil(1.5 * 5) + 2 = 10 -> capped at 8
    assert max_target_lengths(src, 1.5, 2, 8).tolist() == [7, 4, 8]


def test_max_target_lengths_is_at_least_one():
    src = torch.tensor([[5, 6]])
    assert max_target_lengths(src, 0.0, 0, 8).tolist() == [1]


def test_as_length_tensor_accepts_int_and_tensor():
    assert as_length_tensor(3, 2, "cpu").tolist() == [3, 3]
    assert as_length_tensor(torch.tensor([1, 4]), 2, "cpu").tolist() == [1, 4]


def test_as_length_tensor_rejects_wrong_shape_and_zero():
    with pytest.raises(ValueError, match=r"shape \(3,\), got shape \(2,\)"):
        as_length_tensor(torch.tensor([1, 4]), 3, "cpu")
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        as_length_tensor(torch.tensor([0, 2]), 2, "cpu")
