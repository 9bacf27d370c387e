"""Insider One unification hook: Upsert (batched by users and bytes), User Profile, Delete Attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.base import VendorHook
from creator_sync.http.client import VendorClient
from creator_sync.http.errors import VendorNotFoundError
from creator_sync.http.limiter import build_limiter
from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL

DEFAULT_HOST = "https://unification.useinsider.com"
UPSERT_PATH = "/api/user/v1/upsert"
PROFILE_PATH = "/api/user/v1/profile"
DELETE_ATTRIBUTES_PATH = "/api/user/v1/attribute/delete"
MAX_USERS_PER_REQUEST = 1_000
MAX_REQUEST_BYTES = 5_000_000
DEFAULT_PROFILE_COST_ESTIMATE = 5.0

_USER_KEY = re.compile(r"^users\.(\d+)(?:\.|$)")


def encode_json(value: Any) -> bytes:
    """The exact bytes the hook sends for ``value`` (compact, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class UpsertBatch:
    """One planned Upsert request, or (``rejected``) one user that cannot be sent at all.

    ``indices`` are the users' positions in the input stream; ``encoded`` their serialized bytes.
    """

    users: list[dict[str, Any]]
    indices: list[int]
    encoded: list[bytes] = field(repr=False)
    size_bytes: int
    rejected: bool = False
    reason: str | None = None

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class BatchResult:
    """Per-user outcome of one Upsert request (parsed from the 200 body)."""

    sent: int
    failed: dict[int, list[str]]  # batch-local index -> vendor messages
    unattributed_errors: dict[str, list[str]]  # error keys not naming a user (users.N...)
    fail_count: int | None  # data.fail.count as reported
    response: Any = field(repr=False, default=None)

    @property
    def accepted(self) -> int:
        return self.sent - len(self.failed)

    @property
    def accepted_indices(self) -> list[int]:
        return [i for i in range(self.sent) if i not in self.failed]


@dataclass
class ProfileResult:
    found: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)
    quota: dict[str, Any] | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "attributes": self.attributes,
            "events": self.events,
            "quota": self.quota,
            "message": self.message,
        }


def _envelope(skip_hook: bool, error_callback_endpoint: str | None) -> tuple[bytes, bytes]:
    head: dict[str, Any] = {"skip_hook": bool(skip_hook)}
    if error_callback_endpoint:
        head["error_callback_endpoint"] = error_callback_endpoint
    prefix = encode_json(head)[:-1] + b',"users":['
    return prefix, b"]}"


def build_upsert_body(
    encoded_users: Sequence[bytes], *, skip_hook: bool, error_callback_endpoint: str | None = None
) -> bytes:
    prefix, suffix = _envelope(skip_hook, error_callback_endpoint)
    return prefix + b",".join(encoded_users) + suffix


def parse_upsert_errors(body: Any, n_users: int) -> BatchResult:
    data = body.get("data", body) if isinstance(body, dict) else {}
    fail = (data or {}).get("fail") or {}
    errors = fail.get("errors") or {}
    failed: dict[int, list[str]] = {}
    unattributed: dict[str, list[str]] = {}
    for key, messages in errors.items():
        msgs = [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
        match = _USER_KEY.match(str(key))
        if match and int(match.group(1)) < n_users:
            failed.setdefault(int(match.group(1)), []).extend(f"{key}: {m}" for m in msgs)
        else:
            unattributed[str(key)] = msgs
    count = fail.get("count")
    return BatchResult(
        sent=n_users,
        failed=failed,
        unattributed_errors=unattributed,
        fail_count=int(count) if isinstance(count, int | float) else None,
        response=body,
    )


class InsiderHook(VendorHook):
    """Insider One unification API (login = partner name, password = request token)."""

    conn_name_attr = "insider_conn_id"
    default_conn_name = "insider_default"
    conn_type = "insider"
    hook_name = "Insider One"
    vendor = "Insider"
    pool = INSIDER_UPSERT_POOL

    def __init__(self, conn_id: str | None = None, *, profile_cost_estimate: float | None = None, **kwargs):
        super().__init__(conn_id, **kwargs)
        self.profile_cost_estimate = profile_cost_estimate or DEFAULT_PROFILE_COST_ESTIMATE

    @property
    def insider_conn_id(self) -> str:
        return self.conn_id

    def _build_client(self, conn) -> VendorClient:
        partner = (conn.login or "").strip().lower()
        if not partner:
            raise CreatorSyncConfigError(f"connection '{self.conn_id}' needs login = Insider partner name")
        return VendorClient(
            vendor=self.vendor,
            base_url=conn.host or DEFAULT_HOST,
            conn_id=self.conn_id,
            headers={"X-PARTNER-NAME": partner, "X-REQUEST-TOKEN": conn.password or ""},
            secrets=[conn.password],
            limiters=self._limiters
            or {
                INSIDER_UPSERT_POOL: build_limiter(INSIDER_UPSERT_POOL),
                INSIDER_PROFILE_POOL: build_limiter(INSIDER_PROFILE_POOL),
            },
            **self._client_kwargs(),
        )

    def _probe(self) -> str:
        result = self.get_profile(identifiers={"uuid": "creator-sync-connection-test"}, attributes=["uuid"])
        return f"Connected to Insider at {self.client.base_url} (credentials accepted; found={result.found})"

    # -- upsert --------------------------------------------------------------------------------------------

    def plan_batches(
        self,
        users: Iterable[Mapping[str, Any]],
        *,
        skip_hook: bool = False,
        error_callback_endpoint: str | None = None,
        max_users: int = MAX_USERS_PER_REQUEST,
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> Iterator[UpsertBatch]:
        """Pack users into requests of <= ``max_users`` users and <= ``max_bytes`` body bytes.

        Each user is serialized once. A user whose request would be too large even alone is yielded
        as a ``rejected`` batch (not sent, not raised). Streams: holds one batch in memory.
        """
        del skip_hook  # planned with the longer literal (false): the bound holds for either value
        prefix, suffix = _envelope(False, error_callback_endpoint)
        overhead = len(prefix) + len(suffix)
        cur_users: list[dict[str, Any]] = []
        cur_idx: list[int] = []
        cur_enc: list[bytes] = []
        cur_size = overhead

        def flush() -> UpsertBatch:
            return UpsertBatch(list(cur_users), list(cur_idx), list(cur_enc), cur_size)

        for index, user in enumerate(users):
            enc = encode_json(user)
            alone = overhead + len(enc)
            if alone > max_bytes:
                yield UpsertBatch(
                    [dict(user)],
                    [index],
                    [enc],
                    alone,
                    rejected=True,
                    reason=(
                        f"user #{index} serializes to {len(enc):,} bytes; a request carrying only this "
                        f"user would be {alone:,} bytes, over Insider's {max_bytes:,}-byte request limit. "
                        "Not sent."
                    ),
                )
                continue
            added = len(enc) + (1 if cur_enc else 0)
            if cur_enc and (len(cur_enc) >= max_users or cur_size + added > max_bytes):
                yield flush()
                cur_users, cur_idx, cur_enc, cur_size = [], [], [], overhead
                added = len(enc)
            cur_users.append(dict(user))
            cur_idx.append(index)
            cur_enc.append(enc)
            cur_size += added
        if cur_enc:
            yield flush()

    def upsert_batch(
        self,
        users: UpsertBatch | Sequence[Mapping[str, Any]],
        *,
        skip_hook: bool = False,
        error_callback_endpoint: str | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> BatchResult:
        """Send one Upsert request; per-user failures come from the 200 body's ``fail.errors``.
        ``before_attempt`` runs before each attempt goes out (see RequestOptions)."""
        if isinstance(users, UpsertBatch):
            if users.rejected:
                raise CreatorSyncConfigError(f"refusing to send a locally rejected user: {users.reason}")
            encoded = users.encoded
        else:
            encoded = [encode_json(u) for u in users]
        if not encoded:
            raise CreatorSyncConfigError("upsert_batch needs at least one user")
        if len(encoded) > MAX_USERS_PER_REQUEST:
            raise CreatorSyncConfigError(
                f"{len(encoded)} users in one upsert; the limit is {MAX_USERS_PER_REQUEST} (use plan_batches)"
            )
        body = build_upsert_body(
            encoded, skip_hook=skip_hook, error_callback_endpoint=error_callback_endpoint
        )
        if len(body) > MAX_REQUEST_BYTES:
            raise CreatorSyncConfigError(
                f"upsert body is {len(body):,} bytes; the limit is {MAX_REQUEST_BYTES:,} (use plan_batches)"
            )
        # Events append at Insider: a request that may have arrived (timeout, dropped connection, 5xx) is
        # not resent blindly; the one sender (creator_sync.pipeline.send, used by InsiderUpsertOperator)
        # checks what arrived (in-flight batches).
        response = self.client.request(
            "POST",
            UPSERT_PATH,
            content=body,
            limiter=INSIDER_UPSERT_POOL,
            idempotent=False,
            before_attempt=before_attempt,
        )
        return parse_upsert_errors(response.data, len(encoded))

    # -- delete attributes (shares the upsert budget) ------------------------------------------------------

    def delete_attributes(self, users: Sequence[Mapping[str, Any]]) -> Any:
        """Delete User Attribute API: each user has identifiers/insider_id and whole/partial/custom."""
        if not users:
            raise CreatorSyncConfigError("delete_attributes needs at least one user")
        if len(users) > MAX_USERS_PER_REQUEST:
            raise CreatorSyncConfigError(
                f"{len(users)} users; the limit is {MAX_USERS_PER_REQUEST} per request"
            )
        body = {"users": [dict(u) for u in users]}
        # Not re-sent after a lost answer: an upsert landing in between would lose its new values.
        return self.client.request(
            "POST", DELETE_ATTRIBUTES_PATH, json_body=body, limiter=INSIDER_UPSERT_POOL, idempotent=False
        ).data

    # -- user profile (quota units) ------------------------------------------------------------------------

    def get_profile(
        self,
        identifiers: Mapping[str, Any] | None = None,
        insider_id: str | None = None,
        attributes: Sequence[str] | None = ("email", "name", "surname"),
        events: Mapping[str, Any] | None = None,
        quota: bool = True,
        before_attempt: Callable[[], None] | None = None,
    ) -> ProfileResult:
        """One user's attributes/events. 404 "no such user" -> ``ProfileResult(found=False)``.

        The profile limiter spends quota units: the estimate (last seen cost) is reserved before the
        call and corrected with ``quota.cost`` from the response. ``before_attempt``: see RequestOptions.
        """
        if not identifiers and not insider_id:
            raise CreatorSyncConfigError("get_profile needs identifiers or insider_id")
        if not attributes and not events:
            raise CreatorSyncConfigError("get_profile needs attributes and/or events")
        body: dict[str, Any] = {}
        if identifiers:
            body["identifiers"] = dict(identifiers)
        if insider_id:
            body["insider_id"] = insider_id
        if attributes:
            body["attributes"] = list(attributes)
        if events:
            body["events"] = dict(events)
        if quota:
            body["quota"] = True

        def cost_of(data: Any) -> float | None:
            cost = data["quota"]["cost"]
            self.profile_cost_estimate = max(float(cost), 0.1)
            return float(cost)

        try:
            response = self.client.request(
                "POST",
                PROFILE_PATH,
                json_body=body,
                limiter=INSIDER_PROFILE_POOL,
                cost=self.profile_cost_estimate,
                actual_cost=cost_of if quota else None,
                before_attempt=before_attempt,
            )
        except VendorNotFoundError as exc:
            if "no such user" in (exc.vendor_message or "").lower():
                return ProfileResult(found=False, message=f"no such user: {exc.vendor_message}")
            raise
        data = response.data if isinstance(response.data, dict) else {}
        return ProfileResult(
            found=True,
            attributes=data.get("attributes") or {},
            events=data.get("events") or {},
            quota=data.get("quota"),
        )
