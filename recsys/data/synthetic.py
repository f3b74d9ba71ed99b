"""The embedded default data: a deterministic synthetic music catalogue.

Generated from a seed in a couple of seconds, no download. Its structure is planted so tests mean
something:

* **Genres.** ``n_tags`` genre tags (real genre words). Every artist has one primary genre and, with
  probability ``p_secondary_tag``, a second one; a song carries its artist's genres.
* **Popularity.** Song popularity follows a power law (Zipf exponent ``popularity_exponent``), so a
  few songs are everywhere and most are rare.
* **Listeners.** Each user has 1-3 favourite genres (probabilities ``favourite_tag_counts``) with
  Dirichlet mixture weights. A listen comes from a favourite genre with probability ``p_in_taste``
  (song drawn by popularity within the genre), otherwise from the global popularity distribution.
  So users of tag t listen mostly to songs of tag t: tuning toward t must raise t's share.
* **Sessions.** With probability ``p_same_artist`` the next listen is another song by the previous
  song's artist: a sequential signal that next-item models can find.
* **Timestamps** increase along each user's history; **play counts** are geometric.
* **Profiles.** ``age_group`` and ``region`` per user, correlated with the favourite genres, for
  profile cold start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .dataset import Dataset, build_dataset

GENRES = (
    "rock", "pop", "jazz", "blues", "metal", "hip hop", "electronic", "folk", "country", "classical",
    "reggae", "punk", "soul", "funk", "indie", "ambient", "techno", "house", "r&b", "latin",
    "disco", "grunge", "ska", "gospel", "trance", "bossa nova", "synthpop", "drum and bass",
    "shoegaze", "k-pop", "afrobeat", "emo",
)  # fmt: skip

_ADJ = (
    "Velvet", "Electric", "Silent", "Golden", "Broken", "Midnight", "Neon", "Crimson", "Hollow",
    "Wild", "Lonely", "Burning", "Frozen", "Paper", "Silver", "Northern", "Restless", "Gentle",
    "Savage", "Lucky", "Distant", "Bitter", "Sweet", "Cosmic", "Rusty", "Blue", "Amber", "Static",
    "Faded", "Shining",
)  # fmt: skip
_NOUN = (
    "Echo", "River", "Engine", "Garden", "Mirror", "Harbor", "Signal", "Lantern", "Comet", "Ghost",
    "Wolf", "Canyon", "Satellite", "Orchard", "Voltage", "Parade", "Tide", "Machine", "Feather",
    "Horizon", "Avenue", "Tiger", "Circus", "Thunder", "Rose", "Window", "Desert", "Saint", "Flame",
    "Shadow",
)  # fmt: skip
_FIRST = (
    "Mara", "Jonas", "Ines", "Theo", "Lena", "Oscar", "Nadia", "Felix", "Rosa", "Malik", "Ada",
    "Hugo", "Zoe", "Emil", "Yara", "Leon", "Iris", "Otis", "Nina", "Ravi", "Clara", "Bruno",
    "Aiko", "Milo",
)  # fmt: skip
_LAST = (
    "Varga", "Holm", "Okafor", "Reyes", "Lindqvist", "Moreau", "Tanaka", "Novak", "Bianchi",
    "Castillo", "Brandt", "Kowalski", "Adeyemi", "Sato", "Fontaine", "Marsh", "Quinn", "Dubois",
    "Larsen", "Mendes",
)  # fmt: skip
_TITLE_WORDS = (
    "Love", "Night", "Fire", "Rain", "Heart", "Road", "Dream", "Light", "Home", "Summer", "Storm",
    "Sky", "Ocean", "Dance", "Stars", "Morning", "City", "Wings", "Gold", "Time", "Moon", "Shore",
    "Smoke", "Glass",
)  # fmt: skip
AGE_GROUPS = ("under 18", "18-24", "25-34", "35-49", "50+")
REGIONS = ("Europe", "Americas", "Asia", "Africa & Oceania")


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic catalogue (defaults: the app's demo data)."""

    n_tags: int = 24
    n_artists: int = 600
    n_items: int = 5000
    n_users: int = 3000
    mean_history: float = 40.0
    min_history: int = 8
    popularity_exponent: float = 0.9
    p_secondary_tag: float = 0.3
    favourite_tag_counts: tuple[float, float, float] = (0.4, 0.4, 0.2)
    p_in_taste: float = 0.85
    p_same_artist: float = 0.35
    start_time: int = 1_600_000_000
    seed: int = 0


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("f"):
        return noun[:-1] + "ves"
    return noun + "s"


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    names: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        style = rng.integers(4)
        if style == 0:
            name = f"The {rng.choice(_ADJ)} {_plural(str(rng.choice(_NOUN)))}"
        elif style == 1:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        elif style == 2:
            name = f"{rng.choice(_NOUN)} {rng.choice(_NOUN)}"
        else:
            name = f"{rng.choice(_FIRST)} & the {_plural(str(rng.choice(_NOUN)))}"
        if name in names:
            name = f"{name} {len(out)}" if rng.random() < 0.05 else name
            if name in names:
                continue
        names.add(name)
        out.append(name)
    return out


def _song_title(rng: np.random.Generator) -> str:
    style = rng.integers(5)
    if style == 0:
        return f"{rng.choice(_ADJ)} {rng.choice(_TITLE_WORDS)}"
    if style == 1:
        return f"{rng.choice(_TITLE_WORDS)} of the {rng.choice(_NOUN)}"
    if style == 2:
        return f"{rng.choice(_NOUN)} {rng.choice(_TITLE_WORDS)}"
    if style == 3:
        return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    return f"{rng.choice(_TITLE_WORDS)} in the {rng.choice(_TITLE_WORDS)}"


def generate_synthetic(config: SyntheticConfig | None = None, **overrides) -> Dataset:
    """Generate the synthetic music catalogue (deterministic for a given config).

    Parameters
    ----------
    config : SyntheticConfig, optional
        Parameters; keyword ``overrides`` replace single fields (``generate_synthetic(n_users=300)``).

    Returns
    -------
    Dataset
        ``name="synthetic"``, songs as items, play counts as weights, timestamps and user profiles.
        ``description`` records the parameters.
    """
    cfg = config or SyntheticConfig()
    if overrides:
        cfg = SyntheticConfig(**{**asdict(cfg), **overrides})
    if not 2 <= cfg.n_tags <= len(GENRES):
        raise ValueError(f"n_tags must be in [2, {len(GENRES)}], got {cfg.n_tags}")
    if cfg.n_artists < cfg.n_tags or cfg.n_items < cfg.n_artists:
        raise ValueError("need n_tags <= n_artists <= n_items")
    rng = np.random.default_rng(cfg.seed)
    tags = list(GENRES[: cfg.n_tags])
    n_tags = cfg.n_tags

    # artists: a primary genre each (every genre gets some), maybe a secondary one
    primary = np.concatenate([np.arange(n_tags), rng.integers(0, n_tags, cfg.n_artists - n_tags)])
    rng.shuffle(primary)
    secondary = np.where(
        rng.random(cfg.n_artists) < cfg.p_secondary_tag,
        (primary + rng.integers(1, n_tags, cfg.n_artists)) % n_tags,
        -1,
    )
    artist_names = _artist_names(rng, cfg.n_artists)

    # songs: each artist at least one, the rest spread with a skew (some prolific artists)
    artist_weight = rng.pareto(1.5, cfg.n_artists) + 1.0
    song_artist = np.concatenate(
        [
            np.arange(cfg.n_artists),
            rng.choice(
                cfg.n_artists,
                cfg.n_items - cfg.n_artists,
                p=artist_weight / artist_weight.sum(),
            ),
        ]
    )
    rng.shuffle(song_artist)
    song_tags_idx = [(primary[a],) if secondary[a] < 0 else (primary[a], secondary[a]) for a in song_artist]
    popularity = 1.0 / np.arange(1, cfg.n_items + 1) ** cfg.popularity_exponent
    rng.shuffle(popularity)
    popularity /= popularity.sum()

    titles = [_song_title(rng) for _ in range(cfg.n_items)]
    items = pd.DataFrame(
        {
            "item_id": [f"s{i:05d}" for i in range(cfg.n_items)],
            "title": titles,
            "artist": [artist_names[a] for a in song_artist],
            "tags": [tuple(tags[t] for t in ts) for ts in song_tags_idx],
        }
    )

    # per-genre song lists with popularity-proportional sampling weights
    tag_songs: list[np.ndarray] = [[] for _ in range(n_tags)]
    for i, ts in enumerate(song_tags_idx):
        for t in ts:
            tag_songs[t].append(i)
    tag_songs = [np.asarray(s) for s in tag_songs]
    tag_cdf = [np.cumsum(popularity[s]) / popularity[s].sum() for s in tag_songs]
    global_cdf = np.cumsum(popularity)
    artist_songs: list[list[int]] = [[] for _ in range(cfg.n_artists)]
    for i, a in enumerate(song_artist):
        artist_songs[a].append(i)

    # users
    n_fav = (
        rng.choice(
            3,
            cfg.n_users,
            p=np.asarray(cfg.favourite_tag_counts) / sum(cfg.favourite_tag_counts),
        )
        + 1
    )
    lengths = np.maximum(
        cfg.min_history,
        rng.lognormal(np.log(cfg.mean_history) - 0.32, 0.8, cfg.n_users).astype(int),
    )
    lengths = np.minimum(lengths, cfg.n_items // 4)
    age_pref = rng.dirichlet(np.ones(len(AGE_GROUPS)) * 0.7, n_tags)
    region_pref = rng.dirichlet(np.ones(len(REGIONS)) * 0.7, n_tags)

    u_rows, i_cols, stamps, plays = [], [], [], []
    ages, regions, favourites = [], [], []
    for u in range(cfg.n_users):
        fav = rng.choice(n_tags, n_fav[u], replace=False)
        mix = rng.dirichlet(np.full(len(fav), 2.0))
        favourites.append("|".join(tags[t] for t in fav))
        ages.append(AGE_GROUPS[rng.choice(len(AGE_GROUPS), p=age_pref[fav[0]])])
        regions.append(REGIONS[rng.choice(len(REGIONS), p=region_pref[fav[0]])])
        n = lengths[u]
        seen: set[int] = set()
        history: list[int] = []
        draws = rng.random((n * 4, 4))
        k = 0
        while len(history) < n and k < len(draws):
            r = draws[k]
            k += 1
            song = -1
            if history and r[0] < cfg.p_same_artist:
                pool = [s for s in artist_songs[song_artist[history[-1]]] if s not in seen]
                if pool:
                    song = pool[int(r[1] * len(pool))]
            if song < 0:
                if r[2] < cfg.p_in_taste:
                    t = fav[np.searchsorted(np.cumsum(mix), r[3] * mix.sum())] if len(fav) > 1 else fav[0]
                    t = int(t)
                    song = int(
                        tag_songs[t][
                            min(
                                np.searchsorted(tag_cdf[t], rng.random()),
                                len(tag_songs[t]) - 1,
                            )
                        ]
                    )
                else:
                    song = int(min(np.searchsorted(global_cdf, rng.random()), cfg.n_items - 1))
            if song in seen:
                continue
            seen.add(song)
            history.append(song)
        start = cfg.start_time + int(rng.integers(0, 200 * 86400))
        gaps = rng.exponential(3600 * 6, len(history)).astype(np.int64) + 60
        u_rows.extend([u] * len(history))
        i_cols.extend(history)
        stamps.append(start + np.cumsum(gaps))
        plays.append(rng.geometric(0.3, len(history)))

    user_ids = np.asarray([f"listener{u:04d}" for u in range(cfg.n_users)])
    features = pd.DataFrame({"age_group": ages, "region": regions, "favourite_tags": favourites})
    return build_dataset(
        "synthetic",
        user_ids[np.asarray(u_rows)],
        items["item_id"].to_numpy()[np.asarray(i_cols)],
        np.concatenate(plays).astype(np.float32),
        items,
        timestamps=np.concatenate(stamps),
        user_features=features,  # user ids are zero-padded, so sorted order == generation order
        item_noun="song",
        description=f"synthetic music catalogue {asdict(cfg)}",
    )
