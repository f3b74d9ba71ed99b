"""The shared training loop and torch helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.models import ModelFitError
from recsys.models.torch_utils import (
    csr_to_torch_batch,
    load_numpy_state,
    predict_in_batches,
    resolve_device,
    seed_everything,
    state_dict_to_numpy,
    train_epochs,
)


class _Holder:  # stands in for a model: train_epochs writes training_log_ and best_epoch_
    training_log_ = None


def _toy(seed: int = 0):
    seed_everything(seed)
    x = sp.random(50, 12, density=0.3, format="csr", random_state=0, dtype=np.float32)
    net = torch.nn.Linear(12, 12)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    return x, net, opt


def test_resolve_device() -> None:
    assert resolve_device(None).type == "cpu"
    assert resolve_device("CPU").type == "cpu"
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_csr_batch_densifies_only_the_rows() -> None:
    x = sp.csr_matrix(np.arange(12, dtype=np.float32).reshape(4, 3))
    b = csr_to_torch_batch(x, "cpu", np.array([2, 0]))
    assert b.dtype == torch.float32 and b.shape == (2, 3)
    np.testing.assert_array_equal(b.numpy(), x.toarray()[[2, 0]])
    np.testing.assert_array_equal(csr_to_torch_batch(x.toarray(), None).numpy(), x.toarray())


def test_predict_in_batches_matches_one_pass_and_restores_mode() -> None:
    x, net, _ = _toy()
    net.train()
    out = predict_in_batches(net, x, "cpu", batch_size=7, module=net)
    with torch.no_grad():
        full = net(torch.from_numpy(x.toarray())).numpy()
    np.testing.assert_allclose(out, full, rtol=1e-6, atol=1e-6)
    assert net.training


def test_train_epochs_logs_and_is_deterministic() -> None:
    logs, weights = [], []
    for _ in range(2):
        x, net, opt = _toy()
        holder = _Holder()
        seen_rows = []

        def step(batch, net=net, seen_rows=seen_rows):
            seen_rows.append(batch.shape[0])
            return ((net(batch) - batch) ** 2).sum(1).mean()

        log = train_epochs(holder, net, x, step, opt, epochs=3, batch_size=16, seed=5, device="cpu")
        assert holder.training_log_ is log and holder.best_epoch_ == 3
        assert seen_rows == [16, 16, 16, 2] * 3
        logs.append([r["train_loss"] for r in log])
        weights.append(net.weight.detach().clone())
    assert logs[0] == logs[1] and logs[0][-1] < logs[0][0]
    assert torch.equal(weights[0], weights[1])
    assert set(log[0]) == {"epoch", "train_loss", "val_ndcg@100", "seconds"} and log[0]["val_ndcg@100"] is None


def test_train_epochs_raises_on_nan() -> None:
    x, net, opt = _toy()
    with pytest.raises(ModelFitError, match="epoch 1"):
        train_epochs(
            _Holder(), net, x, lambda b: net(b).sum() * np.nan, opt, epochs=2, batch_size=8, seed=0, device="cpu"
        )


def test_train_epochs_refuses_bad_schedule() -> None:
    x, net, opt = _toy()
    for kw, match in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"patience": 0}, "patience")]:
        args = {"epochs": 1, "batch_size": 4, **kw}
        with pytest.raises(ValueError, match=match):
            train_epochs(_Holder(), net, x, lambda b: net(b).sum(), opt, seed=0, device="cpu", **args)


def test_numpy_state_round_trip_and_mismatch() -> None:
    _, net, _ = _toy(seed=1)
    arrays = state_dict_to_numpy(net, "net.")
    assert set(arrays) == {"net.weight", "net.bias"} and all(isinstance(a, np.ndarray) for a in arrays.values())
    other = torch.nn.Linear(12, 12)
    load_numpy_state(other, arrays, "net.")
    assert torch.equal(other.weight, net.weight)
    with pytest.raises(ValueError, match="missing"):
        load_numpy_state(other, {"net.weight": arrays["net.weight"]}, "net.")
    with pytest.raises(ValueError, match="shape"):
        load_numpy_state(torch.nn.Linear(12, 5), arrays, "net.")


def test_torch_threads_sets_and_restores() -> None:
    from recsys.models.torch_utils import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="thread count"), torch_threads(0):
        pass
