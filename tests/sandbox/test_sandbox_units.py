"""Unit tests of the sandbox building blocks (no servers)."""

from __future__ import annotations

import re
from collections import Counter

import phonenumbers
import pytest

from creator_sync.pipeline.addresses import city_of
from devtools.sandbox import ids
from devtools.sandbox.data import Dataset
from devtools.sandbox.faults import FaultInjector
from devtools.sandbox.insider_validate import validate_user
from devtools.sandbox.iq_common import ApiError, parse_date
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.people import EMAIL_AND_PHONE, PHONE_ONLY
from devtools.sandbox.records import CITIES, Renderer

NOW = 1_768_478_400  # 2026-01-15T12:00:00Z


def test_fixed_window_is_epoch_aligned_and_counts_only_accepted():
    lim = FixedWindowLimiter("r", rate=3, window=1)
    assert [lim.acquire("c", now=10.1) for _ in range(3)] == [None, None, None]
    assert lim.acquire("c", now=10.9) == 1  # rejected; Retry-After at least 1
    assert lim.acquire("c", now=11.0) is None  # new window at floor(t/window)
    assert lim.acquire("other", now=10.5) is None  # per key
    assert lim.max_in_window == 3 and lim.windows_over_limit == 0 and lim.rejected == 1


def test_fixed_window_retry_after_counts_to_window_end():
    lim = FixedWindowLimiter("r", rate=1, window=60)
    assert lim.acquire("c", now=120.0) is None
    assert lim.acquire("c", now=125.5) == 55


def test_fractional_costs_for_quota():
    lim = FixedWindowLimiter("q", rate=5, window=60)
    assert lim.acquire("p", 2.5, now=1) is None and lim.acquire("p", 2.5, now=2) is None
    assert lim.acquire("p", 1, now=3) is not None
    assert lim.used("p", now=4) == 5


def test_faults_deterministic_per_seed():
    def run(seed):
        f = FaultInjector(seed, "insightiq", {"5xx": 0.2, "drop": 0.1, "malformed": 0.1})
        return [f.draw() for _ in range(200)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert {None, "5xx", "drop", "malformed"} == set(run(1))


def test_ids_roundtrip_and_reject_foreign_ids():
    codec = ids.IdCodec(7)
    for index in (0, 1, 12345, 2**40):
        text = codec.make(ids.CONTENT, index)
        assert codec.parse(text, ids.CONTENT) == index
        assert codec.parse(text, ids.PROFILE) is None
    assert ids.IdCodec(8).parse(codec.make(ids.USER, 5), ids.USER) is None
    assert codec.parse("not-a-uuid", ids.USER) is None


@pytest.fixture(scope="module")
def dataset():
    return Dataset(seed=11, creators=2000, now=NOW)


def test_dataset_is_deterministic(dataset):
    other = Dataset(seed=11, creators=2000, now=NOW)
    r1, r2 = Renderer(dataset), Renderer(other)
    assert r1.profile(17) == r2.profile(17)
    assert r1.item("contents", 999) == r2.item("contents", 999)
    assert Renderer(Dataset(seed=12, creators=2000, now=NOW)).profile(17) != r1.profile(17)


def test_invalid_creator_truth_matches_rendered_profiles(dataset):
    render = Renderer(dataset)
    counts = dataset.invalid_by_reason()
    assert counts == {"malformed_email": 60, "non_e164_phone": 60, "no_usable_identifier": 60}
    seen = {"valid": 0, "national": 0, "no_phone": 0, "no_email": 0}
    for c in range(dataset.n):
        p = render.person(c)
        reason = int(dataset.reason[c])
        email_ok = p["email"] is not None and "@" in p["email"] and "." in p["email"].split("@", 1)[1]
        phone_ok = False
        if p["phone"]:
            try:
                phone_ok = phonenumbers.is_valid_number(phonenumbers.parse(p["phone"], p["country"]))
            except phonenumbers.NumberParseException:
                phone_ok = False
        if reason == 0:
            assert email_ok or phone_ok, (c, p)
            seen["valid"] += 1
            seen["national"] += bool(p["phone"] and not p["phone"].startswith("+"))
            seen["no_phone"] += p["phone"] is None
            seen["no_email"] += p["email"] is None
            if p["phone"] and dataset.contact[c] in (EMAIL_AND_PHONE, PHONE_ONLY):
                assert phone_ok, p
        else:
            assert not email_ok and not phone_ok, (c, reason, p)
            if reason == 1:
                assert p["email"] and not p["phone"]
            elif reason == 2:
                assert p["phone"] and not p["email"]
            else:
                assert not p["email"] and not p["phone"]
    assert seen["national"] > 50 and seen["no_phone"] > 50 and seen["no_email"] > 50


def test_personal_fields_identical_across_a_creators_profiles(dataset):
    render = Renderer(dataset)
    multi = next(c for c in range(dataset.n) if len(dataset.accounts_of(c)) > 1)
    profiles = [render.profile(a) for a in dataset.accounts_of(multi)]
    keys = ("full_name", "first_name", "last_name", "emails", "phone_numbers", "country", "user")
    assert all({k: p[k] for k in keys} == {k: profiles[0][k] for k in keys} for p in profiles)


def test_some_profiles_carry_a_birth_date_and_a_home_address_in_the_specs_shapes(dataset):
    render = Renderer(dataset)
    firsts = [render.profile(int(dataset.creator_acc[c])) for c in range(dataset.n)]
    births = [p["date_of_birth"] for p in firsts if p["date_of_birth"]]
    addresses = [p["addresses"] for p in firsts if p["addresses"]]
    assert 0.3 < len(births) / dataset.n < 0.4 and 0.2 < len(addresses) / dataset.n < 0.3
    us_form = [b for b in births if re.fullmatch(r"\d{2}/\d{2}/\d{4}", b)]
    iso_form = [b for b in births if re.fullmatch(r"\d{4}-\d{2}-\d{2}", b)]
    assert len(us_form) + len(iso_form) == len(births) and us_form and iso_form
    read = Counter()
    for p in firsts:
        for entry in p["addresses"]:
            assert entry["type"] == "HOME" and entry.get("city", "") in ("", *CITIES[p["country"]])
            city = city_of(entry["address"])  # the free-text rule never reads a wrong city from them
            assert city is None or city in CITIES[p["country"]], entry
            read["city key" if "city" in entry else "text with a city" if city else "text without"] += 1
    assert min(read.values()) >= 10 and len(read) == 3, read  # every reading is exercised
    multi = next(c for c in range(dataset.n) if len(dataset.accounts_of(c)) > 1)
    same = {
        (render.profile(a)["date_of_birth"], str(render.profile(a)["addresses"]))
        for a in dataset.accounts_of(multi)
    }
    assert len(same) == 1  # personal data: the same on each of a creator's profiles


def test_contents_spread_over_400_days_and_hour_windows(dataset):
    times = dataset.collections["contents"].sorted_times.astype("int64") + dataset.base
    assert times.min() >= NOW - 400 * 86400 and times.max() <= NOW
    hour = dataset.list_items("contents", None, NOW - 3600, NOW, 0, 100)
    assert 0 < len(hour) < 60


def test_late_items_merge_into_dated_lists_by_time_and_page_consistently():
    ds = Dataset(seed=11, creators=200, now=NOW)  # its own data set: late items are state
    render = Renderer(ds)
    day = (NOW - 30 * 86400, NOW - 86400 - 1)  # inclusive bounds, as parse_date gives them

    def listed(account, window, limit=7):
        out, offset = [], 0
        while page := ds.list_items("contents", account, *window, offset, limit):
            out += page
            offset += limit
        return out

    owners = [ds.owner("contents", i) for i in listed(None, day)]
    account = max(set(owners), key=owners.count)  # an account with several items in the window
    before_all, before_account = listed(None, day), listed(account, day)
    tie = ds.epoch("contents", before_account[1])  # same second as a generated item: listed after it
    late = [
        ds.add_late("contents", account, tie, NOW),
        ds.add_late("contents", account, day[0] + 10, NOW),
        ds.add_late("contents", account, NOW - 40 * 86400, NOW),  # outside the window
    ]
    assert (
        late == [len(ds.collections["contents"]) + k for k in range(3)]
        and ds.size("contents") == late[-1] + 1
    )

    for account_filter, before in ((None, before_all), (account, before_account)):
        after = listed(account_filter, day)
        assert sorted(after) == sorted(before + late[:2])  # each once, whatever the page size
        times = [(ds.epoch("contents", i), i) for i in after]
        assert times == sorted(times)  # by time; at equal times by index (generated first)
        assert listed(account_filter, day, limit=100) == after
    item = render.item("contents", late[0])
    assert item["account"]["id"] == ds.codec.make(ids.ACCOUNT, account)
    assert item["published_at"] == render.item("contents", before_account[1])["published_at"]
    assert item["created_at"] == "2026-01-15T12:00:00.000000"  # when it appeared
    assert ds.list_items("contents", account, NOW - 40 * 86400, NOW - 40 * 86400, 0, 10) == [late[2]]


def test_parse_date_to_date_includes_whole_day():
    assert parse_date("to_date", "2026-01-15", end=True) == NOW + 12 * 3600 - 1
    assert parse_date("from_date", "2026-01-15", end=False) == NOW - 12 * 3600
    assert parse_date("from_date", "2026-01-15T12:00:00", end=False) == NOW
    with pytest.raises(ApiError):
        parse_date("from_date", "15/01/2026", end=False)


def test_validation_rfc3339_timestamps_use_own_key():
    errors: dict = {}
    validate_user(
        0, {"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "2021-01-10"}]}, errors
    )
    assert errors == {
        "users.0.events.0.timestamp.date_format(RFC3339)": [
            "timestamp must be an RFC 3339 date-time: 2021-01-10"
        ]
    }
