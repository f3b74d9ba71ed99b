"""Steering: standard, postfiltered, tuned and tune+post recommendations, set by one dial.

One module per job:

* :mod:`.tags` - tag spelling, per-user tag counts/shares, the curated vocabulary;
* :mod:`.centroids` - tag centroids in a latent space;
* :mod:`.postfilter` - the tilt ``p_i (1 + beta)^alpha`` in log space, and its exact strength for a share;
* :mod:`.tune` - moving the latent point toward tag centroids, and the first strength along it for a share;
* :mod:`.calibration` - the dial: a target tag share -> each mode's strength, batched over people;
* :mod:`.steerer` - :class:`Steerer`, the one call a page makes (and the batched ``steer`` the evaluations use);
* :mod:`.evaluation` - alpha sweeps (seed 000's "predict") and the trade-off figure;
* :mod:`.protocols` - matched-share evaluations: held-out tags, incomplete tags, tags-only cold start;
  tune+post's step rule chosen on validation users.

``import recsys.steering`` loads neither torch nor Streamlit.
"""

from ..data.dataset import tag_matrix as item_tag_matrix
from .calibration import DEFAULT_LATENT_STEP, LATENT_STEP_GRID, LATENT_STEP_RANGE, StepRule
from .centroids import CENTROID_RULES, TagCentroids, compute_tag_centroids
from .postfilter import log_tag_boost, solve_postfilter, target_count, to_log_probabilities, to_probabilities
from .steerer import (
    ALPHA_RANGE,
    BETA_RANGE,
    LATENT_MODES,
    MODE_LABELS,
    MODES,
    SHARE_RANGE,
    ModeList,
    Ranked,
    Steerer,
    SteeringResult,
)
from .tags import (
    DEFAULT_MAX_TAGS,
    DEFAULT_MIN_ITEMS,
    DEFAULT_MIN_USERS,
    SteeringError,
    curate_vocabulary,
    dominant_tags,
    normalise_tag,
    normalised_item_tags,
    tag_counts,
    tag_shares,
)
from .tune import TUNE_ALPHA_MAX

__all__ = [
    "ALPHA_RANGE",
    "BETA_RANGE",
    "CENTROID_RULES",
    "DEFAULT_LATENT_STEP",
    "DEFAULT_MAX_TAGS",
    "DEFAULT_MIN_ITEMS",
    "DEFAULT_MIN_USERS",
    "LATENT_MODES",
    "LATENT_STEP_GRID",
    "LATENT_STEP_RANGE",
    "MODES",
    "MODE_LABELS",
    "SHARE_RANGE",
    "TUNE_ALPHA_MAX",
    "ModeList",
    "Ranked",
    "Steerer",
    "SteeringError",
    "SteeringResult",
    "StepRule",
    "TagCentroids",
    "compute_tag_centroids",
    "curate_vocabulary",
    "dominant_tags",
    "item_tag_matrix",
    "log_tag_boost",
    "normalise_tag",
    "normalised_item_tags",
    "solve_postfilter",
    "tag_counts",
    "tag_shares",
    "target_count",
    "to_log_probabilities",
    "to_probabilities",
]
