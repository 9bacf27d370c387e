"""Deterministic InsightIQ data set held as compact numpy columns.

Everything derives from (seed, creators, now). Bulk arrays hold only what listing needs (owners, times,
statuses); records are rendered on demand by ``records.py`` from per-item RNGs, so 100,000 creators
(~5M content items) fit in a few hundred MB and start in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from devtools.sandbox import ids

DAY = 86_400
SPAN = 400 * DAY  # dated items are spread uniformly over the 400 days before --now

# (id, name, has_engagement, has_income, has_commerce, weight)
PLATFORMS = [
    ("9bb8913b-ddd9-430b-a66a-d74d846e6c66", "Instagram", True, False, False, 30),
    ("14d9ddf5-51c6-415e-bde6-f8ed36ad7054", "YouTube", True, True, False, 20),
    ("de55aeec-0dc8-4119-bf90-16b3d1f0c987", "TikTok", True, False, False, 20),
    ("7645460a-96e0-4192-a3ce-a1fc30641f72", "Twitter", True, False, False, 8),
    ("e4de6c01-5b78-4fc0-a651-24f44134457b", "Twitch", True, True, False, 7),
    ("ad2fec62-2987-40a0-89fb-23485972598c", "Facebook", True, False, False, 7),
    ("3e9a1fd6-6a4c-4b8e-9a3b-6c2f1b0c7a11", "Patreon", True, True, False, 5),
    ("5b1c0e2a-8d7f-4e3a-b2c1-9f8e7d6c5b4a", "Shopify", False, False, True, 3),
]
ACCOUNT_STATUSES = ["CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED"]
EVERYTHING = 2**40  # a relative bound before which every item lies
SYNC_STATUSES = ["SYNCED", "IN_PROGRESS", "NOT_SUPPORTED", "NOT_SYNCED", "PARTIAL_SYNCED"]
SYNCED, IN_PROGRESS, NOT_SUPPORTED, NOT_SYNCED, PARTIAL_SYNCED = range(5)
# collections with a fetch-historic endpoint: their items older than the default window before an account's
# connection wait for a fetch-historic job (History)
HISTORIC_COLLECTIONS = (
    "contents",
    "content_groups",
    "social_transactions",
    "social_payouts",
    "commerce_transactions",
    "commerce_payouts",
    "commerce_balances",
)


@dataclass
class History:
    """What InsightIQ holds of an account's past: on connection it syncs the items of a default window
    (`default_days` before the connection); older items arrive only through a fetch-historic job for the
    account and collection, `job_seconds` after it was requested, from the job's `from_date` on.

    Only accounts connected through the sandbox (`connected`, set by `POST /_sandbox/connect` and by
    `POST /_sandbox/accounts`, which adds a brand-new account) have a hidden past: the generated accounts
    were created before every generated item (records.Renderer.account), so for them the default window
    covers everything and nothing is hidden."""

    default_days: float = 30.0
    job_seconds: float = 5.0
    webhooks: bool = True  # a finished job announces its items (*.ADDED) to the webhook subscribers
    connected: dict[int, int] = field(default_factory=dict)  # account -> epoch it connected
    # (collection, account) -> [(epoch the job finishes, epoch of its from_date)]
    jobs: dict[tuple[str, int], list[tuple[float, int]]] = field(default_factory=dict)

    def clear(self) -> None:
        self.connected.clear()
        self.jobs.clear()

    def visible_from(self, name: str, account: int, now: float) -> int | None:
        """Epoch before which the account's items of `name` are hidden at `now` (None: nothing hidden)."""
        if name not in HISTORIC_COLLECTIONS or account not in self.connected:
            return None
        cutoff = int(self.connected[account] - self.default_days * DAY)
        done = [start for finish, start in self.jobs.get((name, account), ()) if finish <= now]
        return min([cutoff, *done])

    def request(self, name: str, account: int, from_epoch: int, now: float) -> float:
        """A fetch-historic job; returns when it finishes."""
        finish = now + self.job_seconds
        self.jobs.setdefault((name, account), []).append((finish, int(from_epoch)))
        return finish


@dataclass
class Collection:
    """Items owned by accounts: contiguous per account, time-sorted inside each account."""

    name: str
    kind: int
    offsets: np.ndarray  # int64, len accounts + 1
    owner: np.ndarray  # int32 account index per item
    times: np.ndarray  # int32 seconds before --now... stored as epoch offset from base (see Dataset)
    order: np.ndarray | None = None  # global time order (only for lists without account_id)
    sorted_times: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.owner)


def _build_collection(rng, name, kind, counts, span, with_global) -> Collection:
    counts = counts.astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    rel = rng.integers(0, span, size=total, dtype=np.int64)  # seconds after (now - SPAN)
    rel = np.sort(owner.astype(np.int64) * (1 << 32) + rel) & ((1 << 32) - 1)
    times = rel.astype(np.int32)
    col = Collection(name, kind, offsets, owner, times)
    if with_global:
        col.order = np.argsort(times, kind="stable").astype(np.int32)
        col.sorted_times = times[col.order]
    return col


class Dataset:
    def __init__(self, seed: int, creators: int, now: int) -> None:
        self.seed, self.n, self.now = seed, creators, int(now)
        self.base = self.now - SPAN  # collection times are seconds after base
        self.codec = ids.IdCodec(seed)
        rng = np.random.default_rng(seed)
        n = creators
        # creators: invalid-data truth (exactly round(3%) each), contact kinds, phone format
        self.reason = np.zeros(n, dtype=np.int8)
        k = round(n * 0.03)
        perm = rng.permutation(n)
        for r in range(3):
            self.reason[perm[r * k : (r + 1) * k]] = r + 1
        self.contact = rng.choice(3, size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)
        self.national_phone = rng.random(n) < 0.2
        self.user_created = (self.now - rng.integers(400 * DAY, 1200 * DAY, size=n)).astype(np.int64)
        # accounts: 1-3 per creator on distinct platforms
        per = rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15])
        self.creator_acc = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per, out=self.creator_acc[1:])
        a = int(self.creator_acc[-1])
        self.acc_creator = np.repeat(np.arange(n, dtype=np.int32), per)
        weights = np.array([p[5] for p in PLATFORMS], dtype=float)
        keys = rng.random((n, len(PLATFORMS))) ** (1.0 / weights)  # weighted sampling w/o replacement
        ranked = np.argsort(-keys, axis=1)
        slot = np.arange(a) - self.creator_acc[self.acc_creator]
        self.acc_platform = ranked[self.acc_creator, slot].astype(np.int8)
        self.acc_status = rng.choice(3, size=a, p=[0.9, 0.05, 0.05]).astype(np.int8)
        sync_p = [0.85, 0.05, 0.0, 0.05, 0.05]
        self.identity_status = rng.choice(5, size=a, p=sync_p).astype(np.int8)
        self.engagement_status = rng.choice(5, size=a, p=sync_p).astype(np.int8)
        self.income_status = rng.choice(5, size=a, p=[0.85, 0.1, 0.0, 0.05, 0.0]).astype(np.int8)
        engagement = np.array([p[2] for p in PLATFORMS])[self.acc_platform]
        income = np.array([p[3] for p in PLATFORMS])[self.acc_platform]
        commerce = np.array([p[4] for p in PLATFORMS])[self.acc_platform]
        self.engagement_status[~engagement] = NOT_SUPPORTED
        self.income_status[~income] = NOT_SUPPORTED
        has_income = income & (self.income_status == SYNCED)

        def counts(lo, hi, mask):
            return np.where(mask, rng.integers(lo, hi + 1, size=a), 0)

        col = _build_collection
        self.collections = {
            "contents": col(rng, "contents", ids.CONTENT, counts(15, 40, engagement), SPAN, True),
            "content_groups": col(
                rng, "content_groups", ids.CONTENT_GROUP, counts(0, 3, engagement), SPAN, True
            ),
            "comments": col(rng, "comments", ids.COMMENT, counts(5, 30, engagement), SPAN, False),
            "social_transactions": col(
                rng, "social_transactions", ids.SOCIAL_TX, counts(5, 20, has_income), SPAN, False
            ),
            "social_payouts": col(
                rng, "social_payouts", ids.SOCIAL_PAYOUT, counts(1, 6, has_income), SPAN, False
            ),
            "commerce_transactions": col(
                rng, "commerce_transactions", ids.COMMERCE_TX, counts(5, 20, commerce), SPAN, False
            ),
            "commerce_payouts": col(
                rng, "commerce_payouts", ids.COMMERCE_PAYOUT, counts(1, 4, commerce), SPAN, False
            ),
            "commerce_balances": col(
                rng, "commerce_balances", ids.COMMERCE_BALANCE, counts(1, 4, commerce), SPAN, False
            ),
        }
        self._by_platform: dict[int, np.ndarray] = {}
        self.mutations: dict[int, tuple[int, int]] = {}  # creator -> (generation, updated epoch)
        self.account_overrides: dict[int, dict] = {}  # account -> {"status":..., "monitoring": {...}}
        # items that appeared after the data set was generated (InsightIQ synced them late), per collection:
        # (account, time relative to base, epoch it appeared); item index = len(collection) + position
        self.late: dict[str, list[tuple[int, int, int]]] = {}
        self.history = History()
        self.generated_accounts = self.accounts
        self.added: dict[int, int] = {}  # account added after generation (add_account) -> epoch it connected
        # whether a disconnected account's items are hidden (the `disconnected_data=hidden` reading)
        self.hide_disconnected: Callable[[], bool] = lambda: False

    # -- lookups -----------------------------------------------------------------------------------
    @property
    def accounts(self) -> int:
        return len(self.acc_creator)

    def accounts_of(self, creator: int) -> list[int]:
        """The creator's accounts: the generated ones (contiguous), then those added (add_account)."""
        generated = range(int(self.creator_acc[creator]), int(self.creator_acc[creator + 1]))
        return [*generated, *(a for a in self.added if int(self.acc_creator[a]) == creator)]

    def accounts_on_platform(self, platform: int) -> np.ndarray:
        if platform not in self._by_platform:
            self._by_platform[platform] = np.flatnonzero(self.acc_platform == platform)
        return self._by_platform[platform]

    def time_bounds(self, t_from: int | None, t_to: int | None) -> tuple[int, int]:
        """Epoch bounds (inclusive) -> collection-relative half-open bounds [lo, hi)."""
        lo = -(2**40) if t_from is None else t_from - self.base
        hi = 2**40 if t_to is None else t_to - self.base + 1
        return lo, hi

    def status(self, account: int) -> str:
        """The account's connection status as the API renders it."""
        default = ACCOUNT_STATUSES[int(self.acc_status[account])]
        return self.account_overrides.get(account, {}).get("status", default)

    def disconnected(self, account: int) -> bool:
        """Whether the account is disconnected (NOT_CONNECTED: by its user; SESSION_EXPIRED: by the
        platform)."""
        return self.status(account) in ACCOUNT_STATUSES[1:]

    def disconnected_accounts(self) -> list[int]:
        candidates = {int(a) for a in np.flatnonzero(self.acc_status != 0)} | set(self.account_overrides)
        return sorted(a for a in candidates if self.disconnected(a))

    def hidden(self, name: str, account: int | None = None, now: float | None = None) -> dict[int, int]:
        """account -> relative time before which its items of `name` are hidden (History; every item of a
        disconnected account while `hide_disconnected` says so)."""
        now = time.time() if now is None else now
        accounts = self.history.connected if account is None else [account]
        out = {}
        for a in accounts:
            bound = self.history.visible_from(name, a, now)
            if bound is not None:
                out[a] = bound - self.base
        if self.hide_disconnected():
            gone = self.disconnected_accounts() if account is None else [account]
            out.update((a, EVERYTHING) for a in gone if self.disconnected(a))
        return out

    def is_hidden(self, name: str, item: int) -> bool:
        account = self.owner(name, item)
        bound = self.hidden(name, account).get(account)
        return bound is not None and self.epoch(name, item) - self.base < bound

    def list_items(self, name, account, t_from, t_to, offset, limit) -> list[int]:
        hidden = self.hidden(name, account)
        if not hidden:
            return self._list_items(name, account, t_from, t_to, offset, limit)
        everything = self._list_items(name, account, t_from, t_to, 0, 2**40)
        kept = [
            i
            for i in everything
            if (a := self.owner(name, i)) not in hidden or self.epoch(name, i) - self.base >= hidden[a]
        ]
        return kept[offset : offset + limit]

    def _list_items(self, name, account, t_from, t_to, offset, limit) -> list[int]:
        col = self.collections[name]
        lo, hi = self.time_bounds(t_from, t_to)
        if account is None:
            first, times = 0, col.sorted_times
        elif account >= self.generated_accounts:  # an added account: all its items are late ones
            first, times = len(col), col.times[:0]
        else:
            first = int(col.offsets[account])
            times = col.times[first : int(col.offsets[account + 1])]
        i, j = (int(np.searchsorted(times, bound, "left")) for bound in (lo, hi))

        def generated(k: int) -> int:  # the k-th generated item inside the window
            return int(col.order[i + k]) if account is None else first + i + k

        late = self._late_in(name, account, lo, hi)
        if not late:
            return [generated(k) for k in range(offset, min(j - i, offset + limit))]
        # merged list = generated and late items by time; at equal times generated items first (ties go
        # by index, and late items have the highest indices)
        at = {
            int(np.searchsorted(times, rel, "right")) - i + rank: item
            for rank, (rel, item) in enumerate(late)
        }
        out = []
        for position in range(offset, min(offset + limit, j - i + len(late))):
            if position in at:
                out.append(at[position])
            else:
                out.append(generated(position - sum(1 for p in at if p < position)))
        return out

    def _late_in(self, name: str, account: int | None, lo: int, hi: int) -> list[tuple[int, int]]:
        """(relative time, item index) of the late items of `name` in [lo, hi) (of `account`), by time."""
        size = len(self.collections[name])
        return sorted(
            (rel, size + k)
            for k, (owner, rel, _) in enumerate(self.late.get(name, ()))
            if (account is None or owner == account) and lo <= rel < hi
        )

    def size(self, name: str) -> int:
        """Items of a collection, late ones included."""
        return len(self.collections[name]) + len(self.late.get(name, ()))

    def count(self, name: str, account: int) -> int:
        """Items of `account` in a collection, late ones included (hidden ones too)."""
        col = self.collections[name]
        generated = 0
        if account < self.generated_accounts:
            generated = int(col.offsets[account + 1] - col.offsets[account])
        return generated + sum(1 for owner, _, _ in self.late.get(name, ()) if owner == account)

    def _late(self, name: str, item: int) -> tuple[int, int, int] | None:
        k = item - len(self.collections[name])
        return self.late[name][k] if k >= 0 else None

    def owner(self, name: str, item: int) -> int:
        late = self._late(name, item)
        return int(self.collections[name].owner[item]) if late is None else late[0]

    def epoch(self, name: str, item: int) -> int:
        late = self._late(name, item)
        return self.base + int(self.collections[name].times[item] if late is None else late[1])

    def appeared(self, name: str, item: int) -> int | None:
        """When a late item appeared in the sandbox (epoch), None for generated items."""
        late = self._late(name, item)
        return None if late is None else late[2]

    def add_late(self, name: str, account: int, epoch: int, appeared: int) -> int:
        """A new item of `account` dated `epoch` that shows up only now; returns its index."""
        self.late.setdefault(name, []).append((int(account), int(epoch) - self.base, int(appeared)))
        return self.size(name) - 1

    # -- accounts added after generation ------------------------------------------------------------
    PER_ACCOUNT = ("acc_creator", "acc_platform", "acc_status", "identity_status", "engagement_status")

    def add_account(self, creator: int, platform: int, connected: int) -> int:
        """A brand-new CONNECTED account of `creator` on `platform`, connected at `connected` (epoch): its
        past is generated as a generated account's is (the same item counts per collection, dated over the
        400 days before --now) and kept as late items that appeared at the connection, so every list, the
        search and the item endpoint hold them; History hides what is older than the default window until
        fetch-historic jobs ask for it. Returns the account's index (the next one)."""
        a = self.accounts
        _, _, engagement, income, commerce, _ = PLATFORMS[platform]
        columns = (creator, platform, 0, SYNCED, SYNCED if engagement else NOT_SUPPORTED)
        for name, value in zip(self.PER_ACCOUNT, columns, strict=True):
            column = getattr(self, name)
            setattr(self, name, np.append(column, np.array([value], dtype=column.dtype)))
        self.income_status = np.append(self.income_status, np.int8(SYNCED if income else NOT_SUPPORTED))
        self._by_platform.pop(platform, None)
        rng = np.random.default_rng([self.seed, 0xACC, a])
        for name, (lo, hi, wanted) in {
            "contents": (15, 40, engagement),
            "content_groups": (0, 3, engagement),
            "comments": (5, 30, engagement),
            "social_transactions": (5, 20, income),
            "social_payouts": (1, 6, income),
            "commerce_transactions": (5, 20, commerce),
            "commerce_payouts": (1, 4, commerce),
            "commerce_balances": (1, 4, commerce),
        }.items():
            count = int(rng.integers(lo, hi + 1)) if wanted else 0
            for rel in np.sort(rng.integers(0, self.now - self.base, size=count)):
                self.add_late(name, a, self.base + int(rel), connected)
        self.added[a] = int(connected)
        self.history.connected[a] = int(connected)
        return a

    def drop_added(self) -> None:
        """Forget the added accounts (the sandbox's reset; their items go with the late ones)."""
        for name in (*self.PER_ACCOUNT, "income_status"):
            setattr(self, name, getattr(self, name)[: self.generated_accounts])
        self.added.clear()
        self._by_platform.clear()

    # -- invalid-data truth -------------------------------------------------------------------------
    def invalid_by_reason(self) -> dict[str, int]:
        from devtools.sandbox.people import REASONS

        counts = np.bincount(self.reason, minlength=4)
        return {reason: int(counts[i + 1]) for i, reason in enumerate(REASONS)}
