"""Multi-VAE: the contract, KL annealing, encode = posterior mean."""

from __future__ import annotations

import numpy as np

from recsys.models import get_model_class
from recsys.models.multvae import MultVAE
from tests.models.contract import RecommenderContract, contract_split


def small_vae(**kw) -> MultVAE:
    params = dict(latent_dim=16, hidden_dim=64, epochs=12, batch_size=64, lr=3e-3, seed=0)
    return MultVAE(**{**params, **kw})


class TestMultVAEContract(RecommenderContract):
    def make_model(self) -> MultVAE:
        return small_vae()

    def test_kl_annealing_reaches_beta_max(self, model: MultVAE) -> None:
        betas = [r["beta"] for r in model.training_log_]
        assert betas == sorted(betas) and 0 < betas[-1] <= model.beta_max
        assert all(r["kl"] >= 0 for r in model.training_log_)

    def test_encode_is_deterministic_posterior_mean(self, model: MultVAE, split) -> None:
        z1, z2 = model.encode(split.test_foldin), model.encode(split.test_foldin)
        np.testing.assert_array_equal(z1, z2)


def test_registered_and_paper_defaults() -> None:
    assert get_model_class("multvae") is MultVAE
    m = MultVAE()
    assert (m.latent_dim, m.hidden_dim, m.dropout, m.beta_max, m.lr, m.loss) == (
        200,
        600,
        0.5,
        0.2,
        1e-3,
        "multinomial",
    )


def test_fixed_anneal_steps_caps_beta() -> None:
    split = contract_split()
    model = small_vae(epochs=3, total_anneal_steps=2, beta_max=0.3).fit(split.train)
    assert model.training_log_[-1]["beta"] == 0.3
    assert model.score_kind == "softmax"
    assert small_vae(loss="bce", epochs=1).fit(split.train).score_kind == "sigmoid"


class TestSampledSoftmaxMultVAEContract(RecommenderContract):
    """The sampled softmax with sparse input and row-wise (lazy) Adam updates passes the same contract
    (registry round trip included)."""

    def make_model(self) -> MultVAE:
        return small_vae(loss="sampled_softmax", n_negatives=60, row_updates=True)

    def test_trained_sparse_and_sampled(self, model: MultVAE) -> None:
        assert model._use_sparse_input() and model._use_row_updates() and model.score_kind == "softmax"
        assert model.get_params()["n_negatives"] == 60


def test_row_updates_move_only_touched_rows() -> None:
    import torch

    from recsys.models.multvae import _RowAdam
    from recsys.models.torch_utils import csr_to_sparse_batch

    split = contract_split()
    x = split.train.binary()
    model = small_vae(loss="sampled_softmax", n_negatives=20, dropout=0.0)
    model.n_items_, model.device_ = x.shape[1], torch.device("cpu")
    model.module_ = model._build_module()
    net = model.module_
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = _RowAdam(net, lr=1e-2, weight_decay=0.0)
    batch = csr_to_sparse_batch(x, None, np.arange(8))
    negs, log_exp, accidental = model._negative_sampler(x)(batch)
    opt.zero_grad()
    loss, _, _ = opt.sampled_loss(batch, negs, log_exp, accidental)
    loss.backward()
    opt.step()
    after = net.state_dict()
    items = np.unique(batch.cols.numpy())
    out_rows = np.unique(np.r_[items, negs.numpy()])
    moved_in = (after["encoder.0.weight"] != before["encoder.0.weight"]).any(0).numpy()
    moved_out = (after["decoder.2.weight"] != before["decoder.2.weight"]).any(1).numpy()
    assert set(np.flatnonzero(moved_in)) == set(items)
    assert set(np.flatnonzero(moved_out)) == set(out_rows)
    assert (after["encoder.2.weight"] != before["encoder.2.weight"]).any()  # the dense layers move too


def test_sparse_input_encodes_like_dense_input() -> None:
    split = contract_split()
    model = small_vae(epochs=1).fit(split.train)
    dense = model.encode(split.test_foldin)
    model.sparse_input = True
    np.testing.assert_allclose(model.encode(split.test_foldin), dense, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.score(split.test_foldin), model.decode(dense), rtol=1e-4, atol=1e-4)


def test_every_item_sampled_trains_like_the_full_softmax() -> None:
    """n_negatives >= n_items: every item once, no correction -> the same loss, so the same weights."""
    split = contract_split()
    full = small_vae(epochs=2, dropout=0.0, sparse_input=True).fit(split.train)
    every = small_vae(epochs=2, dropout=0.0, loss="sampled_softmax", n_negatives=10**6).fit(split.train)
    np.testing.assert_allclose(
        [r["train_loss"] for r in every.training_log_], [r["train_loss"] for r in full.training_log_], rtol=1e-4
    )
    np.testing.assert_allclose(every.score(split.test_foldin), full.score(split.test_foldin), rtol=1e-3, atol=1e-3)
