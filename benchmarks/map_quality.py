"""How well each latent model's stored map keeps songs of one tag together (issue 14's map quality figure).

    python benchmarks/map_quality.py --registry DIR [--before DIR] [--k 10]

For every latent model with a stored map in ``--registry``: for each song on the map, the share of
its ``k`` nearest songs that share its first tag (the map's colour: its first steerable tag),
averaged over songs (:func:`recsys.projection.neighbour_tag_agreement`), computed

* on the **2-D map** (the stored UMAP layout),
* in the **mapped space** the layout was fitted on (``LatentMap.space``: the latent space ``z``, a
  flow model's pre-flow codes ``f^-1(z)``, or the DLAE's directions ``z / ||z||``),
* in the **latent space** ``z`` itself (the space steering moves in: one-item encodings),
* on a **random layout** (uniform points in a square, seeded; what the share is with no structure:
  about the sum of squared tag shares),

and ``--before DIR``'s stored 2-D map of the same model (a registry built by an earlier version,
e.g. the demo's ``models_store/`` before maps of flow models moved to their pre-flow codes). The
ratio columns divide by the random layout's figure of the same run. Writes
``benchmarks/results/map_quality.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys.benchmarking import write_result  # noqa: E402
from recsys.map_view import item_colour_tags  # noqa: E402
from recsys.models.base import LatentRecommender  # noqa: E402
from recsys.projection import LatentMap, item_points, neighbour_tag_agreement  # noqa: E402
from recsys.registry import Registry  # noqa: E402
from recsys.steering import Steerer  # noqa: E402
from recsys.steering.evaluation import sweep_table  # noqa: E402
from recsys.threads import training_torch_threads  # noqa: E402


def latent_models(registry: Registry) -> list[str]:
    """Ids of the registry's models that have a stored map."""
    return [m for m in registry.ids() if "map" in (registry.read_manifest(m).get("info") or {})]


def model_quality(registry: Registry, model_id: str, *, k: int = 10, seed: int = 0) -> dict:
    """The row of one model: agreement on the map, in the mapped space, in z, on a random layout."""
    loaded = registry.load(model_id)
    if not isinstance(loaded.model, LatentRecommender) or not LatentMap.has_map(loaded.extras):
        raise ValueError(f"{model_id} is not a latent model with a stored map")
    steerer = Steerer.from_loaded(loaded)
    m = LatentMap.from_arrays(loaded.extras)
    tags = np.asarray(item_colour_tags(steerer, m.item_index))
    z = item_points(loaded.model, items=m.item_index)
    rng = np.random.default_rng(seed)
    random_xy = rng.random((len(tags), 2))
    return {
        "model": model_id,
        "mapped space": m.space,
        "songs": len(tags),
        "tags": len(set(tags.tolist())),
        "2-D map": float(neighbour_tag_agreement(m.item_coords, tags, k).mean()),
        "mapped space (d-dim)": float(neighbour_tag_agreement(m.item_latent, tags, k).mean()),
        "latent z (d-dim)": float(neighbour_tag_agreement(z, tags, k).mean()),
        "random layout": float(neighbour_tag_agreement(random_xy, tags, k).mean()),
    }


def before_map(registry: Registry, model_id: str, *, k: int = 10) -> float | None:
    """Agreement on the 2-D map that ``registry`` (an earlier build) stores for ``model_id``."""
    if model_id not in registry.ids():
        return None
    loaded = registry.load(model_id)
    if not LatentMap.has_map(loaded.extras):
        return None
    m = LatentMap.from_arrays(loaded.extras)
    tags = np.asarray(item_colour_tags(Steerer.from_loaded(loaded), m.item_index))
    return float(neighbour_tag_agreement(m.item_coords, tags, k).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registry", default=str(ROOT / "models_store"), help="registry whose maps are measured")
    p.add_argument("--before", default=None, help="an earlier build of the same models: its stored maps as a column")
    p.add_argument("--k", type=int, default=10, help="neighbours per song (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random layout")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "map_quality.md"))
    args = p.parse_args()
    registry = Registry(args.registry)
    before = Registry(args.before) if args.before else None
    with training_torch_threads():  # one torch/BLAS thread on a shared 2-core machine (recsys/threads.py)
        rows = [_row(registry, before, model_id, args) for model_id in latent_models(registry)]
    write_result(
        args.out,
        title="Latent map quality: songs of one tag together on the map",
        table=sweep_table(pd.DataFrame(rows)),
        argv=["python", "benchmarks/map_quality.py", *sys.argv[1:]],
        notes=NOTES.format(k=args.k),
    )


NOTES = (
    "Share of each song's {k} nearest songs (Euclidean) that share its first tag, mean over the songs on the map "
    "(recsys.projection.neighbour_tag_agreement). 'mapped space' is what the 2-D layout was fitted on "
    "(recsys/projection.py: a flow model's pre-flow codes f^-1(z), the space its scores come from; the DLAE's "
    "directions z/||z||, since its ranking depends only on the direction; else the latent space z). 'latent z' is "
    "the space steering moves in. 'random layout': uniform random 2-D points, the share with no structure. "
    "'2-D map before': the map the --before registry stores (fitted on z for every model)."
)


def _row(registry: Registry, before: Registry | None, model_id: str, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    row = model_quality(registry, model_id, k=args.k, seed=args.seed)
    if before is not None:
        row["2-D map before"] = before_map(before, model_id, k=args.k)
    row["map / random"] = row["2-D map"] / row["random layout"]
    if before is not None and row["2-D map before"] is not None:
        row["before / random"] = row["2-D map before"] / row["random layout"]
    print(f"{model_id}: " + ", ".join(f"{c} {v:.3f}" for c, v in row.items() if isinstance(v, float)), flush=True)
    print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return row


if __name__ == "__main__":
    main()
