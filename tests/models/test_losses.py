"""Losses on hand-computed cases (sum over items, mean over users)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys.models.losses import (
    bce_loss,
    focal_loss,
    get_loss,
    kl_normal,
    mse_loss,
    multinomial_loss,
    score_kind_array,
    score_kind_for,
    score_kind_from_array,
)

LN2, LN3 = math.log(2), math.log(3)


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_bce_sums_items_and_averages_users() -> None:
    # sigmoid(0) = 1/2 on a positive: ln 2; sigmoid(ln 3) = 3/4 on a negative: -ln(1/4) = ln 4
    assert bce_loss(t([0.0, LN3]), t([1.0, 0.0])).item() == pytest.approx(3 * LN2)
    # second user: sigmoid(-ln 3) = 1/4 on a positive: ln 4; mean of ln 8 and ln 4
    two = bce_loss(t([0.0, LN3], [-LN3, 0.0]), t([1.0, 0.0], [1.0, 1.0]))
    assert two.item() == pytest.approx((3 * LN2 + (2 * LN2 + LN2)) / 2)


def test_multinomial_is_negative_log_softmax_of_the_users_items() -> None:
    # softmax([0, 0, ln 2]) = [1/4, 1/4, 1/2]; items 0 and 2: -(ln 1/4 + ln 1/2) = ln 8
    assert multinomial_loss(t([0.0, 0.0, LN2]), t([1.0, 0.0, 1.0])).item() == pytest.approx(3 * LN2)
    # shifting all logits of a user changes nothing
    assert multinomial_loss(t([5.0, 5.0, 5.0 + LN2]), t([1.0, 0.0, 1.0])).item() == pytest.approx(3 * LN2)


def test_focal_down_weights_easy_items() -> None:
    logits, target = t([0.0, LN3]), t([1.0, 0.0])
    # p_t = 1/2 and 1/4: (1/2)^2 ln 2 + (3/4)^2 ln 4
    assert focal_loss(logits, target, gamma=2.0).item() == pytest.approx(0.25 * LN2 + 0.5625 * 2 * LN2)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(bce_loss(logits, target).item())
    # alpha weighs positives by alpha and negatives by 1 - alpha
    weighted = focal_loss(logits, target, gamma=2.0, alpha=0.25).item()
    assert weighted == pytest.approx(0.25 * 0.25 * LN2 + 0.75 * 0.5625 * 2 * LN2)


def test_mse_on_sigmoid_outputs() -> None:
    assert mse_loss(t([0.0, 0.0]), t([1.0, 0.0])).item() == pytest.approx(0.25 + 0.25)


def test_pos_weight_scales_only_the_users_items() -> None:
    logits, target = t([0.0, LN3]), t([1.0, 0.0])
    assert bce_loss(logits, target, pos_weight=10.0).item() == pytest.approx(10 * LN2 + 2 * LN2)
    assert mse_loss(t([0.0, 0.0]), target, pos_weight=3.0).item() == pytest.approx(3 * 0.25 + 0.25)
    focal = focal_loss(logits, target, gamma=2.0, pos_weight=4.0).item()
    assert focal == pytest.approx(4 * 0.25 * LN2 + 0.5625 * 2 * LN2)
    assert get_loss("bce", pos_weight=10.0)(logits, target).item() == pytest.approx(12 * LN2)


def test_kl_of_diagonal_gaussian() -> None:
    # 0.5 * sum(exp(logvar) + mu^2 - 1 - logvar) = 0.5 * ((1 + 1 - 1 - 0) + (2 + 0 - 1 - ln 2))
    assert kl_normal(t([1.0, 0.0]), t([0.0, LN2])).item() == pytest.approx(1 - LN2 / 2)
    assert kl_normal(torch.zeros(4, 3), torch.zeros(4, 3)).item() == 0.0


def test_get_loss_and_score_kinds() -> None:
    assert get_loss("bce") is bce_loss
    assert get_loss("multinomial") is multinomial_loss
    focal = get_loss("focal", gamma=1.0)
    assert focal(t([0.0]), t([1.0])).item() == pytest.approx(0.5 * LN2)
    assert [score_kind_for(n) for n in ("bce", "focal", "multinomial", "mse")] == [
        "sigmoid",
        "sigmoid",
        "softmax",
        "sigmoid",
    ]
    for kind in ("sigmoid", "softmax", "similarity"):
        assert score_kind_from_array(score_kind_array(kind)) == kind
    with pytest.raises(ValueError, match="hinge"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="takes no parameters"):
        get_loss("bce", gamma=2.0)
    with pytest.raises(ValueError, match="gamma"):
        get_loss("focal", gamma=-1.0)
    with pytest.raises(ValueError, match="pos_weight"):
        get_loss("bce", pos_weight=0.0)
    with pytest.raises(ValueError, match="pos_weight"):
        get_loss("multinomial", pos_weight=2.0)
    with pytest.raises(ValueError, match="score kind"):
        score_kind_from_array(np.asarray([7]))


@pytest.mark.parametrize("fn", [bce_loss, multinomial_loss, focal_loss, mse_loss])
def test_losses_fall_when_logits_move_toward_the_target(fn) -> None:
    target = t([1.0, 0.0, 0.0, 1.0])
    logits = torch.zeros_like(target, requires_grad=True)
    fn(logits, target).backward()
    better = (logits - 0.5 * logits.grad).detach()
    assert fn(better, target).item() < fn(torch.zeros_like(target), target).item()


def _sampled_case(seed: int = 0):
    import scipy.sparse as sp

    gen = torch.Generator().manual_seed(seed)
    b, h, n = 6, 5, 40
    hidden = torch.randn(b, h, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(n, h, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
    x = sp.random(b, n, density=0.15, format="csr", random_state=seed, dtype=np.float64)
    x.data[:] = np.arange(1, x.nnz + 1) % 3 + 1.0  # play-count-like weights, not only ones
    x.sort_indices()
    rows = torch.from_numpy(np.repeat(np.arange(b), np.diff(x.indptr)))
    cols = torch.from_numpy(x.indices.astype(np.int64))
    return hidden, weight, bias, x, rows, cols, torch.from_numpy(x.data)


def test_sampled_softmax_with_every_item_sampled_is_the_full_softmax() -> None:
    from recsys.models.losses import sampled_softmax_loss

    hidden, weight, bias, x, rows, cols, values = _sampled_case()
    n = weight.shape[0]
    accidental = torch.from_numpy(x.toarray() > 0)
    sampled = sampled_softmax_loss(
        hidden, weight, bias, rows, cols, values, torch.arange(n), torch.zeros(n, dtype=torch.float64), accidental
    )
    full = multinomial_loss(hidden @ weight.T + bias, torch.from_numpy(x.toarray()))
    torch.testing.assert_close(sampled, full)
    g_sampled = torch.autograd.grad(sampled, (hidden, weight, bias))
    g_full = torch.autograd.grad(full, (hidden, weight, bias))
    for a, b in zip(g_sampled, g_full, strict=True):
        torch.testing.assert_close(a, b)
    # a negative that is one of the row's own items must be masked, not counted twice
    unmasked = sampled_softmax_loss(
        hidden,
        weight,
        bias,
        rows,
        cols,
        values,
        torch.arange(n),
        torch.zeros(n, dtype=torch.float64),
        torch.zeros_like(accidental),
    )
    assert float(unmasked.detach()) > float(full.detach()) + 1e-6


def test_sampled_softmax_gradients_finite_and_shaped_with_log_q() -> None:
    from recsys.models.losses import sampled_softmax_loss

    hidden, weight, bias, x, rows, cols, values = _sampled_case(1)
    n, k = weight.shape[0], 15
    q = torch.linspace(1, 3, n, dtype=torch.float64)
    q /= q.sum()
    negs = torch.multinomial(q, k, replacement=True, generator=torch.Generator().manual_seed(0))
    accidental = torch.from_numpy(x.toarray()[:, negs.numpy()] > 0)
    loss = sampled_softmax_loss(hidden, weight, bias, rows, cols, values, negs, torch.log(k * q[negs]), accidental)
    loss.backward()
    assert torch.isfinite(loss)
    assert hidden.grad.shape == hidden.shape and weight.grad.shape == weight.shape and bias.grad.shape == bias.shape
    assert all(torch.isfinite(t.grad).all() for t in (hidden, weight, bias))
    touched = set(cols.tolist()) | set(negs.tolist())
    untouched = [j for j in range(n) if j not in touched]
    assert untouched and weight.grad[untouched].abs().sum() == 0  # cost and gradient: sampled items only
