"""`diamond-db demo`: the platform's whole job, end to end, on a throw-away database.

Two supplier feeds ingest side by side. For each, a scheduler creates a run;
several workers store raw supplier payloads concurrently and bump the run's
atomic counter, which tells the last one; that worker starts the feed's
consolidators, which claim raw rows of their feed only (SKIP LOCKED), price
them with the pricing rules and upsert them into `diamonds`. Then the API's
side: searches, the filter panel's facet counts, a recommendation, a hold, an
idempotent purchase, and a checkout walked through payment and supplier order,
its payment webhook replayed to show it changes nothing. Every step goes
through the library's own operations; the summary is re-read from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text

from ._server import throwaway_database
from .database import Database
from .errors import DiamondDBError
from .presentation import bulk_settings, money, print_facets, print_page, where
from .records import Diamond, Facets, PricingRule, PurchaseHistory, Recommendations
from .synthetic import batched, diamond_from_payload, priced, raw_input, raw_payloads

RAW_PAGE: int = 1_000
CLAIM_BATCH: int = 1_000
# The two feeds: the platform's first one gets two thirds of the offers.
FEEDS: tuple[str, str] = ("nivoda", "vdb")

# The seed README's example search, as the platform's API sends it.
README_SEARCH: dict[str, Any] = {
    "shape": "ROUND",
    "carat_min": Decimal("1.0"),
    "carat_max": Decimal("2.0"),
    "colors": ["D", "E", "F"],
    "clarities": ["VVS1", "VVS2"],
    "lab_grown": False,
    "price_min": 500_000,
    "price_max": 1_000_000,
    "sort_by": "supplier_price_cents",
    "sort_order": "asc",
}
SEARCHES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("The seed README's search: natural 1-2 ct D-F VVS rounds, $5,000-$10,000", README_SEARCH),
    (
        "Lab-grown ovals of 2 ct and more, largest first",
        {"shape": "OVAL", "lab_grown": True, "carat_min": Decimal("2"), "sort_by": "carats"},
    ),
    (
        "Best value: natural 1 ct G-H VS, lowest price per carat (count capped)",
        {
            "lab_grown": False,
            "carat_min": Decimal("1.0"),
            "carat_max": Decimal("1.19"),
            "colors": ["G", "H"],
            "clarities": ["VS1", "VS2"],
            "sort_by": "price_per_carat_cents",
            "sort_order": "asc",
            "count": "capped",
        },
    ),
)
# The README search's filters, without its sort: what the filter panel counts.
FACET_FILTERS: dict[str, Any] = {
    k: v for k, v in README_SEARCH.items() if k not in ("sort_by", "sort_order")
}
# Rules the demo adds on top of the default one bootstrap seeds (priority 1000, x1.15).
DEMO_RULES: tuple[dict[str, Any], ...] = (
    {"priority": 10, "lab_grown": True, "markup_ratio": Decimal("1.40"), "rating": 4},
    {
        "priority": 20,
        "lab_grown": False,
        "shapes": ["ROUND"],
        "carat_min": Decimal("2.00"),
        "markup_ratio": Decimal("1.10"),
        "rating": 8,
    },
)


class DatabaseNotEmpty(DiamondDBError):
    """The demo was pointed at a database that already holds diamonds."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How big the demo is: offers ingested, workers, consolidators, and the data's seed."""

    rows: int = 10_000
    workers: int = 4
    consolidators: int = 3
    seed: int = 7
    limit: int = 5


@dataclass
class FeedSummary:
    """One feed's run, re-read from the database."""

    run_id: uuid.UUID | None = None
    expected_workers: int = 0
    completed_workers: int = 0
    run_completed: bool = False
    last_worker: str = ""
    raw_stored: int = 0
    raw_pending: int = 0
    consolidated: int = 0


@dataclass
class DemoSummary:
    """What the demo did, re-read from the database where the database knows it."""

    where: str = ""
    key: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # idempotency keys
    feeds: dict[str, FeedSummary] = field(default_factory=dict)
    diamonds_active: int = 0
    diamonds_available: int = 0
    priced_by: Counter[str] = field(default_factory=Counter)
    searches: list[tuple[str, Any]] = field(default_factory=list)
    facets: Facets | None = None
    anchor: Diamond | None = None
    recommendations: Recommendations | None = None
    held: Diamond | None = None
    hold_id: str = ""
    rival_hold_refused: bool = False
    purchase_id: uuid.UUID | None = None
    purchase_replayed_same: bool = False
    order_number: str = ""
    order: PurchaseHistory | None = None
    order_diamond: Diamond | None = None
    webhook_replay_changed_nothing: bool = False
    seconds: float = 0.0


class _Pricing:
    """match_pricing_rule per distinct (carats, shape, lab_grown), remembered for the run.

    The database decides which rule applies (the same statement the API uses);
    the memo only spares a round trip per diamond with an already-seen key.
    """

    def __init__(self, db: Database, supplier: str) -> None:
        self._db = db
        self._supplier = supplier
        self._seen: dict[tuple[Decimal, str, bool], PricingRule | None] = {}

    async def rule(self, carats: Decimal, shape: str, lab_grown: bool) -> PricingRule | None:
        key = (carats, shape, lab_grown)
        if key not in self._seen:
            self._seen[key] = await self._db.match_pricing_rule(
                carats, shape, lab_grown, self._supplier
            )
        return self._seen[key]


class _Pipeline:
    """One feed's ingestion run: workers, the last-worker hand-off, consolidators."""

    def __init__(
        self,
        db: Database,
        options: DemoOptions,
        progress: Progress,
        supplier: str,
        rows: int,
        seed: int,
    ) -> None:
        self.db = db
        self.options = options
        self.progress = progress
        self.supplier = supplier
        self.rows = rows
        self.seed = seed
        self.pricing = _Pricing(db, supplier)
        self.summary = FeedSummary()
        self.priced_by: Counter[str] = Counter()
        self.ingest_task: TaskID = progress.add_task(f"{supplier}: storing raw payloads", total=0)
        self.consolidate_task: TaskID = progress.add_task(f"{supplier}: consolidating", total=0)

    async def run(self) -> FeedSummary:
        options = self.options
        run = await self.db.create_run_metadata("full", options.workers, supplier=self.supplier)
        self.summary.run_id = run.run_id
        self.progress.update(self.ingest_task, total=self.rows)
        self.progress.update(self.consolidate_task, total=self.rows)
        share, extra = divmod(self.rows, options.workers)
        starts = [i * share + min(i, extra) for i in range(options.workers + 1)]
        await asyncio.gather(
            *(
                self.worker(run.run_id, i, starts[i], starts[i + 1] - starts[i])
                for i in range(options.workers)
            )
        )
        return self.summary

    async def worker(self, run_id: uuid.UUID, index: int, start: int, rows: int) -> None:
        """Store one partition's payloads page by page, then report; the last one consolidates."""
        partition = f"partition-{index:02d}"
        work = await self.db.create_worker_run(
            run_id, partition, uuid.uuid4(), {"start": start, "rows": rows}
        )
        stored = 0
        payloads = raw_payloads(rows, self.seed, start=start)
        for page in batched(payloads, RAW_PAGE):
            batch = [raw_input(p) for p in page]
            stored += await self.db.upsert_raw_diamonds(run_id, batch, supplier=self.supplier)
            self.progress.update(self.ingest_task, advance=len(page))
        await self.db.update_worker_run(work.id, "completed", rows)
        self.summary.raw_stored += stored
        counters = await self.db.increment_completed_workers(run_id)
        if counters.completed_workers == counters.expected_workers:
            self.summary.last_worker = partition
            await self.consolidate(run_id)

    async def consolidate(self, run_id: uuid.UUID) -> None:
        """Several consolidators claim disjoint batches of this feed until nothing is pending."""
        await asyncio.gather(
            *(
                self.consolidator(f"{self.supplier}-consolidator-{i}")
                for i in range(self.options.consolidators)
            )
        )
        await self.db.complete_run(run_id, datetime.now(UTC))

    async def consolidator(self, name: str) -> None:
        feed = self.supplier
        while claimed := await self.db.claim_unconsolidated_raw_diamonds(
            CLAIM_BATCH, name, supplier=feed
        ):
            diamonds = []
            for raw in claimed:
                diamond = dataclasses.replace(diamond_from_payload(raw.payload), supplier=feed)
                rule = await self.pricing.rule(diamond.carats, diamond.shape, diamond.lab_grown)
                if rule is not None:
                    diamond = priced(diamond, rule.markup_ratio, rule.rating)
                diamonds.append(diamond)
                self.priced_by[f"x{rule.markup_ratio}" if rule else "unpriced"] += 1
            await self.db.upsert_diamonds(diamonds)
            await self.db.mark_as_consolidated(
                [raw.id for raw in claimed], claimed_by=name, supplier=feed
            )
            self.summary.consolidated += len(claimed)
            self.progress.update(self.consolidate_task, advance=len(claimed))


async def holds_diamonds(db: Database) -> bool:
    """Whether the database already has (active) diamonds: a demo never writes into real data."""
    try:
        page = await db.search_diamonds(limit=1, count="none")
    except psycopg.errors.UndefinedTable:
        return False
    return bool(page.items)


async def run_demo(
    db: Database, options: DemoOptions, console: Console, progress: Progress
) -> DemoSummary:
    """Bootstrap, ingest two feeds, search, count facets, recommend, hold and buy on `db`;
    summarise from the database."""
    started = time.perf_counter()
    console.print("[bold]1.[/] schema (sql/bootstrap.sql) and two extra pricing rules")
    await db.bootstrap()
    for rule in DEMO_RULES:
        await db.create_pricing_rule(**rule)
    summary = DemoSummary()
    shares = feed_rows(options.rows)
    console.print(
        f"[bold]2.[/] two feeds side by side ({', '.join(FEEDS)}): per feed, a run of "
        f"{options.workers} workers stores its raw payloads concurrently; the last one starts "
        f"{options.consolidators} consolidators that claim that feed's rows only"
    )
    pipelines = [
        _Pipeline(db, options, progress, feed, rows, options.seed + n)
        for n, (feed, rows) in enumerate(zip(FEEDS, shares, strict=True))
    ]
    with progress:
        feeds = await asyncio.gather(*(pipeline.run() for pipeline in pipelines))
    summary.feeds = dict(zip(FEEDS, feeds, strict=True))
    for pipeline in pipelines:
        summary.priced_by.update(pipeline.priced_by)
    console.print("[bold]3.[/] searches, as the API runs them")
    for title, filters in SEARCHES:
        page = await db.search_diamonds(**filters, limit=options.limit)
        summary.searches.append((title, page))
    console.print("[bold]4.[/] the filter panel of the README search: facet counts, one statement")
    summary.facets = await db.search_facets(**FACET_FILTERS)
    console.print("[bold]5.[/] a product page: three recommended stones, one statement")
    await _recommend(db, summary)
    console.print("[bold]6.[/] a hold, a rival hold, and a purchase retried with its key")
    await _hold_and_buy(db, summary)
    console.print(
        "[bold]7.[/] a checkout: converted to EUR, paid, supplier order placed; "
        "the payment webhook replayed"
    )
    await _checkout(db, summary)
    await _reread(db, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def feed_rows(rows: int) -> tuple[int, int]:
    """How many of `rows` offers each feed sends: two thirds, one third."""
    second = rows // 3
    return rows - second, second


async def _recommend(db: Database, summary: DemoSummary) -> None:
    """Recommendations for the first stone of the README search (or of any search)."""
    page = await db.search_diamonds(**README_SEARCH, limit=1, count="none")
    if not page.items:
        page = await db.search_diamonds(limit=1, count="none")
    if page.items:
        summary.anchor = page.items[0]
        summary.recommendations = await db.get_recommended_diamonds(summary.anchor.id)


async def _hold_and_buy(db: Database, summary: DemoSummary) -> None:
    """Hold the first available stone of the README search, then buy it twice with one key."""
    page = await db.search_diamonds(**README_SEARCH, availability="available", limit=1)
    if not page.items:
        page = await db.search_diamonds(availability="available", limit=1)
    if not page.items:
        return
    target = page.items[0]
    summary.hold_id = f"demo-hold-{uuid.uuid4().hex[:8]}"
    hold_until = datetime.now(UTC) + timedelta(minutes=15)
    hold = await db.place_hold(
        diamond_id=target.id,
        supplier=target.supplier,
        offer_id=target.offer_id,
        supplier_hold_id=summary.hold_id,
        hold_until=hold_until,
    )
    rival = await db.place_hold(
        diamond_id=target.id,
        supplier=target.supplier,
        offer_id=target.offer_id,
        supplier_hold_id="rival-hold",
    )
    summary.rival_hold_refused = hold is not None and rival is None
    key = f"demo-purchase-{summary.key}"
    purchase: dict[str, Any] = {
        "diamond_id": target.id,
        "supplier": target.supplier,
        "offer_id": target.offer_id,
        "idempotency_key": key,
        "reference": "diamond-db demo",
    }
    first = await db.create_purchase_history(**purchase)
    replay = await db.create_purchase_history(**purchase)  # a client retrying after a timeout
    summary.purchase_id = first.id
    summary.purchase_replayed_same = replay.id == first.id


async def _checkout(db: Database, summary: DemoSummary) -> None:
    """Sell another available stone through the checkout, replaying its payment webhook."""
    page = await db.search_diamonds(availability="available", sort_by="carats", limit=1)
    if not page.items:
        return
    target = page.items[0]
    today = datetime.now(UTC).date()
    await db.upsert_exchange_rate("USD", "EUR", Decimal("0.9213"), today)
    usd = target.retail_price_cents or target.supplier_price_cents
    order = await db.create_checkout(
        target.id,
        supplier=target.supplier,
        offer_id=target.offer_id,
        amount_cents=await db.convert_cents(usd, "USD", "EUR"),
        currency="EUR",
        idempotency_key=f"demo-checkout-{summary.key}",
    )
    if order is None or order.order_number is None:
        return
    summary.order_number = order.order_number
    session = f"cs_demo_{order.id.hex[:12]}"
    await db.attach_checkout_session(order.id, session)
    paid = await db.record_payment(session, payment_intent_id="pi_demo")
    replayed = await db.record_payment(session, payment_intent_id="pi_demo")  # at least once
    summary.webhook_replay_changed_nothing = paid is not None and replayed == paid
    await db.record_supplier_order(order.id, supplier_order_id=f"so-{order.order_number}")


async def _reread(db: Database, summary: DemoSummary) -> None:
    """Fill the summary's counts from the database itself."""
    for feed, fed in summary.feeds.items():
        assert fed.run_id is not None
        run = await db.get_run_metadata(fed.run_id)
        assert run is not None
        fed.expected_workers = run.expected_workers
        fed.completed_workers = run.completed_workers
        fed.run_completed = run.completed_at is not None
        fed.raw_pending = await db.get_unconsolidated_count(supplier=feed)
    summary.diamonds_active = (await db.search_diamonds(limit=1)).total or 0
    available = await db.search_diamonds(availability="available", limit=1)
    summary.diamonds_available = available.total or 0
    purchase = await db.get_purchase_by_idempotency_key(f"demo-purchase-{summary.key}")
    if purchase is not None:
        summary.held = await db.get_diamond_by_id(purchase.diamond_id)
    if summary.order_number:
        summary.order = await db.get_order_by_number(summary.order_number)
        if summary.order is not None:
            summary.order_diamond = await db.get_diamond_by_id(summary.order.diamond_id)


async def _on(url: str, options: DemoOptions, console: Console, progress: Progress) -> DemoSummary:
    pool = len(FEEDS) * (options.workers + options.consolidators) + 2
    db = Database(url, min_size=1, max_size=pool, **bulk_settings())
    # Before opening: opening checks the schema. Refuses a database that is not
    # empty and not at the current version.
    await db.bootstrap()
    async with db:
        if await holds_diamonds(db):
            raise DatabaseNotEmpty(
                f"{where(url)} already holds diamonds; the demo only writes into an empty "
                "database (omit --database-url to use a throw-away one)"
            )
        return await run_demo(db, options, console, progress)


def run_on(url: str, options: DemoOptions, console: Console, progress: Progress) -> DemoSummary:
    """The demo against a given, empty database (it stays filled afterwards)."""
    summary = asyncio.run(_on(url, options, console, progress))
    summary.where = where(url)
    return summary


def run_throwaway(options: DemoOptions, console: Console, progress: Progress) -> DemoSummary:
    """The demo on a throw-away PostgreSQL, removed afterwards."""
    with contextlib.ExitStack() as stack:
        with console.status("starting a throw-away PostgreSQL ..."):
            server, url = stack.enter_context(throwaway_database())
        console.print(f"[bold]0.[/] throw-away PostgreSQL ({server.kind}) at {where(url)}")
        summary = asyncio.run(_on(url, options, console, progress))
    summary.where = f"a throw-away PostgreSQL ({server.kind}), now removed"
    return summary


def _checkout_rows(summary: DemoSummary) -> list[tuple[str, str]]:
    order, stone = summary.order, summary.order_diamond
    if order is None:
        return [("checkout order", "")]
    return [
        ("checkout order", f"{order.order_number}"),
        ("checkout state", f"{order.status} / {order.payment_status} / {order.order_status}"),
        ("checkout amount", f"{order.amount_cents:,} {order.currency} cents"),
        (
            "checkout diamond",
            "" if stone is None else f"{stone.supplier_stone_id} ({stone.availability})",
        ),
        (
            "replayed webhook changed nothing",
            "yes" if summary.webhook_replay_changed_nothing else "no",
        ),
    ]


def _feed_rows(summary: DemoSummary) -> list[tuple[str, str]]:
    rows = []
    for feed, fed in summary.feeds.items():
        state = "completed" if fed.run_completed else "not completed"
        rows += [
            (f"{feed} run", f"{fed.run_id} ({state})"),
            (f"{feed} workers completed", f"{fed.completed_workers} of {fed.expected_workers}"),
            (f"{feed} last worker", f"{fed.last_worker} (told by the atomic counter)"),
            (
                f"{feed} raw payloads",
                f"{fed.raw_stored:,} stored, {fed.consolidated:,} consolidated",
            ),
        ]
    return rows


def _print_recommendations(console: Console, summary: DemoSummary) -> None:
    anchor, picks = summary.anchor, summary.recommendations
    if anchor is None or picks is None:
        return
    table = Table(
        title=f"Recommended for {anchor.supplier_stone_id} ({anchor.shape} {anchor.carats} ct "
        f"{anchor.color or ''} {anchor.clarity or ''})",
        title_justify="left",
    )
    for column in ("slot", "stone", "carats", "grade", "rating"):
        table.add_column(column, no_wrap=True)
    table.add_column("retail", justify="right", no_wrap=True)
    slots = (
        ("highest rated", picks.highest_rated),
        ("most expensive", picks.most_expensive),
        ("mid rated", picks.mid_rated),
    )
    for slot, d in slots:
        if d is None:
            table.add_row(slot, "(none)")
            continue
        grade = Text(f"{d.color or '?'} {d.clarity or '?'}")
        rating = f"{d.rating or ''}"
        retail = money(d.retail_price_cents)
        table.add_row(slot, Text(d.supplier_stone_id), f"{d.carats}", grade, rating, retail)
    console.print(table)


def print_summary(console: Console, summary: DemoSummary) -> None:
    """The searches, facet counts and recommendations as tables, then one line per fact."""
    for title, page in summary.searches:
        print_page(console, page, title=title)
    if summary.facets is not None:
        print_facets(console, summary.facets, title="Facet counts of the README search's filters")
    _print_recommendations(console, summary)
    table = Table(title="What happened", title_justify="left", show_header=False, box=None)
    table.add_column("fact", style="bold")
    table.add_column("value")
    held = summary.held
    rows = [
        ("database", summary.where),
        *_feed_rows(summary),
        ("raw payloads stored", f"{sum(f.raw_stored for f in summary.feeds.values()):,}"),
        ("raw payloads consolidated", f"{sum(f.consolidated for f in summary.feeds.values()):,}"),
        ("raw payloads pending", f"{sum(f.raw_pending for f in summary.feeds.values()):,}"),
        ("active diamonds", f"{summary.diamonds_active:,}"),
        ("available diamonds", f"{summary.diamonds_available:,}"),
        (
            "priced by markup",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.priced_by.items())),
        ),
        ("held diamond", "" if held is None else f"{held.supplier_stone_id} ({held.availability})"),
        ("hold id", f"{held.hold_id if held else ''}"),
        ("rival hold refused", "yes" if summary.rival_hold_refused else "no"),
        ("purchase", f"{summary.purchase_id}"),
        (
            "purchase replay returned the same row",
            "yes" if summary.purchase_replayed_same else "no",
        ),
        *_checkout_rows(summary),
        ("seconds", f"{summary.seconds:.1f}"),
    ]
    for fact, value in rows:
        table.add_row(fact, value)
    console.print(table)
