"""Data parallelism on MPI (tinygrad_rnn.distributed), issue 17.

The multi-rank tests run this file as an MPI program, ``mpiexec -n 2 python tests/test_distributed.py WORKER``,
in a subprocess with a timeout; each worker prints one JSON line on rank 0 that the test checks. They skip
when mpi4py or mpiexec is missing (the ``[mpi]`` extra installs both).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAR_LM = os.path.join(ROOT, "examples", "char_lm.py")


# ----------------------------------------------------------------------------------------------- launcher


def mpirun(args: list[str], n: int = 2, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``python args...`` on ``n`` ranks; kill the whole process group if it outlives ``timeout``."""
    pytest.importorskip("mpi4py", reason="the [mpi] extra (mpi4py, mpich) is not installed")
    from tinygrad_rnn.distributed import mpiexec_command

    try:
        command = mpiexec_command(n, args)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               MPIEXEC_TIMEOUT=str(int(timeout)), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"mpiexec {args} hung for {timeout + 10} s\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err), time.perf_counter() - started


def run_worker(name: str, timeout: float = 120) -> dict:
    result, _ = mpirun([os.path.abspath(__file__), name], timeout=timeout)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout  # rank 0 reports, once
    return json.loads(lines[0])


# ----------------------------------------------------------------------------------------------- tests


def test_two_ranks_on_half_the_batch_equal_one_process_on_all_of_it():
    report = run_worker("equality")
    for case in report["cases"]:
        # the clip threshold is below every step's norm, so clipping acted at every step
        assert min(case["norms"]) > case["clip"], case
        assert case["max_abs_diff"] <= 1e-12, case
        assert case["ranks_max_abs_diff"] == 0.0, case  # the ranks hold the very same parameters
        assert case["without_allreduce_diff"] > 1e-6, case  # the comparison can fail
    assert {case["optimizer"] for case in report["cases"]} == {"sgd", "adam"}
    assert report["buckets_default"] == 1 and report["buckets_small"] > 3


def test_broadcast_parameters_makes_differently_initialised_ranks_equal():
    report = run_worker("broadcast")
    assert report["differed_before"] > 1e-3
    assert report["after_vs_root"] == 0.0 and report["after_across_ranks"] == 0.0
    assert report["allreduce_sum"] == 3.0 and report["allreduce_mean"] == 1.5
    assert report["shards"] == [[0, 1, 2, 3], [4, 5, 6]]
    assert report["loaded_on_both"] is True and report["missing_raised_on_both"] is True


@pytest.mark.parametrize("worker", ["fail", "fail_before_mpi"])
def test_a_rank_that_raises_stops_the_whole_job_with_its_error(worker):
    result, elapsed = mpirun([os.path.abspath(__file__), worker], timeout=60)
    assert result.returncode != 0
    assert "ValueError: rank 1 fails on purpose" in result.stderr
    assert "rank 1 of 2 raised an uncaught exception" in result.stderr
    assert elapsed < 30, f"the job took {elapsed:.1f} s to stop"


def test_char_lm_on_two_ranks_matches_one_process_logs_once_and_resumes(tmp_path, load_example):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    common = ["--data", str(text), "--batch-size", "4", "--seq-len", "16", "--hidden-size", "32", "--embed-size", "8",
              "--sample-len", "20", "--no-progress", "--lr", "1e-2", "--save-every", "0"]

    def run(out: str, steps: int, *extra: str) -> str:
        result, _ = mpirun([CHAR_LM, "--distributed", *common, "--out", str(tmp_path / out), "--steps", str(steps),
                            *extra], timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    out = run("two", 30)
    assert out.count("checkpoint: ") == 1 and out.count("sample:") == 1  # rank 0 alone prints
    assert "distributed: 2 ranks, 2 of 4 streams each" in out
    before = float(out.split("validation loss: ")[1].split(" -> ")[0])
    after = float(out.split(" -> ")[-1].split(" nats")[0])
    assert after < before - 0.5
    two = np.load(tmp_path / "two" / "checkpoint.npz")
    assert int(two["step"]) == 30 and two["carried.0"].shape == (1, 4, 32)  # every stream's state, not rank 0's

    # one process on the whole batch: the same run (float32, so to rounding)
    assert load_example("char_lm").main([*common, "--out", str(tmp_path / "one"), "--steps", "30"]) == 0
    one = np.load(tmp_path / "one" / "checkpoint.npz")
    for key in [k for k in one.files if k.startswith(("model.", "carried."))]:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=key)  # measured: 9.5e-7
    assert np.abs(two["losses"] - one["losses"]).max() < 1e-5

    # a distributed resume continues exactly where the straight run would be
    run("resumed", 20)
    assert run("resumed", 10, "--resume").count("resumed from") == 1
    resumed = np.load(tmp_path / "resumed" / "checkpoint.npz")
    assert int(resumed["step"]) == 30
    for key in [k for k in two.files if k.startswith(("model.", "optim.", "carried."))]:
        np.testing.assert_array_equal(resumed[key], two[key], err_msg=key)


def test_gpu_allreduce_on_two_ranks_matches_the_cpu():
    from tinygrad_rnn.backend import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"cuda: {reason}")
    report = run_worker("gpu")
    assert report["host_max_abs_diff"] <= 1e-10
    if report["gpus"] >= 2:
        assert report["nccl_max_abs_diff"] <= 1e-10
    else:
        pytest.skip("NCCL needs one GPU per rank; only the host-staging path ran")


# in-process: the splitting rule needs no MPI


def test_shard_range_splits_like_numpy_array_split():
    import tinygrad_rnn.distributed as dist
    from tinygrad_rnn.distributed import shard, shard_range

    assert sys.excepthook is not dist._abort_on_uncaught_exception  # importing outside mpiexec changes nothing

    for n, p in [(10, 3), (7, 2), (4, 4), (33, 8)]:
        parts = [shard_range(n, r, p) for r in range(p)]
        assert [i for part in parts for i in part] == list(range(n))
        assert [len(part) for part in parts] == [len(a) for a in np.array_split(np.arange(n), p)]
    x = np.arange(24).reshape(2, 6, 2)
    np.testing.assert_array_equal(shard(x, 1, 2, dim=1), x[:, 3:])
    assert shard(list("abcde"), 0, 2) == list("abc")
    with pytest.raises(ValueError, match="3 items cannot be shared by 4 ranks"):
        shard_range(3, 0, 4)
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        shard_range(3, 2, 2)


def test_distributed_sampler_splits_each_epoch_like_torch():
    from tinygrad_rnn.distributed import DistributedSampler

    data = list(range(10))
    ranks = [DistributedSampler(data, num_replicas=3, rank=r, shuffle=False) for r in range(3)]
    assert [list(s) for s in ranks] == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded from the start
    assert [len(s) for s in ranks] == [4, 4, 4]
    dropped = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True)) for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    shuffled = [DistributedSampler(data, num_replicas=2, rank=r, seed=5) for r in range(2)]
    first = [list(s) for s in shuffled]
    assert sorted(first[0] + first[1]) == data  # a partition of the dataset
    for s in shuffled:
        s.set_epoch(1)
    second = [list(s) for s in shuffled]
    assert sorted(second[0] + second[1]) == data and second != first
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        DistributedSampler(data, num_replicas=2, rank=2)
    pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for r in range(3):  # without shuffling the indices are torch's exactly
        assert list(TorchSampler(data, num_replicas=3, rank=r, shuffle=False)) == list(ranks[r])
        assert list(TorchSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True)) == dropped[r]


# ----------------------------------------------------------------------------------------------- workers (MPI)


def _model(seed: int):
    import tinygrad_rnn as tg
    from tinygrad_rnn import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(11, 5, dtype=np.float64)
            self.rnn = nn.LSTM(5, 7, dtype=np.float64)
            self.head = nn.Linear(7, 11, dtype=np.float64)

        def forward(self, ids):
            out, _ = self.rnn(self.embed(ids))
            return self.head(out)

    tg.manual_seed(seed)
    return Tiny()


def _train(optimizer: str, x: np.ndarray, y: np.ndarray, clip: float, comm, weight=None, reduce=True,
           bucket_cap_mb: float = 25.0):
    """A few steps of SGD with momentum or Adam, with clipping; x, y (steps, T, B) int."""
    import tinygrad_rnn as tg
    import tinygrad_rnn.distributed as dist
    from tinygrad_rnn import functional as F
    from tinygrad_rnn import optim

    model = _model(seed=1)
    params = list(model.parameters())
    opt = optim.SGD(params, lr=0.5, momentum=0.9) if optimizer == "sgd" else optim.Adam(params, lr=0.05)
    norms, buckets = [], 0
    for xs, ys in zip(x, y, strict=False):
        logits = model(tg.Tensor(xs))
        loss = F.cross_entropy(logits.reshape(-1, 11), tg.Tensor(ys.reshape(-1)))
        opt.zero_grad()
        loss.backward()
        if reduce:
            buckets = dist.allreduce_gradients(params, weight=weight, bucket_cap_mb=bucket_cap_mb, comm=comm)
        norms.append(float(optim.clip_grad_norm_(params, clip)))
        opt.step()
    return [p.array.copy() for p in params], norms, buckets


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=False))


def worker_equality() -> None:
    from mpi4py import MPI

    import tinygrad_rnn.distributed as dist

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    cases = []
    buckets = {}
    for optimizer, batch, weighted in [("sgd", 8, False), ("adam", 8, False), ("adam", 7, True)]:
        x = rng.integers(0, 11, size=(5, 6, batch))  # 5 steps of (T=6, B) characters
        y = rng.integers(0, 11, size=(5, 6, batch))
        clip = 0.05
        # one process, the whole batch (COMM_SELF: a world of one, the allreduce is a no-op)
        ref, ref_norms, _ = _train(optimizer, x, y, clip, MPI.COMM_SELF)
        xs, ys = dist.shard(x, dim=2), dist.shard(y, dim=2)  # this rank's streams of the batch
        weight = ys[0].size if weighted else None  # unequal shards (4 and 3): weight by the shard's size
        got, norms, buckets["default"] = _train(optimizer, xs, ys, clip, comm, weight)
        alone, _, _ = _train(optimizer, xs, ys, clip, comm, weight, reduce=False)
        everyone = comm.allgather(got)
        cases.append({"optimizer": optimizer, "batch": batch, "weighted": weighted, "clip": clip, "norms": norms,
                      "max_abs_diff": _max_diff(ref, got),
                      "norm_diff": max(abs(a - b) for a, b in zip(ref_norms, norms, strict=False)),
                      "ranks_max_abs_diff": _max_diff(everyone[0], everyone[1]),
                      "without_allreduce_diff": _max_diff(ref, alone)})
    x = rng.integers(0, 11, size=(2, 6, 8))
    small, _, buckets["small"] = _train("adam", dist.shard(x, dim=2), dist.shard(x, dim=2), 0.05, comm,
                                        bucket_cap_mb=1e-3)
    ref, _, _ = _train("adam", x, x, 0.05, MPI.COMM_SELF)
    assert _max_diff(small, ref) <= 1e-12, _max_diff(small, ref)
    if comm.rank == 0:
        print(json.dumps({"cases": cases, "buckets_default": buckets["default"], "buckets_small": buckets["small"]}))


def worker_broadcast() -> None:
    import tempfile

    import tinygrad_rnn.distributed as dist

    rank, _ = dist.init()
    model = _model(seed=100 + rank)  # a different initialisation on every rank
    before = [p.array.copy() for p in model.parameters()]
    root_before = dist.broadcast_object(before)  # rank 0's initial values, on every rank
    initial = dist._comm().allgather(before)
    differed = _max_diff(initial[0], initial[1])
    dist.broadcast_parameters(model)
    after = [p.array.copy() for p in model.parameters()]
    everyone = dist._comm().allgather(after)
    report = {"differed_before": differed, "after_vs_root": _max_diff(after, root_before),
              "after_across_ranks": _max_diff(everyone[0], everyone[1])}
    report["allreduce_sum"] = dist.allreduce(rank + 1.0)
    report["allreduce_mean"] = dist.allreduce(np.array([rank + 1.0]), op="mean").tolist()[0]
    report["shards"] = dist._comm().allgather(list(dist.shard(range(7))))
    # checkpoint helpers: rank 0 writes, every rank gets rank 0's copy; a missing file raises on every rank
    folder = dist.broadcast_object(tempfile.mkdtemp() if rank == 0 else None)
    path = os.path.join(folder, "ckpt.npz")
    dist.save_on_main({"w": np.full(3, 7.0 + rank)}, path)
    loaded = dist.load_on_main(path)
    report["loaded_on_both"] = all(dist._comm().allgather(bool((loaded["w"] == 7.0).all())))
    try:
        dist.load_on_main(os.path.join(folder, "missing.npz"))
        raised = False
    except FileNotFoundError:
        raised = True
    report["missing_raised_on_both"] = all(dist._comm().allgather(raised))
    dist.print0(json.dumps(report))


def worker_fail() -> None:
    import tinygrad_rnn as tg
    import tinygrad_rnn.distributed as dist

    rank, _ = dist.init()
    model = _model(seed=0)
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    model(tg.Tensor(np.zeros((3, 2), dtype=np.int64))).sum().backward()
    dist.allreduce_gradients(model.parameters())  # rank 0 waits here for a rank that is gone
    time.sleep(60)  # not reached: the abort stops this rank too


def worker_fail_before_mpi() -> None:
    import tinygrad_rnn.distributed as dist  # under mpiexec the import alone installs the hook

    if os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK")) == "1":
        raise ValueError("rank 1 fails on purpose")  # before this rank has started MPI at all
    dist.init()
    dist.allreduce(1.0)  # rank 0 waits here for a rank that is gone
    time.sleep(60)


def worker_gpu() -> None:  # unverified until it runs on a machine with a GPU
    import cupy

    import tinygrad_rnn as tg
    import tinygrad_rnn.distributed as dist

    rank, size = dist.init()
    gpus = cupy.cuda.runtime.getDeviceCount()
    device = dist.device_for_rank("cuda")
    report = {"gpus": gpus}
    for backend in ["host", "nccl"] if gpus >= size else ["host"]:
        model = _model(seed=3)
        x = np.random.default_rng(rank).integers(0, 11, size=(6, 4))
        model(tg.Tensor(x)).sum().backward()
        dist.allreduce_gradients(model.parameters())
        expected = [g.copy() for g in (p.grad.array for p in model.parameters())]
        model_gpu = _model(seed=3).to(device)
        model_gpu(tg.Tensor(x, device=device)).sum().backward()
        n = dist.allreduce_gradients(model_gpu.parameters(), gpu_backend=backend)
        got = [cupy.asnumpy(p.grad.array) for p in model_gpu.parameters()]
        report[f"{backend}_max_abs_diff"] = _max_diff(expected, got)
        report[f"{backend}_buckets"] = n
    dist.print0(json.dumps(report))


if __name__ == "__main__":
    workers = {"equality": worker_equality, "broadcast": worker_broadcast, "fail": worker_fail,
               "fail_before_mpi": worker_fail_before_mpi, "gpu": worker_gpu}
    workers[sys.argv[1]]()
