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
import scipy.sparse as sp

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


# ---------------------------------------------------------------------------------------------
# catalogue-scale generator (100k-400k songs, up to millions of listeners): streaming, sparse
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleConfig:
    """Parameters of :func:`generate_synthetic_at_scale` (the default data keeps :class:`SyntheticConfig`).

    ``n_artists=None`` gives one artist per 20 songs. Users are generated ``chunk_users`` at a
    time straight into CSR pieces, so memory grows with the interactions (about 16 bytes each plus
    the id arrays), never with users x songs.
    """

    n_items: int = 100_000
    n_users: int = 200_000
    n_tags: int = 32
    n_artists: int | None = None
    mean_history: float = 40.0
    min_history: int = 8
    max_history: int = 2000
    popularity_exponent: float = 0.9
    p_secondary_tag: float = 0.3
    favourite_tag_counts: tuple[float, float, float] = (0.4, 0.4, 0.2)
    p_in_taste: float = 0.85
    p_same_artist: float = 0.35
    start_time: int = 1_600_000_000
    chunk_users: int = 50_000
    seed: int = 0


def _scale_names(rng: np.random.Generator, n: int, kind: str) -> list[str]:
    """``n`` distinct artist names or song titles from the word lists, vectorised (numbers break ties)."""
    adj, noun, first, last, words = (np.asarray(w) for w in (_ADJ, _NOUN, _FIRST, _LAST, _TITLE_WORDS))

    def pick(a: np.ndarray) -> np.ndarray:
        return a[rng.integers(0, len(a), n)]

    style = rng.integers(0, 4, n)
    if kind == "artist":
        forms = (
            np.char.add(np.char.add("The ", pick(adj)), np.char.add(" ", pick(noun))),
            np.char.add(np.char.add(pick(first), " "), pick(last)),
            np.char.add(np.char.add(pick(noun), " "), pick(noun)),
            np.char.add(np.char.add(pick(first), " & the "), pick(noun)),
        )
    else:
        forms = (
            np.char.add(np.char.add(pick(adj), " "), pick(words)),
            np.char.add(np.char.add(pick(words), " of the "), pick(noun)),
            np.char.add(np.char.add(pick(noun), " "), pick(words)),
            np.char.add(np.char.add(pick(words), " in the "), pick(words)),
        )
    names = np.choose(style, [f.astype(object) for f in forms]).astype(str)
    if kind != "artist":
        return names.tolist()
    out, seen = [], {}
    for name in names.tolist():  # artists must be distinct: "Neon Tide", "Neon Tide 2", ...
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name} {k + 1}")
    return out


def generate_synthetic_at_scale(config: ScaleConfig | None = None, *, name: str | None = None, **overrides) -> Dataset:
    """A music catalogue of the size of real services, generated in bounded memory.

    The same planted structure as :func:`generate_synthetic` (genre tags, power-law popularity,
    listeners with 1-3 favourite genres, same-artist runs, increasing timestamps, geometric play
    counts, age group and region per listener), drawn vectorised per chunk of ``chunk_users``
    listeners: a listen is from a favourite genre with probability ``p_in_taste`` (song by
    popularity within the genre) or from the whole catalogue, and with ``p_same_artist`` it is
    replaced by a song of the previous draw's artist; repeats within a listener are dropped, so
    histories are slightly shorter than their drawn length. Each chunk becomes a CSR piece
    (sorted columns, timestamps aligned), and the pieces are stacked: never a dense users x songs
    array. 100k songs x 200k listeners (~7.5M listens) take about a minute and ~1 GB.

    This is not the demo's data (``generate_synthetic`` keeps its exact output); use it for
    scale benchmarks. ``name`` defaults to ``synthetic-<songs>x<listeners>`` (e.g.
    ``synthetic-100kx200k``).
    """
    cfg = config or ScaleConfig()
    if overrides:
        cfg = ScaleConfig(**{**asdict(cfg), **overrides})
    if not 2 <= cfg.n_tags <= len(GENRES):
        raise ValueError(f"n_tags must be in [2, {len(GENRES)}], got {cfg.n_tags}")
    n_items, n_users, n_tags = int(cfg.n_items), int(cfg.n_users), int(cfg.n_tags)
    n_artists = int(cfg.n_artists) if cfg.n_artists is not None else max(n_tags, n_items // 20)
    if not n_tags <= n_artists <= n_items or n_users < 1:
        raise ValueError(f"need n_tags <= n_artists <= n_items and n_users >= 1, got {n_tags}, {n_artists}, {n_items}")
    rng = np.random.default_rng([int(cfg.seed), 16])
    tags = list(GENRES[:n_tags])

    primary = np.concatenate([np.arange(n_tags), rng.integers(0, n_tags, n_artists - n_tags)])
    rng.shuffle(primary)
    secondary = np.where(
        rng.random(n_artists) < cfg.p_secondary_tag, (primary + rng.integers(1, n_tags, n_artists)) % n_tags, -1
    )
    weight = rng.pareto(1.5, n_artists) + 1.0
    song_artist = np.concatenate(
        [np.arange(n_artists), rng.choice(n_artists, n_items - n_artists, p=weight / weight.sum())]
    )
    rng.shuffle(song_artist)
    popularity = 1.0 / np.arange(1, n_items + 1) ** cfg.popularity_exponent
    rng.shuffle(popularity)
    popularity /= popularity.sum()

    # genre -> songs, as one array with per-genre cdfs offset by the genre index: one searchsorted
    song_primary, song_secondary = primary[song_artist], secondary[song_artist]
    pair_song = np.concatenate([np.arange(n_items), np.flatnonzero(song_secondary >= 0)])
    pair_tag = np.concatenate([song_primary, song_secondary[song_secondary >= 0]])
    order = np.lexsort((pair_song, pair_tag))
    tag_song, tag_of = pair_song[order], pair_tag[order]
    w = popularity[tag_song]
    tag_total = np.bincount(tag_of, weights=w, minlength=n_tags)
    within = np.cumsum(w) - np.concatenate([[0.0], np.cumsum(tag_total)[:-1]])[tag_of]
    tag_cdf = tag_of + within / tag_total[tag_of]
    global_cdf = np.cumsum(popularity)
    artist_order = np.argsort(song_artist, kind="stable")
    artist_start = np.concatenate([[0], np.cumsum(np.bincount(song_artist, minlength=n_artists))])

    titles = _scale_names(rng, n_items, "title")
    artist_names = _scale_names(rng, n_artists, "artist")
    width = len(str(n_items - 1))
    items = pd.DataFrame(
        {
            "item_id": [f"s{i:0{width}d}" for i in range(n_items)],
            "title": titles,
            "artist": [artist_names[a] for a in song_artist],
            "tags": [
                (tags[p],) if s < 0 else (tags[p], tags[s])
                for p, s in zip(song_primary.tolist(), song_secondary.tolist())
            ],
        }
    )
    age_pref = rng.dirichlet(np.ones(len(AGE_GROUPS)) * 0.7, n_tags)
    region_pref = rng.dirichlet(np.ones(len(REGIONS)) * 0.7, n_tags)
    p_fav = np.asarray(cfg.favourite_tag_counts) / sum(cfg.favourite_tag_counts)

    indptr = [np.zeros(1, np.int64)]
    pieces_idx, pieces_data, pieces_ts = [], [], []
    ages, regions, favourites = [], [], []
    for lo in range(0, n_users, int(cfg.chunk_users)):
        c = min(int(cfg.chunk_users), n_users - lo)
        n_fav = rng.choice(3, c, p=p_fav) + 1
        fav = np.argsort(rng.random((c, n_tags)), axis=1)[:, :3]
        mix = rng.gamma(2.0, size=(c, 3)) * (np.arange(3)[None, :] < n_fav[:, None])
        mix_cdf = np.cumsum(mix / mix.sum(1, keepdims=True), axis=1)
        ages.append(np.asarray(AGE_GROUPS)[_choose_rows(rng, age_pref[fav[:, 0]])])
        regions.append(np.asarray(REGIONS)[_choose_rows(rng, region_pref[fav[:, 0]])])
        favourites.extend("|".join(tags[t] for t in f[:k]) for f, k in zip(fav.tolist(), n_fav.tolist()))
        lengths = rng.lognormal(np.log(cfg.mean_history) - 0.32, 0.8, c).astype(np.int64)
        lengths = np.clip(lengths, cfg.min_history, min(cfg.max_history, n_items // 4))
        owner = np.repeat(np.arange(c), lengths)
        m = len(owner)
        slot = np.minimum((rng.random(m)[:, None] > mix_cdf[owner]).sum(1), 2)
        genre = fav[owner, slot]
        song = np.minimum(np.searchsorted(tag_cdf, genre + rng.random(m)), len(tag_song) - 1)
        song = tag_song[song]
        anywhere = rng.random(m) >= cfg.p_in_taste
        song[anywhere] = np.minimum(np.searchsorted(global_cdf, rng.random(anywhere.sum())), n_items - 1)
        first_of_user = np.concatenate([[True], owner[1:] != owner[:-1]])
        same = (rng.random(m) < cfg.p_same_artist) & ~first_of_user
        prev_artist = song_artist[np.roll(song, 1)[same]]
        pick = artist_start[prev_artist] + (rng.random(same.sum()) * np.diff(artist_start)[prev_artist]).astype(
            np.int64
        )
        song[same] = artist_order[pick]
        # drop repeats within a listener (the first listen stays), then time and count the rest
        key = owner * n_items + song
        _, first = np.unique(key, return_index=True)
        keep = np.sort(first)
        owner, song = owner[keep], song[keep]
        gaps = rng.exponential(3600 * 6, len(keep)).astype(np.int64) + 60
        start = cfg.start_time + rng.integers(0, 200 * 86400, c)
        run = np.cumsum(gaps)
        counts = np.bincount(owner, minlength=c)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        before = np.concatenate([[0], run])[offsets]
        stamps = start[owner] + run - before[owner]
        plays = rng.geometric(0.3, len(keep)).astype(np.float32)
        order = np.lexsort((song, owner))
        pieces_idx.append(song[order].astype(np.int32))
        pieces_data.append(plays[order])
        pieces_ts.append(stamps[order])
        indptr.append(indptr[-1][-1] + np.cumsum(counts))
    x = sp.csr_matrix(
        (np.concatenate(pieces_data), np.concatenate(pieces_idx), np.concatenate(indptr)),
        shape=(n_users, n_items),
    )
    del pieces_idx, pieces_data
    uw = len(str(n_users - 1))
    features = pd.DataFrame(
        {"age_group": np.concatenate(ages), "region": np.concatenate(regions), "favourite_tags": favourites}
    )
    return Dataset(
        name=name or f"synthetic-{_short(n_items)}x{_short(n_users)}",
        interactions=x,
        items=items,
        user_ids=np.asarray([f"listener{u:0{uw}d}" for u in range(n_users)]),
        timestamps=np.concatenate(pieces_ts),
        user_features=features,
        item_noun="song",
        description=f"synthetic music catalogue at scale {asdict(cfg)}",
    )


def _choose_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of the probability matrix ``p`` (inverse cdf)."""
    return np.minimum((rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(1), p.shape[1] - 1)


def _short(n: int) -> str:
    """100000 -> "100k", 1000000 -> "1m", 2500 -> "2500"."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)
