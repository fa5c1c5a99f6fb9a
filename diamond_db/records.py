"""Typed records: the rows the library returns and the inputs it accepts.

Row records carry exactly the columns their statements select, named as the
columns (a test checks each statement's columns against its record's fields).
All are frozen and slotted: cheap to build, safe to share between tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypedDict, TypeVar
from uuid import UUID

Availability = Literal["available", "on_hold", "sold", "unavailable"]
DiamondStatus = Literal["active", "deleted"]
ConsolidationStatus = Literal["pending", "processing", "done", "failed"]
RunType = Literal["full", "incremental"]
WorkerStatus = Literal["running", "completed", "failed"]
# A run's status: the SQL function run_status (README, "Run status").
RunStatus = Literal["running", "completed", "partial", "failed", "cancelled", "stalled"]
HoldStatus = Literal["active", "expired", "released"]
PurchaseStatus = Literal["pending", "confirmed", "failed"]
# The checkout's order (purchase_history.status of an order made by create_checkout).
CheckoutStatus = Literal["pending_payment", "paid", "confirmed", "expired"]
PaymentStatus = Literal["pending", "paid", "expired"]
SupplierOrderStatus = Literal["not_attempted", "pending", "placed", "failed", "conflict"]
CatalogueJobKind = Literal["pricing", "rating"]
CatalogueJobStatus = Literal[
    "pending", "running", "cancelling", "cancelled", "completed", "failed", "reverting", "reverted"
]
CatalogueJobPhase = Literal["run", "revert"]

JSONObject = dict[str, Any]
T = TypeVar("T")


class DiamondImage(TypedDict):
    """One picture of a diamond's gallery (an item of `meta_images`), as stored in JSONB."""

    url: str
    display_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DiamondSummary:
    """A diamond as a result list shows it: search_diamonds(projection="list").

    The columns of a storefront's result card only, so a page reads and sends
    a fraction of a full `Diamond` row.
    """

    id: UUID
    supplier: str
    shape: str
    carats: Decimal
    color: str | None
    clarity: str | None
    cut: str | None
    fancy_color: str | None
    fancy_intensity: str | None
    lab_grown: bool
    supplier_price_cents: int
    retail_price_cents: int | None
    markup_ratio: Decimal | None
    rating: int | None
    availability: Availability
    certificate_lab: str | None
    image_url: str | None
    video_url: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Diamond:
    """A canonical diamond (table `diamonds`)."""

    id: UUID
    supplier: str
    supplier_stone_id: str
    offer_id: str
    shape: str
    carats: Decimal
    color: str | None
    clarity: str | None
    cut: str | None
    polish: str | None
    symmetry: str | None
    fluorescence: str | None
    lab_grown: bool
    treated: bool
    supplier_price_cents: int
    price_per_carat_cents: int
    retail_price_cents: int | None
    markup_ratio: Decimal | None
    rating: int | None
    availability: Availability
    raw_availability: str | None
    hold_id: str | None
    image_url: str | None
    video_url: str | None
    certificate_lab: str | None
    certificate_number: str | None
    certificate_pdf_url: str | None
    measurements: JSONObject | None
    attributes: JSONObject | None
    supplier_name: str | None
    supplier_legal_name: str | None
    status: DiamondStatus
    source_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    # Grading data (migration 0005); measurements/attributes keep everything else.
    fancy_color: str | None
    fancy_intensity: str | None
    fancy_overtone: str | None
    fluorescence_intensity: str | None
    ratio: Decimal | None
    table_pct: Decimal | None
    depth_pct: Decimal | None
    crown_angle: Decimal | None
    crown_height: Decimal | None
    pavilion_angle: Decimal | None
    pavilion_depth: Decimal | None
    length_mm: Decimal | None
    width_mm: Decimal | None
    depth_mm: Decimal | None
    girdle: str | None
    culet_size: str | None
    brown: str | None
    green: str | None
    milky: str | None
    eye_clean: bool | None
    meta_images: list[DiamondImage] | None
    pricing_rating: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DiamondInput:
    """The supplier-owned columns of a diamond, as the consolidator writes them.

    hold_id is absent on purpose: only the hold operations set it.
    """

    supplier_stone_id: str
    offer_id: str
    shape: str
    carats: Decimal
    supplier_price_cents: int
    price_per_carat_cents: int
    supplier: str = "nivoda"
    color: str | None = None
    clarity: str | None = None
    cut: str | None = None
    polish: str | None = None
    symmetry: str | None = None
    fluorescence: str | None = None
    lab_grown: bool = False
    treated: bool = False
    retail_price_cents: int | None = None
    markup_ratio: Decimal | None = None
    rating: int | None = None
    availability: Availability = "available"
    raw_availability: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    certificate_lab: str | None = None
    certificate_number: str | None = None
    certificate_pdf_url: str | None = None
    measurements: JSONObject | None = None
    attributes: JSONObject | None = None
    supplier_name: str | None = None
    supplier_legal_name: str | None = None
    status: DiamondStatus = "active"
    source_updated_at: datetime | None = None
    # Grading data: percentages (table_pct, depth_pct, crown_height, pavilion_depth)
    # 0-100, angles 0-90, millimetres and ratio (length / width) > 0.
    fancy_color: str | None = None
    fancy_intensity: str | None = None
    fancy_overtone: str | None = None
    fluorescence_intensity: str | None = None
    ratio: Decimal | None = None
    table_pct: Decimal | None = None
    depth_pct: Decimal | None = None
    crown_angle: Decimal | None = None
    crown_height: Decimal | None = None
    pavilion_angle: Decimal | None = None
    pavilion_depth: Decimal | None = None
    length_mm: Decimal | None = None
    width_mm: Decimal | None = None
    depth_mm: Decimal | None = None
    girdle: str | None = None
    culet_size: str | None = None
    brown: str | None = None
    green: str | None = None
    milky: str | None = None
    eye_clean: bool | None = None
    meta_images: Sequence[DiamondImage] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawDiamond:
    """A raw supplier payload (table `raw_diamonds`, partitioned by supplier)."""

    id: UUID
    supplier: str
    run_id: UUID
    supplier_stone_id: str
    offer_id: str
    source_updated_at: datetime | None
    payload: JSONObject
    payload_hash: str
    consolidated: bool
    consolidated_at: datetime | None
    consolidation_status: ConsolidationStatus
    claimed_by: str | None
    claimed_at: datetime | None
    consolidation_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RawPartition:
    """The partition of raw_diamonds holding a feed's rows (purge_raw_payloads)."""

    schema_name: str
    table_name: str
    own_partition: bool  # its bound is this feed alone: it can be truncated


@dataclass(frozen=True, slots=True, kw_only=True)
class RawClaims:
    """How many of a feed's rows one consolidator holds (purge_raw_payloads)."""

    claimed_by: str | None
    claimed: int


@dataclass(frozen=True, slots=True)
class RawDiamondInput:
    """One raw payload for `upsert_raw_diamonds`."""

    supplier_stone_id: str
    offer_id: str
    payload: JSONObject
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMetadata:
    """A batch run (table `run_metadata`)."""

    run_id: UUID
    run_type: RunType
    expected_workers: int
    completed_workers: int
    failed_workers: int
    watermark_before: datetime | None
    watermark_after: datetime | None
    started_at: datetime
    completed_at: datetime | None
    supplier: str
    cancelled_at: datetime | None
    cancel_reason: str | None
    consolidation_started_at: datetime | None
    consolidation_finished_at: datetime | None
    consolidation_updated_at: datetime | None
    consolidation_processed: int
    consolidation_errors: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCounters:
    """A run's counters right after one atomic increment: tells the last worker."""

    completed_workers: int
    expected_workers: int
    failed_workers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRun:
    """One worker's attempt at one partition of a run (table `worker_runs`)."""

    id: UUID
    run_id: UUID
    partition_id: str
    worker_id: UUID
    status: WorkerStatus
    records_processed: int
    error_message: str | None
    work_item_payload: JSONObject | None
    started_at: datetime
    completed_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProgress:
    """Where one partition of a run stands (table `partition_progress`).

    `next_offset` is the offset of the next page to fetch; a partition is in
    progress until it is completed or failed (never both).
    """

    run_id: UUID
    partition_id: str
    next_offset: int
    completed: bool
    failed: bool
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancellation:
    """What `cancel_run` changed: partitions and running worker runs it failed.

    `cancelled_at` is when the run was first cancelled (None: the run had
    already finished, so nothing was cancelled).
    """

    run_id: UUID
    partitions_failed: int
    worker_runs_failed: int
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOverview:
    """A run as the dashboard shows it (view `run_progress` and `run_status`).

    Worker counts come from the run's partitions when it has any, else from
    its counters; `rows_processed` sums its worker runs' records_processed,
    `estimated_rows` their work items' `estimated_records`.
    """

    run_id: UUID
    supplier: str
    run_type: RunType
    status: RunStatus
    started_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    expected_workers: int
    partitions: int
    workers_completed: int
    workers_failed: int
    workers_pending: int
    worker_runs: int
    workers_running: int
    rows_processed: int
    estimated_rows: int | None
    consolidation_started_at: datetime | None
    consolidation_finished_at: datetime | None
    consolidation_processed: int
    consolidation_errors: int
    last_activity_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsolidationProgress:
    """The raw rows a run wrote, by consolidation status, and the oldest still pending."""

    run_id: UUID
    total: int
    done: int
    pending: int
    processing: int
    failed: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplierStats:
    """One supplier's live diamonds: counts by availability, supplier prices, last update."""

    supplier: str
    live: int
    available: int
    on_hold: int
    sold: int
    unavailable: int
    min_price_cents: int
    avg_price_cents: int
    max_price_cents: int
    last_updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSummary:
    """The operations dashboard's front page, read in one statement.

    Live diamonds by availability and by supplier; each supplier's last
    completed run; how many runs started in the last 7 days ended in each status.
    """

    live_diamonds: int
    by_availability: dict[str, int]
    by_supplier: dict[str, int]
    last_successful_runs: dict[str, LastRun]
    run_statuses: dict[str, int]


@dataclass(frozen=True, slots=True)
class LastRun:
    """A supplier's last successful run, as the summary lists it."""

    run_id: UUID
    started_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersion:
    """A supplier's dataset version (table `dataset_versions`), the API's cache key."""

    supplier: str
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorGroup:
    """A group of like errors of one service (table `error_log`).

    `pattern` is the message with numbers, ids and quoted values normalised (the
    group's key, with the service); `message`, `error_type`, `stack`, `context`
    and `run_id` are the latest occurrence's.
    """

    id: UUID
    fingerprint: str
    service: str
    pattern: str
    message: str
    error_type: str | None
    stack: str | None
    context: JSONObject | None
    run_id: UUID | None
    occurrences: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingRule:
    """A pricing rule (table `pricing_rules`); NULL criteria match everything."""

    id: UUID
    priority: int
    carat_min: Decimal | None
    carat_max: Decimal | None
    shapes: list[str] | None
    lab_grown: bool | None
    supplier: str | None
    markup_ratio: Decimal
    rating: int | None
    active: bool
    created_at: datetime
    updated_at: datetime
    price_min_cents: int | None
    price_max_cents: int | None
    fancy: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingRule:
    """A rating rule (table `rating_rules`); NULL criteria match everything.

    List criteria are stored upper-cased and match case-insensitively; ranges
    are inclusive, and a diamond without the value never matches a range.
    """

    id: UUID
    priority: int
    rating: int
    supplier: str | None
    shapes: list[str] | None
    colors: list[str] | None
    clarities: list[str] | None
    cuts: list[str] | None
    polishes: list[str] | None
    symmetries: list[str] | None
    fluorescences: list[str] | None
    certificate_labs: list[str] | None
    girdles: list[str] | None
    culet_sizes: list[str] | None
    lab_grown: bool | None
    carat_min: Decimal | None
    carat_max: Decimal | None
    price_min_cents: int | None
    price_max_cents: int | None
    table_pct_min: Decimal | None
    table_pct_max: Decimal | None
    depth_pct_min: Decimal | None
    depth_pct_max: Decimal | None
    crown_angle_min: Decimal | None
    crown_angle_max: Decimal | None
    crown_height_min: Decimal | None
    crown_height_max: Decimal | None
    pavilion_angle_min: Decimal | None
    pavilion_angle_max: Decimal | None
    pavilion_depth_min: Decimal | None
    pavilion_depth_max: Decimal | None
    ratio_min: Decimal | None
    ratio_max: Decimal | None
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueJob:
    """A re-pricing or re-rating job (table `catalogue_jobs`).

    `filters` is the validated DiamondSearch filter set (None: every live
    diamond); `phase` is "run" or "revert" (what working the job does);
    `checkpoint` the last diamond id done in that phase. `processed` and
    `changed` count the run; `restored` and `skipped` the revert (skipped:
    diamonds changed since the job, left alone). `suppliers` are the suppliers
    whose diamonds the job changed.
    """

    id: UUID
    kind: CatalogueJobKind
    status: CatalogueJobStatus
    phase: CatalogueJobPhase
    filters: JSONObject | None
    reason: str
    triggered_by_rule_id: UUID | None
    total: int | None
    processed: int
    changed: int
    restored: int
    skipped: int
    retry_count: int
    error: str | None
    checkpoint: UUID | None
    suppliers: list[str]
    lease_holder: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reverted_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """An API client's key record (table `api_keys`); holds the hash, never the key."""

    id: UUID
    key_hash: str = field(repr=False)
    client_name: str
    permissions: list[str]
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldHistory:
    """One supplier hold, granted or denied (table `hold_history`)."""

    id: UUID
    diamond_id: UUID
    supplier: str
    supplier_hold_id: str | None
    offer_id: str
    status: HoldStatus
    denied: bool
    hold_until: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseHistory:
    """One purchase attempt (table `purchase_history`)."""

    id: UUID
    diamond_id: UUID
    supplier: str
    supplier_order_id: str | None
    offer_id: str
    idempotency_key: str
    status: PurchaseStatus | CheckoutStatus
    reference: str | None
    comments: str | None
    created_at: datetime
    updated_at: datetime
    # The checkout's fields (None for a purchase made by create_purchase_history).
    order_number: str | None
    payment_status: PaymentStatus | None
    order_status: SupplierOrderStatus | None
    checkout_session_id: str | None
    payment_intent_id: str | None
    amount_cents: int | None
    currency: str | None
    order_error: str | None
    paid_at: datetime | None
    expired_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeRate:
    """One day's rate from a base to a target currency (table `exchange_rates`).

    One unit of `base_currency` is worth `rate` units of `target_currency`.
    """

    base_currency: str
    target_currency: str
    rate_date: date
    rate: Decimal
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[T]):
    """One page of a newest-first listing; `next_cursor` continues it (None on the last page)."""

    items: list[T]
    next_cursor: str | None


FacetValue = str | bool | None


@dataclass(frozen=True, slots=True, eq=False)
class Facets(Mapping[str, Mapping[FacetValue, int]]):
    """search_facets' counts: {facet: {value: count}}, NULL values under None.

    With count="capped", a count that reached `count_cap` is reported as the cap
    and its (facet, value) is in `capped` ("10,000+"); `capped` is empty when
    every count is exact.
    """

    counts: Mapping[str, Mapping[FacetValue, int]]
    capped: frozenset[tuple[str, FacetValue]] = frozenset()
    count_cap: int | None = None

    def __getitem__(self, facet: str) -> Mapping[FacetValue, int]:
        return self.counts[facet]

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def is_exact(self) -> bool:
        """True when no count was capped."""
        return not self.capped


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendations:
    """get_recommended_diamonds' three distinct stones; a slot the pool cannot fill is None."""

    highest_rated: Diamond | None
    most_expensive: Diamond | None
    mid_rated: Diamond | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryEvent:
    """What `Database(on_query=...)` receives after every statement.

    Carries the statement's name, never its parameters.
    """

    name: str
    duration: float
    rows: int
    error: BaseException | None


# -- schema migrations ------------------------------------------------------------

MigrationState = Literal["applied", "pending", "changed", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationStatus:
    """One migration as `migration_status()` and `migrate()` report it.

    `version` is the four digits of the file name ("0002"); `state` is
    applied, pending, changed (the file's checksum differs from the ledger's) or
    unknown (in the ledger, not in this package: a newer deploy applied it).
    """

    version: str
    name: str
    state: MigrationState
    applied_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """A row of the `schema_migrations` ledger (the columns the runner reads)."""

    version: str
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationLock:
    """The lease of the running `migrate` (table `schema_migrations_lock`)."""

    holder: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LockWait:
    """A lock the migration runner's session waits for, and who holds it."""

    pid: int
    lock_type: str
    mode: str
    waiting_for: str
    waited: float | None
    blockers: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TableRows:
    """The planner's row estimate of one table (for a migration plan's timings)."""

    table_name: str
    estimated_rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfinishedConstraint:
    """A constraint still NOT VALID, or a validated not-null helper check to finish."""

    table_name: str
    constraint_name: str
    definition: str
    is_foreign_key: bool
    validated: bool
    column_names: list[str]
    key_column: str | None
    referenced_table: str | None
    referenced_columns: list[str] | None
    not_null_helper: bool
