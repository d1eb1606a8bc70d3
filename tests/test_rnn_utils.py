"""nn.utils.rnn: pad_sequence, pack_padded_sequence, pad_packed_sequence, pack_sequence in PyTorch's layouts,
differentiable (gradients equal to PyTorch's), and a packed batch through an LSTM giving PyTorch's numbers."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

LENGTHS = [3, 5, 1, 5, 2]


def seqs(rng, lengths=LENGTHS, features=(2,)):
    return [rng.standard_normal((n, *features)) for n in lengths]


def test_pad_sequence_layouts():
    rng = np.random.default_rng(0)
    arrays = seqs(rng)
    padded = pad_sequence([tg.tensor(a) for a in arrays], padding_value=-1.0)
    assert padded.shape == (5, 5, 2)
    for b, a in enumerate(arrays):
        np.testing.assert_array_equal(padded.numpy()[: len(a), b], a)
        assert np.all(padded.numpy()[len(a):, b] == -1)
    first = pad_sequence([tg.tensor(a) for a in arrays], batch_first=True, padding_side="left")
    assert first.shape == (5, 5, 2) and np.array_equal(first.numpy()[2, -1], arrays[2][0])
    assert np.all(first.numpy()[2, :-1] == 0)
    with pytest.raises(tg.OpError, match="trailing shapes"):
        pad_sequence([tg.zeros(2, 3), tg.zeros(2, 4)])
    with pytest.raises(tg.OpError, match="at least one"):
        pad_sequence([])


def test_pack_padded_sequence_validates_lengths():
    x = tg.zeros(4, 3, 2)
    with pytest.raises(tg.OpError, match="decreasing"):
        pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(tg.OpError, match=r"\[1, 4\]"):
        pack_padded_sequence(x, [5, 4, 1])
    with pytest.raises(tg.OpError, match=r"\[1, 4\]"):
        pack_padded_sequence(x, [4, 0, 1], enforce_sorted=False)
    with pytest.raises(tg.OpError, match="expected 3 lengths"):
        pack_padded_sequence(x, [4, 1])
    with pytest.raises(tg.OpError, match="total_length"):
        pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=3)


def test_round_trips_without_torch():
    rng = np.random.default_rng(1)
    arrays = seqs(rng)
    packed = pack_sequence([tg.tensor(a) for a in arrays], enforce_sorted=False)
    assert isinstance(packed, PackedSequence) and packed.data.shape == (sum(LENGTHS), 2)
    assert packed.batch_sizes.tolist() == [5, 4, 3, 2, 2]
    back = unpack_sequence(packed)
    assert all(np.array_equal(b.numpy(), a) for a, b in zip(arrays, back, strict=False))
    padded, lengths = pad_packed_sequence(packed, batch_first=True, total_length=7)
    assert padded.shape == (5, 7, 2) and lengths.tolist() == LENGTHS
    unpadded = unpad_sequence(padded, lengths, batch_first=True)
    assert all(np.array_equal(u.numpy(), a) for a, u in zip(arrays, unpadded, strict=False))
    # sorted_indices given alone: the inverse permutation is computed
    again = PackedSequence(packed.data, packed.batch_sizes, packed.sorted_indices)
    assert again.unsorted_indices.tolist() == packed.unsorted_indices.tolist()


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_and_pad_match_torch_values_and_gradients(batch_first, enforce_sorted):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import rnn as trnn

    rng = np.random.default_rng(2)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else [3, 5, 1, 4, 2]  # distinct ties for torch's sort
    arrays = seqs(rng, lengths, (3,))
    ours_in = [tg.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_pad = pad_sequence(ours_in, batch_first=batch_first, padding_value=0.5)
    theirs_pad = trnn.pad_sequence(theirs_in, batch_first=batch_first, padding_value=0.5)
    np.testing.assert_array_equal(ours_pad.numpy(), theirs_pad.detach().numpy())
    ours = pack_padded_sequence(ours_pad, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    theirs = trnn.pack_padded_sequence(theirs_pad, torch.tensor(lengths), batch_first=batch_first,
                                       enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.detach().numpy())
    assert ours.batch_sizes.tolist() == theirs.batch_sizes.tolist()
    for name in ("sorted_indices", "unsorted_indices"):
        mine, ref = getattr(ours, name), getattr(theirs, name)
        assert (mine is None and ref is None) or mine.tolist() == ref.tolist()
    ours_out, ours_len = pad_packed_sequence(ours, batch_first=batch_first, padding_value=-2.0, total_length=6)
    theirs_out, theirs_len = trnn.pad_packed_sequence(theirs, batch_first=batch_first, padding_value=-2.0,
                                                      total_length=6)
    np.testing.assert_array_equal(ours_out.numpy(), theirs_out.detach().numpy())
    assert ours_len.tolist() == theirs_len.tolist()
    seed = rng.standard_normal(tuple(theirs_out.shape))
    (theirs_out * torch.tensor(seed)).sum().backward()
    (ours_out * tg.tensor(seed)).sum().backward()
    for a, b in zip(ours_in, theirs_in, strict=False):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_a_packed_batch_through_lstm_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.nn.utils import rnn as trnn

    torch.manual_seed(0)
    theirs_lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True).double()
    ours_lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True, dtype=np.float64)
    ours_lstm.load_state_dict({k: v.detach().numpy() for k, v in theirs_lstm.state_dict().items()})
    rng = np.random.default_rng(3)
    lengths = [2, 5, 3]
    x = rng.standard_normal((3, 5, 3))
    theirs_out, (theirs_h, _) = theirs_lstm(trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths),
                                                                      batch_first=True, enforce_sorted=False))
    ours_out, (ours_h, _) = ours_lstm(pack_padded_sequence(tg.tensor(x), lengths, batch_first=True,
                                                           enforce_sorted=False))
    np.testing.assert_allclose(ours_out.data.numpy(), theirs_out.data.detach().numpy(), atol=1e-12)
    padded, lens = pad_packed_sequence(ours_out, batch_first=True)
    theirs_padded, _ = trnn.pad_packed_sequence(theirs_out, batch_first=True)
    np.testing.assert_allclose(padded.numpy(), theirs_padded.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours_h.numpy(), theirs_h.detach().numpy(), atol=1e-12)
    assert lens.tolist() == lengths
