"""`diamond-db demo`: the platform's whole job, end to end, on a throw-away database.

A scheduler creates a run; several workers store raw supplier payloads
concurrently and bump the run's atomic counter, which tells the last one;
that worker starts the consolidators, which claim raw rows (SKIP LOCKED),
price them with the pricing rules and upsert them into `diamonds`. Then the
API's side: searches, a hold, an idempotent purchase, and a checkout walked
through payment and supplier order, its payment webhook replayed to show it
changes nothing. Every step goes through
the library's own operations; the summary is re-read from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from ._server import throwaway_database
from .database import Database
from .errors import DiamondDBError
from .presentation import bulk_settings, print_page, where
from .records import Diamond, PricingRule, PurchaseHistory
from .synthetic import batched, diamond_from_payload, priced, raw_input, raw_payloads

RAW_PAGE: int = 1_000
CLAIM_BATCH: int = 1_000
SUPPLIER: str = "nivoda"

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
class DemoSummary:
    """What the demo did, re-read from the database where the database knows it."""

    where: str = ""
    run_id: uuid.UUID | None = None
    expected_workers: int = 0
    completed_workers: int = 0
    run_completed: bool = False
    last_worker: str = ""
    raw_stored: int = 0
    raw_pending: int = 0
    consolidated: int = 0
    diamonds_active: int = 0
    diamonds_available: int = 0
    priced_by: Counter[str] = field(default_factory=Counter)
    searches: list[tuple[str, Any]] = field(default_factory=list)
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

    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen: dict[tuple[Decimal, str, bool], PricingRule | None] = {}

    async def rule(self, carats: Decimal, shape: str, lab_grown: bool) -> PricingRule | None:
        key = (carats, shape, lab_grown)
        if key not in self._seen:
            self._seen[key] = await self._db.match_pricing_rule(carats, shape, lab_grown, SUPPLIER)
        return self._seen[key]


class _Pipeline:
    """One ingestion run: workers, the last-worker hand-off, consolidators."""

    def __init__(self, db: Database, options: DemoOptions, progress: Progress) -> None:
        self.db = db
        self.options = options
        self.progress = progress
        self.pricing = _Pricing(db)
        self.summary = DemoSummary()
        self.ingest_task: TaskID = progress.add_task("workers storing raw payloads", total=0)
        self.consolidate_task: TaskID = progress.add_task("consolidating into diamonds", total=0)

    async def run(self) -> DemoSummary:
        options = self.options
        run = await self.db.create_run_metadata("full", options.workers)
        self.summary.run_id = run.run_id
        self.progress.update(self.ingest_task, total=options.rows)
        self.progress.update(self.consolidate_task, total=options.rows)
        share, extra = divmod(options.rows, options.workers)
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
        payloads = raw_payloads(rows, self.options.seed, start=start)
        for page in batched(payloads, RAW_PAGE):
            stored += await self.db.upsert_raw_diamonds(run_id, [raw_input(p) for p in page])
            self.progress.update(self.ingest_task, advance=len(page))
        await self.db.update_worker_run(work.id, "completed", rows)
        self.summary.raw_stored += stored
        counters = await self.db.increment_completed_workers(run_id)
        if counters.completed_workers == counters.expected_workers:
            self.summary.last_worker = partition
            await self.consolidate(run_id)

    async def consolidate(self, run_id: uuid.UUID) -> None:
        """Several consolidators claim disjoint batches until nothing is pending."""
        await asyncio.gather(
            *(self.consolidator(f"consolidator-{i}") for i in range(self.options.consolidators))
        )
        await self.db.complete_run(run_id, datetime.now(UTC))

    async def consolidator(self, name: str) -> None:
        while claimed := await self.db.claim_unconsolidated_raw_diamonds(CLAIM_BATCH, name):
            diamonds = []
            for raw in claimed:
                diamond = diamond_from_payload(raw.payload)
                rule = await self.pricing.rule(diamond.carats, diamond.shape, diamond.lab_grown)
                if rule is not None:
                    diamond = priced(diamond, rule.markup_ratio, rule.rating)
                diamonds.append(diamond)
                self.summary.priced_by[f"x{rule.markup_ratio}" if rule else "unpriced"] += 1
            await self.db.upsert_diamonds(diamonds)
            await self.db.mark_as_consolidated([raw.id for raw in claimed], claimed_by=name)
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
    """Bootstrap, ingest, consolidate, search, hold and buy on `db`; summarise from the database."""
    started = time.perf_counter()
    console.print("[bold]1.[/] schema (sql/bootstrap.sql) and two extra pricing rules")
    await db.bootstrap()
    for rule in DEMO_RULES:
        await db.create_pricing_rule(**rule)
    console.print(
        f"[bold]2.[/] run: {options.workers} workers store {options.rows:,} raw payloads "
        f"concurrently; the last one starts {options.consolidators} consolidators"
    )
    with progress:
        summary = await _Pipeline(db, options, progress).run()
    console.print("[bold]3.[/] searches, as the API runs them")
    for title, filters in SEARCHES:
        page = await db.search_diamonds(**filters, limit=options.limit)
        summary.searches.append((title, page))
    console.print("[bold]4.[/] a hold, a rival hold, and a purchase retried with its key")
    await _hold_and_buy(db, summary)
    console.print(
        "[bold]5.[/] a checkout: converted to EUR, paid, supplier order placed; "
        "the payment webhook replayed"
    )
    await _checkout(db, summary)
    await _reread(db, summary)
    summary.seconds = time.perf_counter() - started
    return summary


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
    key = f"demo-purchase-{summary.run_id}"
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
        idempotency_key=f"demo-checkout-{summary.run_id}",
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
    assert summary.run_id is not None
    run = await db.get_run_metadata(summary.run_id)
    assert run is not None
    summary.expected_workers = run.expected_workers
    summary.completed_workers = run.completed_workers
    summary.run_completed = run.completed_at is not None
    summary.raw_pending = await db.get_unconsolidated_count()
    summary.diamonds_active = (await db.search_diamonds(limit=1)).total or 0
    available = await db.search_diamonds(availability="available", limit=1)
    summary.diamonds_available = available.total or 0
    purchase = await db.get_purchase_by_idempotency_key(f"demo-purchase-{summary.run_id}")
    if purchase is not None:
        summary.held = await db.get_diamond_by_id(purchase.diamond_id)
    if summary.order_number:
        summary.order = await db.get_order_by_number(summary.order_number)
        if summary.order is not None:
            summary.order_diamond = await db.get_diamond_by_id(summary.order.diamond_id)


async def _on(url: str, options: DemoOptions, console: Console, progress: Progress) -> DemoSummary:
    pool = options.workers + options.consolidators + 2
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


def print_summary(console: Console, summary: DemoSummary) -> None:
    """The searches as tables, then one line per fact."""
    for title, page in summary.searches:
        print_page(console, page, title=title)
    table = Table(title="What happened", title_justify="left", show_header=False, box=None)
    table.add_column("fact", style="bold")
    table.add_column("value")
    held = summary.held
    rows = [
        ("database", summary.where),
        ("run", f"{summary.run_id} ({'completed' if summary.run_completed else 'not completed'})"),
        ("workers completed", f"{summary.completed_workers} of {summary.expected_workers}"),
        ("last worker", f"{summary.last_worker} (told by the atomic counter)"),
        ("raw payloads stored", f"{summary.raw_stored:,}"),
        ("raw payloads consolidated", f"{summary.consolidated:,}"),
        ("raw payloads pending", f"{summary.raw_pending:,}"),
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
