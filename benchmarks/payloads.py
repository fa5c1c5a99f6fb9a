"""Raw payloads of realistic size (~1.9 KB of JSON, like a full Nivoda item) for ingestion.

diamond_db.synthetic's payloads carry the fields the consolidator maps (~0.7 KB);
a real supplier item also carries certificate details, media, logistics and
supplier contact data. `full_payload` adds those, deterministically per stone,
so the ingest paths move the byte volume the issue's figures were measured with.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any, Final

from diamond_db import RawDiamondInput
from diamond_db.synthetic import raw_input, raw_payloads

_SYMBOLS: Final = (
    "Crystal",
    "Feather",
    "Needle",
    "Cloud",
    "Pinpoint",
    "Twinning Wisp",
    "Indented Natural",
)
_COUNTRIES: Final = (("BE", "Antwerp"), ("IN", "Mumbai"), ("IL", "Ramat Gan"), ("US", "New York"))
_COMMENTS: Final = (
    "Clarity grade is based on clarity characteristics shown. Pinpoints are not shown.",
    "Additional clouds are not shown. Surface graining is not shown.",
    "This stone was grown by the CVD process and may include post-growth treatment.",
)


def full_payload(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The synthetic payload plus the fields a real item carries, drawn from `rng`."""
    stone = payload["diamond"]
    sid = stone["id"]
    cert = stone["certificate"]
    number = cert["certNumber"] or sid
    country, city = rng.choice(_COUNTRIES)
    cert_extra = {
        "certUrl": f"https://certificates.example.com/reports/{number}.pdf",
        "keyToSymbols": rng.sample(_SYMBOLS, rng.randint(2, 4)),
        "comments": rng.choice(_COMMENTS),
        "inscription": f"{cert['lab'] or 'NONE'} {number}",
        "crownAngle": round(rng.uniform(31, 37), 1),
        "crownHeight": round(rng.uniform(12, 17), 1),
        "pavilionAngle": round(rng.uniform(40.2, 41.4), 1),
        "pavilionDepth": round(rng.uniform(42, 44.5), 1),
        "starLength": rng.choice((45, 50, 55)),
        "lowerGirdle": rng.choice((75, 80, 85)),
        "girdleCondition": rng.choice(("FACETED", "POLISHED", "BRUTED")),
        "girdlePercentage": round(rng.uniform(2.5, 4.5), 1),
        "reportDate": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "labLocation": rng.choice(("Carlsbad", "New York", "Mumbai", "Antwerp", "Hong Kong")),
        "measurementsText": f"{cert['length']:.2f} - {cert['width']:.2f} x {cert['depth']:.2f} mm",
    }
    media = [f"https://images.example.com/{sid}/{view}.jpg" for view in ("front", "side", "top")]
    stone_extra = {
        "images": media,
        "v360": {"url": f"https://v360.example.com/view/{sid}", "frameCount": 160},
        "deliveryTime": {
            "minBusinessDays": rng.randint(2, 5),
            "maxBusinessDays": rng.randint(6, 12),
        },
        "location": {"country": country, "city": city, "vault": f"V-{rng.randint(1, 40):02d}"},
        "brown": rng.random() < 0.05,
        "green": rng.random() < 0.02,
        "milky": rng.random() < 0.03,
        "returnable": rng.random() < 0.9,
        "mineOfOrigin": rng.choice((None, "Botswana", "Canada", "Russia", "South Africa")),
    }
    supplier = stone["supplier"]
    supplier_extra = {
        "id": f"sup-{zlib.crc32(supplier['name'].encode()) % 10_000:04d}",
        "phone": f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        "email": "sales@" + supplier["name"].lower().replace(" ", "-") + ".example.com",
        "website": "https://" + supplier["name"].lower().replace(" ", "-") + ".example.com",
        "rating": round(rng.uniform(3.5, 5.0), 2),
        "address": f"{rng.randint(1, 200)} Diamond Street, {city}, {country}",
    }
    return {
        **payload,
        "currency": "USD",
        "markup": round(rng.uniform(1.05, 1.4), 3),
        "discount": round(rng.uniform(-0.45, -0.05), 4),
        "diamond": {
            **stone,
            **stone_extra,
            "certificate": {**cert, **cert_extra},
            "supplier": {**supplier, **supplier_extra},
        },
    }


def full_inputs(rows: int, seed: int, *, start: int = 0) -> Iterator[RawDiamondInput]:
    """`rows` RawDiamondInputs with full-size payloads, numbered from `start` (deterministic)."""
    rng = random.Random(f"benchmarks:{seed}:{start}")
    for payload in raw_payloads(rows, seed, start=start):
        yield raw_input(full_payload(payload, rng))
