"""The stored latent map: item points, sampling caps, determinism, placement rule, registry round trip.

Fast tests use a linear stub model and the PCA stand-in reducer; one ``slow`` test runs real UMAP on
a tiny input (its numba compilation costs ~10 s per process).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.synthetic import generate_synthetic
from recsys.models.base import LatentRecommender
from recsys.projection import (
    MAP_STEPS,
    PREFIX,
    LatentMap,
    build_map,
    item_points,
    pca_reducer,
    place,
)
from recsys.registry import Registry


class LinearStub(LatentRecommender):
    """z = x W (W fixed random), scores = z Wᵀ: a LatentRecommender without training."""

    family = "linear-stub"

    def __init__(self, *, dim: int = 6, seed: int = 0):
        self.dim = dim
        self.seed = seed

    def fitted(self, n_items: int) -> LinearStub:
        self.n_items_ = n_items
        self.w_ = np.random.default_rng(self.seed).normal(size=(n_items, self.dim)).astype(np.float32)
        return self

    def _encode(self, x):
        return np.asarray(x @ self.w_)

    def _decode(self, z):
        return z @ self.w_.T


@pytest.fixture(scope="module")
def ds():
    return generate_synthetic(n_users=150, n_items=120, n_artists=30, n_tags=4, seed=3)


@pytest.fixture(scope="module")
def stub(ds):
    return LinearStub().fitted(ds.n_items)


def _map(model, ds, **kw):
    kw.setdefault("reducer_factory", pca_reducer)
    return build_map(model, ds.interactions, **kw)


# ---- item points -------------------------------------------------------------------------------
def test_item_points_are_one_item_encodings(stub, ds):
    pts = item_points(stub, ds.n_items, batch_size=7)
    assert pts.shape == (ds.n_items, 6) and pts.dtype == np.float32
    np.testing.assert_allclose(pts, stub.w_, rtol=1e-6)
    np.testing.assert_array_equal(item_points(stub, items=[5, 2]), pts[[5, 2]])


def test_item_points_check_inputs(stub, ds):
    with pytest.raises(ValueError, match="model knows"):
        item_points(stub, ds.n_items + 1)
    with pytest.raises(IndexError):
        item_points(stub, items=[ds.n_items])


# ---- build_map ----------------------------------------------------------------------------------
def test_map_shapes_and_progress(stub, ds):
    calls = []
    m = _map(stub, ds, progress=lambda step, elapsed, info: calls.append((step, info["stage"])))
    assert calls == list(enumerate(MAP_STEPS, start=1))
    assert m.item_coords.shape == (ds.n_items, 2) and m.user_coords.shape == (ds.n_users, 2)
    assert m.item_latent.shape == (ds.n_items, 6) and m.user_latent.shape == (ds.n_users, 6)
    assert m.extra_coords.shape == (0, 2)
    np.testing.assert_array_equal(m.item_index, np.arange(ds.n_items))
    np.testing.assert_allclose(m.user_latent, stub.encode(ds.interactions), rtol=1e-6)
    assert np.isfinite(m.stored_coords).all()


def test_caps_keep_popular_items_and_a_user_sample(stub, ds):
    m = _map(stub, ds, max_users=40, max_items=30)
    assert len(m.user_index) == 40 and len(m.item_index) == 30
    assert np.all(np.diff(m.user_index) > 0) and np.all(np.diff(m.item_index) > 0)
    popularity = np.bincount(ds.interactions.indices, minlength=ds.n_items)
    kept = popularity[m.item_index]
    dropped = np.delete(popularity, m.item_index)
    assert kept.min() >= dropped.max()
    np.testing.assert_allclose(m.user_latent, stub.encode(ds.interactions[m.user_index]), rtol=1e-6)
    np.testing.assert_allclose(m.item_latent, stub.w_[m.item_index], rtol=1e-6)


def test_users_without_history_are_not_sampled(stub, ds):
    x = ds.interactions.tolil()
    x[[0, 3], :] = 0
    m = build_map(stub, sp.csr_matrix(x), reducer_factory=pca_reducer)
    assert 0 not in m.user_index and 3 not in m.user_index and len(m.user_index) == ds.n_users - 2


def test_same_seed_same_map_other_seed_other_sample(stub, ds):
    a = _map(stub, ds, max_users=50, max_items=40, seed=7)
    b = _map(stub, ds, max_users=50, max_items=40, seed=7)
    c = _map(stub, ds, max_users=50, max_items=40, seed=8)
    for key, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[key], err_msg=key)
    assert not np.array_equal(a.user_index, c.user_index)


def test_reducer_gets_the_parameters(stub, ds):
    seen = {}

    def factory(**kw):
        seen.update(kw)
        return pca_reducer(**kw)

    m = _map(stub, ds, n_neighbors=12, min_dist=0.3, n_epochs=50, seed=4, reducer_factory=factory)
    assert seen == {"n_neighbors": 12, "min_dist": 0.3, "n_epochs": 50, "random_state": 4}
    assert (m.n_neighbors, m.min_dist, m.n_epochs, m.seed) == (12, 0.3, 50, 4)
    tiny = _map(stub, ds, max_users=3, max_items=2, n_neighbors=15, reducer_factory=factory)
    assert seen["n_neighbors"] == 4 == tiny.n_neighbors  # clipped to the 5 points - 1


def test_extra_points_are_placed_by_the_rule(stub, ds):
    extra = np.stack([stub.w_[:10].mean(0), stub.w_[3]])
    m = _map(stub, ds, extra_points=extra)
    np.testing.assert_allclose(m.extra_coords, m.place(extra), rtol=1e-6)
    np.testing.assert_allclose(m.extra_coords[1], m.item_coords[3], rtol=1e-6)  # an item's own point


def test_build_map_checks_inputs(stub, ds):
    with pytest.raises(TypeError, match="LatentRecommender"):
        build_map(object(), ds.interactions)
    with pytest.raises(ValueError, match="item columns"):
        build_map(stub, ds.interactions[:, :10], reducer_factory=pca_reducer)
    with pytest.raises(ValueError, match="n_neighbors"):
        _map(stub, ds, n_neighbors=1)


# ---- storage -----------------------------------------------------------------------------------
def test_to_arrays_from_arrays_round_trip(stub, ds):
    m = _map(stub, ds, max_users=60, extra_points=stub.w_[:3], n_neighbors=9, min_dist=0.25, seed=2, k=7)
    arrays = m.to_arrays()
    assert all(key.startswith(PREFIX) for key in arrays)
    assert all(np.issubdtype(v.dtype, np.number) for v in arrays.values())
    back = LatentMap.from_arrays({**arrays, "centroids": np.zeros(3)})
    for name in LatentMap._ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name), err_msg=name)
    assert (back.n_neighbors, back.min_dist, back.n_epochs, back.seed, back.k) == (9, 0.25, m.n_epochs, 2, 7)
    assert LatentMap.has_map(arrays) and not LatentMap.has_map({"centroids": np.zeros(3)})
    with pytest.raises(KeyError, match=r"map\.user_coords"):
        LatentMap.from_arrays({k: v for k, v in arrays.items() if k != "map.user_coords"})
    with pytest.raises(ValueError, match="shape"):
        LatentMap.from_arrays({**arrays, "map.user_coords": arrays["map.user_coords"][:-1]})


def test_registry_round_trip_with_a_trained_model(tmp_path):
    torch = pytest.importorskip("torch")
    from recsys.models.mlp import MLPRecommender

    torch.set_num_threads(1)
    data = generate_synthetic(n_users=120, n_items=80, n_artists=20, n_tags=4, seed=5)
    model = MLPRecommender(latent_dim=8, hidden_dim=16, epochs=2, seed=0).fit(data)
    m = build_map(model, data.interactions, max_users=50, reducer_factory=pca_reducer)
    reg = Registry(tmp_path)
    reg.save(model, dataset=data, model_id="mlp-map", extras=m.to_arrays(), info={"map": m.describe()})
    loaded = reg.load("mlp-map")
    assert loaded.manifest["info"]["map"]["n_users"] == 50
    back = LatentMap.from_arrays(loaded.extras)
    np.testing.assert_array_equal(back.stored_coords, m.stored_coords)
    # the reloaded model puts the stored users back where they are on the map
    z = loaded.model.encode(data.interactions[back.user_index])
    np.testing.assert_allclose(back.place(z), back.user_coords, atol=1e-4)


# ---- placement rule ----------------------------------------------------------------------------
def test_stored_points_are_placed_where_they_are():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 5)).astype(np.float32)
    coords = rng.normal(size=(200, 2)).astype(np.float32)
    out = place(latent, latent, coords, k=10, chunk=64)
    np.testing.assert_array_equal(out, coords.astype(np.float64))


def test_duplicates_share_their_mean_position():
    latent = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    coords = np.array([[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]])
    np.testing.assert_array_equal(place([[0.0, 0.0]], latent, coords, k=3), [[2.0, 0.0]])


def test_a_point_between_two_lands_between_them():
    latent = np.array([[0.0, 0.0], [4.0, 0.0]])
    coords = np.array([[10.0, -1.0], [20.0, 3.0]])
    ts = np.linspace(0.0, 1.0, 21)
    out = place(np.outer(ts, [4.0, 0.0]), latent, coords, k=2)
    np.testing.assert_allclose(out[10], [15.0, 1.0])  # midpoint -> midpoint
    np.testing.assert_array_equal(out[[0, -1]], coords)
    assert np.all(np.diff(out[:, 0]) > 0) and np.all(np.diff(out[:, 1]) > 0)  # moves monotonically
    assert np.abs(np.diff(out, axis=0)).max() < 2.0  # no jumps
    # inverse distance: a quarter of the way is 3x closer to the first point -> 3/4 of its weight
    np.testing.assert_allclose(place([[1.0, 0.0]], latent, coords, k=2), [[12.5, 0.0]])


def test_placement_stays_in_the_hull_of_its_neighbours():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(300, 4))
    coords = rng.uniform(-1, 1, size=(300, 2))
    out = place(rng.normal(size=(50, 4)) * 3, latent, coords, k=5)
    assert np.all(out >= coords.min(0)) and np.all(out <= coords.max(0))
    # k larger than the stored set uses them all
    assert place(latent[:1] + 0.1, latent[:3], coords[:3], k=10).shape == (1, 2)


def test_place_checks_inputs():
    latent, coords = np.zeros((3, 4)), np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        place(np.zeros((1, 3)), latent, coords)
    with pytest.raises(ValueError, match="NaN"):
        place(np.full((1, 4), np.nan), latent, coords)
    with pytest.raises(ValueError, match="stored_coords"):
        place(np.zeros((1, 4)), latent, coords[:2])
    with pytest.raises(ValueError, match="k must"):
        place(np.zeros((1, 4)), latent, coords, k=0)


# ---- real UMAP ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_umap_on_a_tiny_input(stub, ds):
    pytest.importorskip("umap")
    a = build_map(stub, ds.interactions, max_users=60, max_items=40, n_neighbors=8, n_epochs=30, seed=1)
    b = build_map(stub, ds.interactions, max_users=60, max_items=40, n_neighbors=8, n_epochs=30, seed=1)
    assert a.stored_coords.shape == (100, 2) and np.isfinite(a.stored_coords).all()
    np.testing.assert_array_equal(a.stored_coords, b.stored_coords)  # seeded UMAP is deterministic
    assert a.stored_coords.std(axis=0).min() > 0  # a layout, not a collapsed point
    np.testing.assert_array_equal(a.place(a.item_latent), a.item_coords)


# ---- which space is mapped (issue 14) ------------------------------------------------------------
class FlowStub(LinearStub):
    """z = f(x W) with a randomly initialised Glow f: like the flow families, scores come from x W."""

    family = "flow-stub"

    def fitted(self, n_items: int) -> FlowStub:
        from types import SimpleNamespace

        import torch

        from recsys.models.flow_layers import Glow

        super().fitted(n_items)
        torch.manual_seed(0)
        self.module_ = SimpleNamespace(flow=Glow(self.dim, 2, 8, seed=0).eval())
        return self

    def _encode(self, x):
        import torch

        with torch.no_grad():
            return self.module_.flow(torch.from_numpy(np.asarray(x @ self.w_, dtype=np.float32)))[0].numpy()


def test_a_flow_models_map_is_of_its_pre_flow_codes_and_places_z_through_the_flow(ds):
    from recsys.projection import map_space, to_map_space

    model = FlowStub().fitted(ds.n_items)
    assert map_space(model) == "pre-flow"
    z = item_points(model, ds.n_items)
    m = _map(model, ds, max_users=40, extra_points=z[:3])
    assert m.space == "pre-flow" and m.describe()["space"] == "pre-flow"
    # the stored points are the codes the scores come from (x W), not z
    np.testing.assert_allclose(m.item_latent, model.w_[m.item_index], atol=1e-4)
    np.testing.assert_allclose(to_map_space(model, z[:5], "pre-flow"), model.w_[:5], atol=1e-4)
    # an item's z goes back through the flow and lands on the item itself; so do the extra points
    np.testing.assert_allclose(m.place_latent(model, z[m.item_index[:4]]), m.item_coords[:4], atol=1e-4)
    np.testing.assert_allclose(m.extra_coords, m.item_coords[:3], atol=1e-4)
    assert _map(model, ds, max_users=40, space="latent").space == "latent"
    back = LatentMap.from_arrays(m.to_arrays())
    assert back.space == "pre-flow"
    older = {k: v for k, v in m.to_arrays().items() if k != PREFIX + "space"}  # maps stored before the field
    assert LatentMap.from_arrays(older).space == "latent"


def test_direction_maps_normalise_and_the_others_keep_z(stub, ds):
    from recsys.projection import map_space, to_map_space

    assert map_space(stub) == "latent"
    z = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(to_map_space(stub, z, "direction"), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_array_equal(to_map_space(stub, z, "latent"), z)
    with pytest.raises(ValueError, match="space must be one of"):
        to_map_space(stub, z, "sideways")
    with pytest.raises(ValueError, match="needs a flow model"):
        to_map_space(stub, z, "pre-flow")
    with pytest.raises(ValueError, match="space must be one of"):
        _map(stub, ds, space="pre-flow")


# ---- map quality ----------------------------------------------------------------------------------
def test_neighbour_tag_agreement_on_a_constructed_map():
    from recsys.projection import neighbour_tag_agreement

    # two tight clusters far apart, one tag each: every neighbour shares the tag
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(10, 0.1, (20, 2))])
    tags = np.array(["jazz"] * 20 + ["rock"] * 20)
    np.testing.assert_allclose(neighbour_tag_agreement(xy, tags, k=10), 1.0)
    # points on a line, tags alternating: the 2 nearest of an inner point are the other tag
    line = np.column_stack([np.arange(6.0), np.zeros(6)])
    alt = np.array(["a", "b"] * 3)
    got = neighbour_tag_agreement(line, alt, k=2)
    # ends: neighbours at distance 1 (other tag) and 2 (same tag) -> 0.5; inner points -> 0
    np.testing.assert_allclose(got, [0.5, 0, 0, 0, 0, 0.5])
    with pytest.raises(ValueError, match="k must be"):
        neighbour_tag_agreement(line, alt, k=6)
    with pytest.raises(ValueError, match="labels"):
        neighbour_tag_agreement(line, alt[:3], k=2)


def test_a_persons_path_on_a_direction_map_sits_where_its_top_items_are(stub, ds):
    """place_path: on a direction map, the mean position of the top_k mapped items by decode(z), picks
    left out; on the other maps, place_latent."""
    from recsys.projection import PATH_TOP_K

    latent = _map(stub, ds, max_users=40)
    z = item_points(stub, ds.n_items)[:5] + 0.1
    np.testing.assert_array_equal(latent.place_path(stub, z), latent.place_latent(stub, z))

    from dataclasses import replace

    m = replace(latent, space="direction")  # what place_path reads: the items' map positions and the model
    scores = stub.decode(z)
    row = {int(i): r for r, i in enumerate(m.item_index)}
    for k in (1, 3, PATH_TOP_K):
        want = np.array([m.item_coords[[row[i] for i in np.argsort(-s) if i in row][:k]].mean(axis=0) for s in scores])
        np.testing.assert_allclose(m.place_path(stub, z, top_k=k), want, atol=1e-5)
    # the picks are not where the point is placed: the best item left out, the next ones used
    best = int(np.argmax(scores[0]))
    rest = [i for i in np.argsort(-scores[0]) if i in row and i != best][:3]
    np.testing.assert_allclose(
        m.place_path(stub, z[:1], exclude=np.array([best]), top_k=3)[0], m.item_coords[[row[i] for i in rest]].mean(0)
    )
    # a tuned path moving toward an item's code ends among that item's neighbours on the list
    target = int(m.item_index[7])
    path = z[0][None, :] + np.linspace(0, 50, 6)[:, None] * stub.w_[target][None, :]
    placed = m.place_path(stub, path, top_k=1)
    np.testing.assert_allclose(placed[-1], m.item_coords[7], atol=1e-6)
