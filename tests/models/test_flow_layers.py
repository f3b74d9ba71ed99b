"""Glow layers: exact inverses, log-determinants that match autograd Jacobians, ActNorm init."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recsys.models.flow_layers import (  # noqa: E402
    ActNorm,
    AffineCoupling,
    Glow,
    InvertibleLinear,
    gaussianity,
    standard_normal_log_prob,
)


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Move every parameter away from its (often identity) initial value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _layers(dim: int) -> dict[str, torch.nn.Module]:
    gen = torch.Generator().manual_seed(dim)
    return {
        "actnorm": ActNorm(dim),
        "linear": InvertibleLinear(dim, generator=gen),
        "coupling": AffineCoupling(dim, 8),
        "coupling_flip": AffineCoupling(dim, 8, flip=True),
        "glow": Glow(dim, n_steps=3, hidden=8, seed=dim),
    }


def _prepared(module: torch.nn.Module, dim: int) -> torch.nn.Module:
    module = module.double()
    x0 = torch.randn(32, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3 + 2
    module.train()
    module(x0)  # ActNorm data-dependent init
    _randomise(module, seed=dim)
    return module.eval()


@pytest.mark.parametrize("name", ["actnorm", "linear", "coupling", "coupling_flip", "glow"])
@pytest.mark.parametrize("dim", [4, 5, 6])
def test_inverse_recovers_input(name: str, dim: int) -> None:
    module = _prepared(_layers(dim)[name], dim)
    x = torch.randn(64, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y, _ = module(x)
    assert not torch.allclose(y, x, atol=1e-3), "layer is the identity: the test would prove nothing"
    torch.testing.assert_close(module.inverse(y), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["actnorm", "linear", "coupling", "coupling_flip", "glow"])
@pytest.mark.parametrize("dim", [4, 5, 6])
def test_logdet_matches_autograd_jacobian(name: str, dim: int) -> None:
    module = _prepared(_layers(dim)[name], dim)
    xs = torch.randn(3, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, logdet = module(xs)
    for i in range(xs.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: module(v[None])[0][0], xs[i])
        expected = torch.linalg.slogdet(jac).logabsdet
        assert abs(float(logdet[i].detach()) - float(expected)) < 1e-6


def test_float32_round_trip_of_the_stack() -> None:
    flow = Glow(16, n_steps=4, hidden=32, seed=0)
    flow.train()
    flow(torch.randn(128, 16) * 5)
    _randomise(flow, seed=0, scale=0.05)  # 0.3 makes 16x16 LU factors ill-conditioned (cond ~1e8)
    flow.eval()
    x = torch.randn(256, 16)
    with torch.no_grad():
        z, _ = flow(x)
        torch.testing.assert_close(flow.inverse(z), x, atol=1e-4, rtol=0)


def test_actnorm_init_gives_zero_mean_unit_variance() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=gen) * torch.tensor([0.1, 1, 5, 20, 0.01, 3]) + torch.arange(6) * 7
    norm = ActNorm(6)
    assert int(norm.initialized) == 0
    y, _ = norm.train()(x)
    assert int(norm.initialized) == 1
    torch.testing.assert_close(y.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(6), atol=1e-3, rtol=0)
    # a second batch does not re-initialise
    bias = norm.bias.detach().clone()
    norm(x * 10)
    torch.testing.assert_close(norm.bias.detach(), bias)


def test_actnorm_does_not_initialise_in_eval_mode() -> None:
    norm = ActNorm(3).eval()
    x = torch.randn(10, 3) * 4 + 1
    y, logdet = norm(x)
    assert int(norm.initialized) == 0
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(logdet, torch.zeros(10))


def test_invertible_linear_is_lu_of_a_rotation_at_init() -> None:
    lin = InvertibleLinear(5, generator=torch.Generator().manual_seed(0))
    w = lin.weight().detach()
    torch.testing.assert_close(w @ w.T, torch.eye(5), atol=1e-5, rtol=0)
    assert abs(float(lin.log_s.detach().sum())) < 1e-5  # |det| of a rotation is 1


def test_coupling_leaves_conditioning_half_unchanged() -> None:
    for flip in (False, True):
        c = AffineCoupling(5, 8, flip=flip)
        _randomise(c, 0)
        x = torch.randn(7, 5)
        y, _ = c(x)
        kept = slice(3, 5) if flip else slice(0, 2)
        changed = slice(0, 3) if flip else slice(2, 5)
        torch.testing.assert_close(y[:, kept], x[:, kept])
        assert not torch.allclose(y[:, changed], x[:, changed])


def test_glow_state_dict_round_trip_keeps_outputs() -> None:
    a = Glow(6, n_steps=2, hidden=8, seed=1)
    a.train()
    a(torch.randn(20, 6) * 2)
    _randomise(a, 1)
    b = Glow(6, n_steps=2, hidden=8, seed=99)
    b.load_state_dict(a.state_dict())
    assert b.is_initialized
    x = torch.randn(4, 6)
    torch.testing.assert_close(a.eval()(x)[0], b.train()(x)[0])  # b must not re-initialise


def test_maximum_likelihood_training_gaussianises_a_skewed_cloud() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(2000, 4, generator=gen)
    data = torch.stack([base[:, 0], base[:, 1] + base[:, 0] ** 2, torch.exp(base[:, 2]), base[:, 3] * 3], 1)
    flow = Glow(4, n_steps=4, hidden=32, seed=0)
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        idx = torch.randint(0, 2000, (256,), generator=gen)
        loss = -flow.log_prob(data[idx]).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z, _ = flow.eval()(data)
        final = float(-flow.log_prob(data).mean())
    assert final < first - 1.0
    stats = gaussianity(z.numpy())
    assert stats["mean_abs_mean"] < 0.1
    assert 0.8 < stats["min_std"] and stats["max_std"] < 1.2
    assert stats["mean_abs_skew"] < 0.3


def test_standard_normal_log_prob_matches_torch_distribution() -> None:
    z = torch.randn(5, 3)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(standard_normal_log_prob(z), expected)


def test_gaussianity_of_normal_sample() -> None:
    z = np.random.default_rng(0).standard_normal((5000, 4))
    s = gaussianity(z)
    assert s["mean_abs_mean"] < 0.05 and 0.95 < s["min_std"] < s["max_std"] < 1.05
    skewed = gaussianity(np.exp(z))
    assert skewed["mean_abs_skew"] > 1.0


@pytest.mark.parametrize("bad", [0, -1])
def test_glow_rejects_bad_steps(bad: int) -> None:
    with pytest.raises(ValueError, match="n_steps"):
        Glow(4, n_steps=bad)


def test_coupling_rejects_dim_one() -> None:
    with pytest.raises(ValueError, match="dim >= 2"):
        AffineCoupling(1, 4)
