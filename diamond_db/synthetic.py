"""Synthetic, deterministic supplier inventory: the demo's feed, `diamond-db seed` and benchmarks.

`raw_payloads(rows, seed)` yields Nivoda-shaped JSON payloads whose attribute
mix follows a real supplier feed: round-heavy shapes, carats clustered just
above the "magic" weights (0.30, 0.50, 0.70, 1.00, 1.50, 2.00 ...), a bell
of colours around G-H and clarities around VS2-SI1, cut grades only where
labs give them, about a third lab-grown stones priced far below natural ones,
and mostly available stones. `diamond_from_payload` is the consolidator's
mapping of such a payload to a `DiamondInput`. The same (rows, seed) always
gives the same output; different seeds give different stones.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar
from uuid import UUID

from .records import Availability, DiamondInput, RawDiamondInput

if TYPE_CHECKING:
    from .operations import Operations

T = TypeVar("T")

# Fixed, so that a seed reproduces the same timestamps whenever it runs.
FEED_EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)

SHAPES: Final = {
    "ROUND": 0.46,
    "OVAL": 0.12,
    "CUSHION": 0.07,
    "EMERALD": 0.07,
    "PRINCESS": 0.06,
    "PEAR": 0.06,
    "RADIANT": 0.05,
    "MARQUISE": 0.03,
    "ASSCHER": 0.03,
    "HEART": 0.03,
    "BAGUETTE": 0.02,
}
# Fancy shapes trade below rounds of the same weight and grade.
SHAPE_PRICE: Final = {"ROUND": 1.0, "PRINCESS": 0.78, "CUSHION": 0.72, "OVAL": 0.8}
COLORS: Final = ("D", "E", "F", "G", "H", "I", "J", "K", "L", "M")
NATURAL_COLORS: Final = (0.07, 0.11, 0.15, 0.17, 0.16, 0.13, 0.09, 0.06, 0.03, 0.03)
LAB_COLORS: Final = (0.22, 0.25, 0.24, 0.15, 0.08, 0.04, 0.02, 0.0, 0.0, 0.0)
COLOR_PRICE: Final = (1.55, 1.35, 1.22, 1.0, 0.88, 0.76, 0.64, 0.53, 0.46, 0.41)
CLARITIES: Final = ("FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1", "I2", "I3")
NATURAL_CLARITIES: Final = (0.004, 0.03, 0.07, 0.1, 0.17, 0.2, 0.2, 0.14, 0.06, 0.015, 0.011)
LAB_CLARITIES: Final = (0.01, 0.05, 0.2, 0.25, 0.24, 0.17, 0.06, 0.02, 0.0, 0.0, 0.0)
CLARITY_PRICE: Final = (1.6, 1.45, 1.3, 1.2, 1.08, 1.0, 0.85, 0.72, 0.5, 0.35, 0.25)
GRADES: Final = ("EX", "VG", "GD", "F", "P")
GRADE_WEIGHTS: Final = (0.62, 0.26, 0.09, 0.02, 0.01)
CUT_PRICE: Final = {"EX": 1.06, "VG": 1.0, "GD": 0.9, "F": 0.8, "P": 0.7, None: 1.0}
FLUORESCENCES: Final = ("NON", "FNT", "MED", "STG", "VST")
NATURAL_FLUORESCENCES: Final = (0.6, 0.16, 0.12, 0.08, 0.04)
FLUORESCENCE_PRICE: Final = (1.0, 0.98, 0.93, 0.88, 0.85)
NATURAL_LABS: Final = {"GIA": 0.78, "IGI": 0.1, "HRD": 0.06, "AGS": 0.04, "NONE": 0.02}
LAB_LABS: Final = {"IGI": 0.74, "GCAL": 0.12, "GIA": 0.14}
MAGIC_WEIGHTS: Final = (0.3, 0.4, 0.5, 0.7, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0)
AVAILABILITIES: Final = {"AVAILABLE": 0.9, "ON_HOLD": 0.05, "SOLD": 0.03, "MEMO": 0.02}
RAW_AVAILABILITY: Final[dict[str, Availability]] = {
    "AVAILABLE": "available",
    "ON_HOLD": "on_hold",
    "SOLD": "sold",
    "MEMO": "unavailable",
}
SUPPLIERS: Final = tuple(
    (f"{city} {kind}", f"{city} {kind} Ltd.")
    for city in ("Antwerp", "Mumbai", "Surat", "Tel Aviv", "New York", "Hong Kong", "Dubai")
    for kind in ("Gems", "Diamonds", "Brilliants", "Stones")
)
LAB_GROWN_SHARE: Final = 0.35
FANCY_COLOR_SHARE: Final = 0.02
# The feed's fluorescence codes as the storefront names their intensity.
FLUORESCENCE_INTENSITIES: Final = {
    "NON": "None",
    "FNT": "Faint",
    "MED": "Medium",
    "STG": "Strong",
    "VST": "Very Strong",
}
# Where diamond_from_payload keeps the grading values in the JSON (the keys 0006 reads).
_MEASURED: Final = (
    "length",
    "width",
    "depth",
    "depthPercentage",
    "table",
    "crownAngle",
    "crownHeight",
    "pavAngle",
    "pavDepth",
)
_GRADED: Final = ("eyeClean", "brown", "green", "milky")
# Per shape, the usual (table %, depth %, length/width ratio) ranges.
SHAPE_PROPORTIONS: Final = {
    "ROUND": ((53.0, 60.0), (59.0, 63.0), (1.0, 1.02)),
    "OVAL": ((53.0, 63.0), (58.0, 66.0), (1.35, 1.5)),
    "CUSHION": ((58.0, 68.0), (61.0, 70.0), (1.0, 1.15)),
    "EMERALD": ((60.0, 70.0), (60.0, 70.0), (1.3, 1.5)),
    "PRINCESS": ((64.0, 75.0), (64.0, 76.0), (1.0, 1.05)),
    "PEAR": ((53.0, 63.0), (58.0, 66.0), (1.5, 1.7)),
    "RADIANT": ((61.0, 70.0), (61.0, 70.0), (1.0, 1.35)),
    "MARQUISE": ((53.0, 63.0), (58.0, 64.0), (1.9, 2.1)),
    "ASSCHER": ((60.0, 70.0), (60.0, 72.0), (1.0, 1.05)),
    "HEART": ((53.0, 63.0), (56.0, 66.0), (0.9, 1.1)),
    "BAGUETTE": ((65.0, 75.0), (60.0, 75.0), (2.0, 3.5)),
}
# The platform's default pricing (the rule sql/bootstrap.sql seeds), for rows priced without rules.
DEFAULT_MARKUP: Final = Decimal("1.15")
DEFAULT_RATING: Final = 5


class _Weighted:
    """A discrete distribution sampled with one random() and a bisect (rng.choices is slower)."""

    __slots__ = ("cumulative", "values")

    def __init__(self, values: Sequence[Any], weights: Sequence[float]) -> None:
        self.values = tuple(values)
        self.cumulative = tuple(itertools.accumulate(w / sum(weights) for w in weights))

    def __call__(self, rng: random.Random) -> Any:
        index = bisect.bisect(self.cumulative, rng.random())
        return self.values[min(index, len(self.values) - 1)]


_SHAPE = _Weighted(list(SHAPES), list(SHAPES.values()))
_NATURAL_COLOR = _Weighted(range(len(COLORS)), NATURAL_COLORS)
_LAB_COLOR = _Weighted(range(len(COLORS)), LAB_COLORS)
_NATURAL_CLARITY = _Weighted(range(len(CLARITIES)), NATURAL_CLARITIES)
_LAB_CLARITY = _Weighted(range(len(CLARITIES)), LAB_CLARITIES)
_GRADE = _Weighted(GRADES, GRADE_WEIGHTS)
_NATURAL_FLUORESCENCE = _Weighted(range(len(FLUORESCENCES)), NATURAL_FLUORESCENCES)
_NATURAL_LAB = _Weighted(list(NATURAL_LABS), list(NATURAL_LABS.values()))
_LAB_LAB = _Weighted(list(LAB_LABS), list(LAB_LABS.values()))
_AVAILABILITY = _Weighted(list(AVAILABILITIES), list(AVAILABILITIES.values()))
_GIRDLE = _Weighted(("THN-MED", "MED", "MED-STK", "STK", "THN", "STK-THK"), (4, 3, 3, 2, 1, 1))
_FANCY_KEYS = ("f_color", "f_intensity", "f_overtone")
_VIEWS = ("front", "side", "top", "hand")
_CULET = _Weighted(("NON", "VSM", "SML", "POINTED"), (0.85, 0.07, 0.04, 0.04))
# brown/green/milky: the spellings of "none" the feeds use (None: the field is absent).
_NO_TINT = _Weighted((None, "None", "NONE", "no", "N/A", ""), (0.4, 0.25, 0.15, 0.1, 0.05, 0.05))
_FANCY_COLOR = _Weighted(
    ("Yellow", "Pink", "Blue", "Green", "Brown", "Orange", "Purple", "Gray"),
    (0.55, 0.15, 0.08, 0.05, 0.1, 0.03, 0.02, 0.02),
)
_FANCY_INTENSITY = _Weighted(
    (
        "Faint",
        "Very Light",
        "Light",
        "Fancy Light",
        "Fancy",
        "Fancy Intense",
        "Fancy Vivid",
        "Fancy Deep",
        "Fancy Dark",
    ),
    (0.03, 0.05, 0.08, 0.14, 0.22, 0.25, 0.13, 0.06, 0.04),
)
_FANCY_OVERTONE = _Weighted(
    (None, "Greenish", "Brownish", "Orangy", "Pinkish", "Yellowish", "Purplish"),
    (0.7, 0.06, 0.08, 0.06, 0.04, 0.04, 0.02),
)
_SNAP = (0.0, 0.0, 0.01, 0.01, 0.02, 0.03, 0.05)


def _carats(rng: random.Random, lab_grown: bool) -> float:
    """Lognormal weights; many stones are cut to sit just above a magic weight."""
    median = 1.3 if lab_grown else 0.72
    carat = median * math.exp(rng.gauss(0.0, 0.55))
    if rng.random() < 0.45:
        below = bisect.bisect(MAGIC_WEIGHTS, carat)
        if below:
            carat = MAGIC_WEIGHTS[below - 1] + _SNAP[int(rng.random() * len(_SNAP))]
    return min(max(round(carat, 2), 0.18), 12.0)


def _price_cents(rng: random.Random, stone: dict[str, Any], ci: int, qi: int, fi: int) -> int:
    """Wholesale price: per-carat price rising with weight, times grade factors and noise."""
    carat: float = stone["carats"]
    if stone["labgrown"]:
        per_carat = 420.0 * carat**0.35 * (0.7 + 0.3 * COLOR_PRICE[ci]) * CLARITY_PRICE[qi] ** 0.4
    else:
        per_carat = (
            5500.0
            * carat**0.95
            * COLOR_PRICE[ci]
            * CLARITY_PRICE[qi]
            * FLUORESCENCE_PRICE[fi]
            * CUT_PRICE[stone["cut"]]
        )
    per_carat *= SHAPE_PRICE.get(stone["shape"], 0.7) * math.exp(rng.gauss(0.0, 0.12))
    return max(int(per_carat * carat + 0.5) * 100, 2500)


def _between(rng: random.Random, low: float, high: float, places: int = 1) -> float:
    return round(low + (high - low) * rng.random(), places)


def _measurements(rng: random.Random, shape: str, carat: float) -> dict[str, Any]:
    """Proportions in the shape's usual ranges, and millimetres consistent with the weight
    (a 1 ct round is ~6.5 mm across) and the shape's length/width ratio."""
    table_range, depth_range, ratio_range = SHAPE_PROPORTIONS[shape]
    ratio = _between(rng, *ratio_range, places=3)
    depth_pct = _between(rng, *depth_range)
    width = round(6.5 * carat ** (1 / 3) / math.sqrt(ratio), 2)
    measured: dict[str, Any] = {
        "length": round(width * ratio, 2),
        "width": width,
        "depth": round(width * depth_pct / 100, 2),
        "depthPercentage": depth_pct,
        "table": _between(rng, *table_range),
    }
    if shape == "ROUND" or rng.random() < 0.5:  # labs give angles on rounds, often on others
        measured["crownAngle"] = _between(rng, 31.0, 37.0)
        measured["crownHeight"] = _between(rng, 12.0, 17.0)
        measured["pavAngle"] = _between(rng, 40.2, 41.6)
        measured["pavDepth"] = _between(rng, 42.0, 44.5)
    return measured


def _fancy_color(rng: random.Random) -> dict[str, str | None]:
    """A fancy colour's hue, intensity and (mostly no) overtone, keyed as the feed does."""
    drawn = (_FANCY_COLOR(rng), _FANCY_INTENSITY(rng), _FANCY_OVERTONE(rng))
    return dict(zip(_FANCY_KEYS, drawn, strict=True))


def _tint(rng: random.Random, tinted: Sequence[str]) -> str | None:
    """A brown/green/milky field as feeds send it: mostly absent or a 'none' spelling."""
    if rng.random() < 0.08:
        return tinted[int(rng.random() * len(tinted))]
    spelling: str | None = _NO_TINT(rng)
    return spelling


def _stone_grading(rng: random.Random, stone_id: str, qi: int) -> dict[str, Any]:
    """The stone-level fields: eye-clean (mostly, and unknown for some), tints, pictures."""
    if qi <= CLARITIES.index("SI1"):
        eye_clean = rng.random() < 0.97
    else:
        eye_clean = rng.random() < (0.4 if CLARITIES[qi] == "SI2" else 0.02)
    pictures = 0 if rng.random() < 0.1 else 1 + int(rng.random() * len(_VIEWS))
    return {
        "eyeClean": None if rng.random() < 0.08 else eye_clean,
        "brown": _tint(rng, ("B1", "B2", "Light Brown")),
        "green": _tint(rng, ("G1", "Light Green")),
        "milky": _tint(rng, ("M1", "Slightly Milky")),
        "images": [f"https://images.example.com/{stone_id}/{v}.jpg" for v in _VIEWS[:pictures]],
    }


def raw_payload(rng: random.Random, seed: int, index: int) -> dict[str, Any]:
    """One supplier offer, shaped like a Nivoda API item (certificate, supplier, price)."""
    lab_grown = rng.random() < LAB_GROWN_SHARE
    fancy = rng.random() < FANCY_COLOR_SHARE
    shape: str = _SHAPE(rng)
    carat = _carats(rng, lab_grown)
    ci: int = (_LAB_COLOR if lab_grown else _NATURAL_COLOR)(rng)
    qi: int = (_LAB_CLARITY if lab_grown else _NATURAL_CLARITY)(rng)
    fi: int = 0 if lab_grown else _NATURAL_FLUORESCENCE(rng)
    # Labs grade cut on rounds only; polish and symmetry follow the cut.
    cut: str | None = _GRADE(rng) if shape == "ROUND" or rng.random() < 0.2 else None
    lab: str = (_LAB_LAB if lab_grown else _NATURAL_LAB)(rng)
    stone_id = f"syn-{seed}-{index:08d}"
    offer_id = str(UUID(int=rng.getrandbits(128), version=4))
    supplier_name, legal_name = SUPPLIERS[int(rng.random() * len(SUPPLIERS))]
    certificate: dict[str, Any] = {
        "shape": shape,
        "carats": carat,
        # A fancy-coloured stone has no D-Z grade: its colour is f_color/f_intensity/f_overtone.
        "color": None if fancy else COLORS[ci],
        **(_fancy_color(rng) if fancy else dict.fromkeys(_FANCY_KEYS)),
        "clarity": CLARITIES[qi],
        "cut": cut,
        "polish": cut if cut and rng.random() < 0.7 else _GRADE(rng),
        "symmetry": cut if cut and rng.random() < 0.6 else _GRADE(rng),
        "floInt": FLUORESCENCES[fi],
        "labgrown": lab_grown,
        "treated": rng.random() < 0.01,
        "lab": None if lab == "NONE" else lab,
        "certNumber": None if lab == "NONE" else str(rng.randrange(10**9, 10**10)),
        **_measurements(rng, shape, carat),
        "girdle": _GIRDLE(rng),
        "culetSize": _CULET(rng),
    }
    price = _price_cents(rng, {**certificate, "labgrown": lab_grown}, ci, qi, fi)
    if fancy:
        price *= 2 + int(rng.random() * 4)  # colour, not whiteness, makes a fancy stone's price
    updated = FEED_EPOCH - timedelta(minutes=rng.randrange(90 * 24 * 60))
    return {
        "id": offer_id,
        "price": price,
        "diamond": {
            "id": stone_id,
            "availability": _AVAILABILITY(rng),
            "image": f"https://images.example.com/{stone_id}.jpg",
            "video": f"https://videos.example.com/{stone_id}.mp4" if rng.random() < 0.8 else None,
            **_stone_grading(rng, stone_id, qi),
            "certificate": certificate,
            "supplier": {"name": supplier_name, "legal_name": legal_name},
        },
        "updatedAt": updated.isoformat(),
    }


def raw_payloads(rows: int, seed: int = 0, *, start: int = 0) -> Iterator[dict[str, Any]]:
    """`rows` payloads numbered from `start`, the same ones for the same (seed, start).

    Independent slices (a worker's partition) use different starts.
    """
    rng = random.Random(f"diamond_db:{seed}:{start}")
    for index in range(start, start + rows):
        yield raw_payload(rng, seed, index)


def raw_input(payload: dict[str, Any]) -> RawDiamondInput:
    """The worker's view of a payload: its keys and the payload itself."""
    return RawDiamondInput(
        supplier_stone_id=payload["diamond"]["id"],
        offer_id=payload["id"],
        payload=payload,
        source_updated_at=datetime.fromisoformat(payload["updatedAt"]),
    )


def diamond_from_payload(
    payload: dict[str, Any], markup_ratio: Decimal | None = None, rating: int | None = None
) -> DiamondInput:
    """The consolidator's mapping of a payload to canonical columns, priced with a markup."""
    stone = payload["diamond"]
    cert = stone["certificate"]
    carats = Decimal(str(cert["carats"])).quantize(Decimal("0.01"))
    price: int = payload["price"]
    measured = {key: cert[key] for key in _MEASURED if key in cert}
    graded = {key: stone[key] for key in _GRADED}
    diamond = DiamondInput(
        supplier_stone_id=stone["id"],
        offer_id=payload["id"],
        shape=cert["shape"],
        carats=carats,
        color=cert["color"],
        clarity=cert["clarity"],
        cut=cert["cut"],
        polish=cert["polish"],
        symmetry=cert["symmetry"],
        fluorescence=cert["floInt"],
        lab_grown=cert["labgrown"],
        treated=cert["treated"],
        supplier_price_cents=price,
        price_per_carat_cents=round(price / carats),
        availability=RAW_AVAILABILITY[stone["availability"]],
        raw_availability=stone["availability"],
        image_url=stone["image"],
        video_url=stone["video"],
        certificate_lab=cert["lab"],
        certificate_number=cert["certNumber"],
        certificate_pdf_url=(
            f"https://certificates.example.com/{cert['certNumber']}.pdf"
            if cert["certNumber"]
            else None
        ),
        measurements=measured,
        attributes={"girdle": cert["girdle"], "culetSize": cert["culetSize"], **graded},
        supplier_name=stone["supplier"]["name"],
        supplier_legal_name=stone["supplier"]["legal_name"],
        source_updated_at=datetime.fromisoformat(payload["updatedAt"]),
        **_typed_grading(measured, cert, stone),
    )
    return diamond if markup_ratio is None else priced(diamond, markup_ratio, rating)


def _typed_grading(
    measured: dict[str, Any], cert: dict[str, Any], stone: dict[str, Any]
) -> dict[str, Any]:
    """The typed grading columns, the same values the JSON keys hold (as 0006 reads them)."""

    def number(key: str) -> Decimal | None:
        return None if measured.get(key) is None else Decimal(str(measured[key]))

    length, width = number("length"), number("width")
    images = [{"url": url, "display_index": i} for i, url in enumerate(stone["images"])]
    return {
        "fancy_color": cert["f_color"],
        "fancy_intensity": cert["f_intensity"],
        "fancy_overtone": cert["f_overtone"],
        "fluorescence_intensity": FLUORESCENCE_INTENSITIES[cert["floInt"]],
        "ratio": round(length / width, 3) if length and width else None,
        "length_mm": length,
        "width_mm": width,
        "depth_mm": number("depth"),
        "table_pct": number("table"),
        "depth_pct": number("depthPercentage"),
        "crown_angle": number("crownAngle"),
        "crown_height": number("crownHeight"),
        "pavilion_angle": number("pavAngle"),
        "pavilion_depth": number("pavDepth"),
        "girdle": cert["girdle"],
        "culet_size": cert["culetSize"],
        "eye_clean": stone["eyeClean"],
        "brown": stone["brown"],
        "green": stone["green"],
        "milky": stone["milky"],
        "meta_images": images or None,
    }


def priced(diamond: DiamondInput, markup_ratio: Decimal, rating: int | None) -> DiamondInput:
    """The diamond with a pricing rule's markup applied: retail = supplier price x markup."""
    retail = int((diamond.supplier_price_cents * markup_ratio).to_integral_value())
    return dataclasses.replace(
        diamond, markup_ratio=markup_ratio, retail_price_cents=retail, rating=rating
    )


def synthetic_diamonds(rows: int, seed: int = 0) -> Iterator[DiamondInput]:
    """`rows` priced diamonds (the platform's default markup and rating), deterministic per seed."""
    for payload in raw_payloads(rows, seed):
        yield diamond_from_payload(payload, DEFAULT_MARKUP, DEFAULT_RATING)


async def seed_diamonds(
    db: Operations,
    rows: int,
    *,
    seed: int = 0,
    batch_size: int = 5_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write `rows` synthetic diamonds through upsert_diamonds, batch by batch; return the count.

    The next batch is generated in a thread while the current one is written,
    so Python's generation and the server's insert overlap on two cores.
    """
    batches = batched(synthetic_diamonds(rows, seed), batch_size)
    written = 0
    upcoming = asyncio.create_task(asyncio.to_thread(next, batches, None))
    batch: list[DiamondInput] | None
    while (batch := await upcoming) is not None:
        upcoming = asyncio.create_task(asyncio.to_thread(next, batches, None))
        written += await db.upsert_diamonds(batch)
        if on_batch is not None:
            on_batch(len(batch))
    return written


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = [
    "FEED_EPOCH",
    "batched",
    "diamond_from_payload",
    "priced",
    "raw_input",
    "raw_payload",
    "raw_payloads",
    "seed_diamonds",
    "synthetic_diamonds",
]
