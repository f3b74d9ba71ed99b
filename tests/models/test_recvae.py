"""RecVAE: the contract, alternating phases, the composite prior, history-scaled KL weight."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models import get_model_class
from recsys.models.recvae import CompositePrior, RecVAE, RecVAEEncoder, log_normal
from recsys.training import load_template
from tests.models.contract import RecommenderContract, contract_split


def small_recvae(**kw) -> RecVAE:
    params = dict(latent_dim=16, hidden_dim=64, epochs=6, batch_size=64, lr=3e-3, seed=0)
    return RecVAE(**{**params, **kw})


class TestRecVAEContract(RecommenderContract):
    def make_model(self) -> RecVAE:
        return small_recvae()

    def test_log_has_kl_per_cycle(self, model: RecVAE) -> None:
        log = model.training_log_
        assert [r["epoch"] for r in log] == list(range(1, len(log) + 1))
        assert all(np.isfinite(r["kl"]) and np.isfinite(r["train_loss"]) for r in log)

    def test_prior_is_not_stored(self, model: RecVAE) -> None:
        keys = set(model._state())
        assert not any("old" in k for k in keys)  # only encoder + decoder reach the registry
        assert any(k.startswith("net.encoder.") for k in keys) and any(k.startswith("net.decoder.") for k in keys)


def test_registered_with_paper_defaults_and_template() -> None:
    assert get_model_class("recvae") is RecVAE
    m = RecVAE()
    assert (m.latent_dim, m.hidden_dim, m.gamma, m.dropout, m.lr, m.batch_size) == (200, 600, 0.005, 0.5, 5e-4, 500)
    assert (m.encoder_epochs, m.decoder_epochs, m.score_kind) == (3, 1, "softmax")
    cfg = load_template("recvae")
    assert cfg["family"] == "recvae"
    RecVAE(**cfg["params"])  # every template key is a parameter


def test_alternating_phases_update_only_their_half(monkeypatch) -> None:
    """Encoder passes never move the decoder and the decoder pass never moves the encoder."""
    import recsys.models.recvae as mod

    seen: list[tuple[str, bool, bool]] = []
    real = mod.run_epoch

    def spy(module, x, step, opt, *args, **kw):
        enc = [p.detach().clone() for p in module.encoder.parameters()]
        dec = [p.detach().clone() for p in module.decoder.parameters()]
        out = real(module, x, step, opt, *args, **kw)
        enc_moved = any(not torch.equal(a, b) for a, b in zip(enc, module.encoder.parameters(), strict=True))
        dec_moved = any(not torch.equal(a, b) for a, b in zip(dec, module.decoder.parameters(), strict=True))
        seen.append((step.__name__, enc_moved, dec_moved))
        return out

    monkeypatch.setattr(mod, "run_epoch", spy)
    small_recvae(epochs=2, patience=None).fit(contract_split().train)
    assert [s[0] for s in seen] == ["encoder_step"] * 3 + ["decoder_step"] + ["encoder_step"] * 3 + ["decoder_step"]
    assert all(enc and not dec for name, enc, dec in seen if name == "encoder_step")
    assert all(dec and not enc for name, enc, dec in seen if name == "decoder_step")


def test_composite_prior_is_the_mixture_density() -> None:
    torch.manual_seed(0)
    enc = RecVAEEncoder(n_items=12, hidden_dim=8, latent_dim=3)
    prior = CompositePrior(enc, (0.2, 0.5, 0.3))
    x = (torch.rand(4, 12) < 0.4).float()
    z = torch.randn(4, 3)
    mu, logvar = enc(x)
    zero = torch.zeros_like(z)
    expected = torch.log(
        0.2 * log_normal(z, zero, zero).exp()
        + 0.5 * log_normal(z, mu, logvar).exp()
        + 0.3 * log_normal(z, zero, torch.full_like(z, 10.0)).exp()
    )
    torch.testing.assert_close(prior(x, z), expected, rtol=1e-5, atol=1e-5)
    # the prior is frozen: changing the encoder changes q_old only on refresh
    with torch.no_grad():
        enc.mu.bias.add_(1.0)
    torch.testing.assert_close(prior(x, z), expected, rtol=1e-5, atol=1e-5)
    prior.refresh(enc)
    assert not torch.allclose(prior(x, z), expected)


def test_kl_weight_pulls_towards_the_prior() -> None:
    """gamma=None uses beta for everyone; gamma scales the KL term by each user's history length."""
    split = contract_split()
    long_kl = small_recvae(epochs=1, patience=None, gamma=0.05).fit(split.train).training_log_[0]["kl"]
    no_kl = small_recvae(epochs=1, patience=None, gamma=None, beta=0.0).fit(split.train).training_log_[0]["kl"]
    assert long_kl < no_kl  # a KL weight pulls the posterior towards the prior


@pytest.mark.parametrize(
    "bad", [{"dropout": 1.0}, {"gamma": -1.0}, {"prior_weights": (1.0, 0.0, 1.0)}, {"encoder_epochs": 0}]
)
def test_bad_parameters_are_refused_at_fit(bad) -> None:
    with pytest.raises(ValueError):
        small_recvae(**bad).fit(contract_split().train)
