"""tg.save / tg.load as PyTorch users call them (issue 11 item 4) and atomic, validated checkpoints (issue 13
item 3): a round-trip property over nested structures, tied weights, optimizer-style state dicts, file objects,
weights_only, atomic writes with fsync of file and folder, clear errors for truncated/corrupted/newer files."""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import nn, serialization
from tinygrad_rnn.serialization import CheckpointError


def assert_same(a, b):
    """Equal structure, types and values (NaN equals NaN; -0.0 keeps its sign)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, tg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad and a.device == b.device
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(k2 for k2 in b if k2 == k))
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=False):
            assert_same(x, y)
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    elif isinstance(a, complex):
        assert_same(a.real, b.real), assert_same(a.imag, b.imag)
    else:
        assert a == b


DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
                          np.complex128])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
TENSORS = st.builds(
    lambda a, rg, param: (nn.Parameter(a, requires_grad=rg) if param else tg.tensor(a, requires_grad=rg)),
    hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
    st.booleans(), st.booleans())
LEAVES = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.complex_numbers()
          | st.text(max_size=8) | st.binary(max_size=8) | ARRAYS | ARRAYS.map(lambda a: a.reshape(-1)[:1].sum())
          | TENSORS)
KEYS = (st.text(max_size=6) | st.integers(-5, 5) | st.none() | st.booleans()
        | st.tuples(st.integers(0, 3), st.text(max_size=2)))
STRUCTURES = st.recursive(
    LEAVES,
    lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(KEYS, inner, max_size=3)
                   | st.dictionaries(st.text(max_size=6), inner, max_size=3).map(OrderedDict)),
    max_leaves=10)


@given(STRUCTURES)
def test_save_writes_exactly_what_load_reads_back(obj):
    buffer = io.BytesIO()
    tg.save(obj, buffer)
    buffer.seek(0)
    assert_same(obj, tg.load(buffer))


def test_round_trip_through_a_path_keeps_types(tmp_path):
    state = OrderedDict(w=nn.Parameter(tg.randn(2, 3)), steps=7, lr=0.1, name="run", ids=np.arange(3, dtype=np.int32),
                        scale=np.float32(2.5), nested={"a": [1, (2.0, None)], 3: b"\x00\x01"})
    path = tmp_path / "ckpt.pt"
    tg.save(state, path)
    loaded = tg.load(path)
    assert_same(state, loaded)
    assert isinstance(loaded["w"], nn.Parameter) and type(loaded["scale"]) is np.float32
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_a_model_trains_the_same_after_state_dict_save_and_load(tmp_path):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    path = os.path.join(tmp_path, "model.pt")
    tg.save(model.state_dict(), path)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    assert fresh.load_state_dict(tg.load(path)) == ([], [])
    x = tg.randn(5, 3, dtype=np.float64)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_tied_weights_keep_both_keys_and_stay_tied():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(5, 3)
            self.decoder = nn.Linear(3, 5)
            self.decoder.weight = self.encoder.weight

    buffer = io.BytesIO()
    tg.save(Tied().state_dict(), buffer)
    loaded = tg.load(io.BytesIO(buffer.getvalue()))
    assert list(loaded) == ["encoder.weight", "decoder.weight", "decoder.bias"]
    assert loaded["encoder.weight"].array is loaded["decoder.weight"].array  # shared memory, as torch's storages
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
        assert sorted(z.namelist()) == ["__tinygrad_rnn__.npy", "decoder.bias.npy", "encoder.weight.npy"]  # once
    t = tg.ones(2)
    same = tg.load(_bytes([t, t]))
    assert same[0] is same[1]


def _bytes(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    tg.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_optimizer_state_dicts_round_trip():
    state = {"state": {0: {"step": tg.tensor(3.0), "exp_avg": tg.zeros(2, 2, dtype=np.float64)},
                       1: {"momentum_buffer": None}},
             "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                               "params": [0, 1]}]}
    assert_same(state, tg.load(_bytes(state)))
    model = nn.Linear(2, 2)
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    model(tg.randn(3, 2)).sum().backward()
    opt.step()
    assert_same(opt.state_dict(), tg.load(_bytes(opt.state_dict())))


def test_whole_modules_and_other_objects_need_weights_only_false(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    path = tmp_path / "model.pt"
    tg.save(model, path)
    with pytest.raises(CheckpointError, match="pickled .*Sequential.*weights_only=False"):
        tg.load(path)
    for refused in (None, 0, ""):  # only an explicit False opts in to unpickling
        with pytest.raises(CheckpointError, match="weights_only=False"):
            tg.load(path, weights_only=refused)
    again = tg.load(path, weights_only=False)
    assert type(again) is nn.Sequential and repr(again) == repr(model)
    np.testing.assert_array_equal(again[0].weight.numpy(), model[0].weight.numpy())
    # as torch.load(weights_only=True): pickled data without globals (a set) loads; a class must be allowed
    assert tg.load(_bytes({"fine": 1, "odd": {1, 2}})) == {"fine": 1, "odd": {1, 2}}
    with pytest.raises(CheckpointError, match="pickled .*Sequential.*needs tinygrad_rnn.nn.container.Sequential"):
        tg.load(_bytes({"fine": 1, "model": model}))
    with pytest.raises(CheckpointError, match="cannot store"):
        tg.save(lambda: 0, io.BytesIO())
    loop = []
    loop.append(loop)
    with pytest.raises(CheckpointError, match="cycle"):
        tg.save(loop, io.BytesIO())


def test_file_objects_non_seekable_and_map_location(tmp_path):
    path = tmp_path / "x.pt"
    with open(path, "wb") as f:
        tg.save({"t": tg.ones(3)}, f)

    class Stream(io.RawIOBase):  # a pipe-like reader without seek
        def __init__(self, data):
            self.inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self.inner.readinto(b)

    loaded = tg.load(Stream(path.read_bytes()), map_location="cpu")
    assert loaded["t"].device == "cpu" and np.all(loaded["t"].numpy() == 1)
    assert tg.load(path, map_location={"cpu": "cpu"})["t"].device == "cpu"


def test_numpy_load_lists_a_state_dicts_own_keys(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3))
    tg.save({"model": model.state_dict(), "step": np.array(4), "odd key/!": tg.ones(1), "__x": tg.ones(1)},
            tmp_path / "c.pt")
    with np.load(tmp_path / "c.pt") as archive:
        assert sorted(archive.files) == ["__t3", "__t4", "__tinygrad_rnn__", "model.0.bias", "model.0.weight", "step"]
        np.testing.assert_array_equal(archive["model.0.weight"], model[0].weight.numpy())


def test_legacy_npz_checkpoints_still_load(tmp_path):
    layer = nn.GRU(2, 3)
    path = tmp_path / "old.npz"
    np.savez(path, **{k: v.numpy() for k, v in layer.state_dict().items()})
    loaded = tg.load(path)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(layer.state_dict())
    assert all(isinstance(v, np.ndarray) for v in loaded.values())
    assert nn.GRU(2, 3).load(path).load_state_dict(loaded) == ([], [])


# --------------------------------------------------------------------------------------------------
# atomic writes (issue 13)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, error):
    path = tmp_path / "ckpt.pt"
    tg.save({"v": 1}, path)

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 part of an archive")
        raise error

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(type(error)):
        tg.save({"v": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.pt"] and tg.load(path) == {"v": 1}


def test_save_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    tg.save({"v": 1}, tmp_path / "a.pt")
    assert synced == [False, True]  # the temporary file, then (after the rename) the folder


# --------------------------------------------------------------------------------------------------
# clear errors for bad files (issue 13)
# --------------------------------------------------------------------------------------------------


def test_truncated_corrupted_and_foreign_files_raise_checkpoint_error(tmp_path):
    path = tmp_path / "good.pt"
    tg.save({"w": tg.randn(50, 50), "n": 3}, path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 30, len(data) - 1):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="cut"):
            tg.load(bad)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the weight's bytes: the ZIP CRC no longer matches
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="flip.pt"):
        tg.load(tmp_path / "flip.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        tg.load(tmp_path / "text.pt")
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(CheckpointError, match="single .npy"):
        tg.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "missing.pt")


def test_a_newer_format_or_a_broken_manifest_says_so(tmp_path):
    def with_manifest(name, manifest):
        arrays = {"__tinygrad_rnn__": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)}
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    newer = with_manifest("newer.npz", {"format": "tinygrad_rnn checkpoint", "version": 99, "root": {"type": "none"}})
    with pytest.raises(CheckpointError, match="format 99.*newer"):
        tg.load(newer)
    broken = with_manifest("broken.npz", {"format": "tinygrad_rnn checkpoint", "version": 1,
                                          "root": {"type": "tensor", "array": "w"}})
    with pytest.raises(CheckpointError, match="'w'"):
        tg.load(broken)


def test_torch_files_are_recognised_as_foreign(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    with pytest.raises(CheckpointError, match="PyTorch"):
        tg.load(tmp_path / "torch.pt")


def test_module_checkpoint_carries_its_configuration(tmp_path):
    path = tmp_path / "lstm.pt"
    nn.LSTM(3, 4).save(path)
    assert serialization.read_metadata(path)["module"] == "LSTM"
    with pytest.raises(nn.StateDictError, match=r"was saved from LSTM\(3, 4"):
        nn.LSTM(3, 5).load(path)
    assert serialization.FORMAT_VERSION == 1


_VALID = io.BytesIO()
tg.save({"model": OrderedDict(w=tg.ones(3, 2), b=tg.zeros(2)), "step": 3, "name": "x", "lr": [0.1, (1, None)]}, _VALID)


@given(st.data())
def test_any_damage_to_a_file_gives_checkpoint_error_or_the_original(data):
    raw = bytearray(_VALID.getvalue())
    kind = data.draw(st.sampled_from(["flip", "cut", "junk"]))
    if kind == "flip":
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            raw[pos] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw = bytearray(data.draw(st.binary(max_size=200)))
    try:
        loaded = tg.load(io.BytesIO(bytes(raw)))
    except CheckpointError:
        return
    # a change the ZIP format does not protect (e.g. a timestamp) may load, but then it loads the original
    _VALID.seek(0)
    assert_same(loaded, tg.load(_VALID))
