"""tinygrad_rnn.utils.data against torch.utils.data: the same batches (values, structure, count), collate of
tensors/arrays/numbers/tuples/dicts, seeded shuffling, drop_last, samplers, random_split and Subset."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def as_numpy(x):
    """Nested batches of ours or torch's as NumPy, keeping the container structure."""
    if isinstance(x, tg.Tensor):
        return x.numpy()
    if hasattr(x, "detach"):
        return x.detach().numpy()
    if isinstance(x, dict):
        return {k: as_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(as_numpy(v) for v in x) if not hasattr(x, "_fields") else tuple(as_numpy(v) for v in x)
    return x


def assert_batches_equal(ours, theirs):
    a, b = as_numpy(ours), as_numpy(theirs)
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype, (a, b)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_batches_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b, strict=False):
            assert_batches_equal(x, y)
    else:
        assert a == b


class Records(Dataset):
    """Samples of every kind default_collate handles."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full((2, 3), i, dtype=np.float32), "y": i, "w": i / 2, "name": f"s{i}",
                "pair": (np.int64(i), [float(i), float(-i)])}


@pytest.mark.parametrize("batch_size, drop_last", [(4, False), (4, True), (3, False), (10, False)])
def test_batches_equal_torchs(batch_size, drop_last):
    torch = pytest.importorskip("torch")
    ours = list(DataLoader(Records(10), batch_size=batch_size, drop_last=drop_last))
    theirs = list(torch.utils.data.DataLoader(Records(10), batch_size=batch_size, drop_last=drop_last))
    assert len(ours) == len(theirs) == len(DataLoader(Records(10), batch_size=batch_size, drop_last=drop_last))
    for a, b in zip(ours, theirs, strict=False):
        assert_batches_equal(a, b)


def test_tensor_dataset_batches_equal_torchs():
    torch = pytest.importorskip("torch")
    x, y = np.arange(30.0).reshape(10, 3), np.arange(10)
    ours = list(DataLoader(TensorDataset(tg.tensor(x), tg.tensor(y)), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                              batch_size=4))
    for a, b in zip(ours, theirs, strict=False):
        assert_batches_equal(a, b)
    unbatched = list(DataLoader(TensorDataset(tg.tensor(x)), batch_size=None))
    assert len(unbatched) == 10 and unbatched[3][0].shape == (3,)


def test_default_collate_matches_torchs_on_samples_of_every_kind():
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    Point = namedtuple("Point", "a b")
    cases = [
        [1, 2, 3],
        [1.5, 2.5],
        [True, False],
        [np.float32(1), np.float32(2)],
        ["a", "b"],
        [(1, 2.0), (3, 4.0)],
        [[np.ones(2), 0], [np.zeros(2), 1]],
        [{"k": np.ones((2, 2), dtype=np.int32)}, {"k": np.zeros((2, 2), dtype=np.int32)}],
    ]
    for batch in cases:
        assert_batches_equal(default_collate(batch), torch_collate(batch))
    ours = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert type(ours) is Point and ours.a.tolist() == [1, 3]
    stacked = default_collate([tg.ones(2, requires_grad=True), tg.zeros(2)])
    assert stacked.shape == (2, 2) and stacked.requires_grad  # on the tape
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object()])


def test_shuffle_uses_the_project_generator_and_covers_every_sample():
    data = TensorDataset(tg.arange(20))

    def epoch(loader):
        return np.concatenate([b[0].numpy() for b in loader]).tolist()

    tg.manual_seed(3)
    loader = DataLoader(data, batch_size=6, shuffle=True)
    first, second = epoch(loader), epoch(loader)
    assert sorted(first) == list(range(20)) and first != list(range(20)) and first != second  # new order each epoch
    tg.manual_seed(3)
    assert epoch(DataLoader(data, batch_size=6, shuffle=True)) == first  # seeded: reproducible
    mine = np.random.default_rng(0)
    assert epoch(DataLoader(data, batch_size=6, shuffle=True, generator=mine)) == \
        epoch(DataLoader(data, batch_size=6, shuffle=True, generator=np.random.default_rng(0)))


def test_samplers_and_option_errors():
    data = TensorDataset(tg.arange(7))
    assert list(SequentialSampler(data)) == list(range(7))
    assert sorted(RandomSampler(data)) == list(range(7))
    assert len(list(RandomSampler(data, replacement=True, num_samples=20))) == 20
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    loader = DataLoader(data, batch_sampler=[[6, 0], [1]])
    assert [b[0].tolist() for b in loader] == [[6, 0], [1]]
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(data, num_workers=2)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(data, sampler=SequentialSampler(data), shuffle=True)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(data, batch_size=0)
    with pytest.raises(tg.OpError, match="same first dimension"):
        TensorDataset(tg.zeros(3), tg.zeros(4))


def test_random_split_sizes_match_torch_and_subsets_partition():
    torch = pytest.importorskip("torch")
    data = TensorDataset(tg.arange(10))
    for lengths in ([3, 7], [0.3, 0.3, 0.4], [0.25, 0.75], [0.33, 0.33, 0.34]):
        ours = random_split(data, lengths)
        theirs = torch.utils.data.random_split(range(10), lengths)
        assert [len(s) for s in ours] == [len(s) for s in theirs]
        together = sorted(int(s[i][0].item()) for s in ours for i in range(len(s)))
        assert together == list(range(10))
    with pytest.raises(ValueError, match="sum"):
        random_split(data, [3, 3])
    first = random_split(data, [5, 5], generator=np.random.default_rng(1))[0].indices
    assert first == random_split(data, [5, 5], generator=np.random.default_rng(1))[0].indices
    assert first == random_split(data, [5, 5], generator=1)[0].indices  # an int seed
    with pytest.raises(TypeError, match="generator"):
        random_split(data, [5, 5], generator="seed")
    sub = Subset(data, [4, 2])
    assert len(sub) == 2 and int(sub[1][0].item()) == 2
    both = ConcatDataset([sub, data])
    assert len(both) == 12 and int(both[2][0].item()) == 0 and len(data + data) == 20


def test_iterable_datasets_are_batched_in_order():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(5))

    assert [b.tolist() for b in DataLoader(Stream(), batch_size=2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(), shuffle=True)
