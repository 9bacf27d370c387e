"""What to clear (creator_sync.pipeline.clearing), the clear flag's schema check, the clear pass
(creator_sync.pipeline.clear) with a stub hook, and the report's clearing figures."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from creator_sync.http.errors import VendorServerError
from creator_sync.pipeline import clearing
from creator_sync.pipeline.clear import clear_file
from creator_sync.pipeline.mapping import MappingError, load_mapping, parse_mapping
from creator_sync.pipeline.report import build_summary
from creator_sync.pipeline.send import SendReport
from creator_sync.pipeline.transform import TransformStats
from creator_sync.reasons import CLEAR_FAILED
from creator_sync.settings import mapping_file

PLATFORMS = ("instagram", "youtube", "tiktok")
DOWN = VendorServerError(
    "Insider 500: down", vendor="Insider", method="POST", path="/api/user/v1/attribute/delete", status=500
)
NAMES = ("follower_count", "handle")
STATUSES = ("CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED")
TITLE = {"instagram": "Instagram", "youtube": "YouTube", "tiktok": "TikTok"}


def accounts(statuses: dict[str, str], uuid: str = "u1") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": f"{uuid}-{p}", "user.id": uuid, "work_platform.name": TITLE[p], "status": s}
            for p, s in statuses.items()
        ]
    )


def creators(platforms, uuid: str = "u1") -> pd.DataFrame:
    """A creator whose profiles give every per-platform attribute a value (a disconnected account's profile
    stays in the directory)."""
    row = {f"custom.{p}_{n}": f"{p}-{n}" for p in platforms for n in NAMES}
    row["custom.total_follower_count"] = 7
    return pd.DataFrame([row], index=pd.Index([uuid], name="uuid"))


def test_a_platform_lapses_only_when_none_of_its_accounts_is_connected():
    rows = pd.DataFrame(
        [
            {"user.id": "u1", "work_platform.name": "Instagram", "status": "CONNECTED"},
            {"user.id": "u1", "work_platform.name": "Instagram", "status": "NOT_CONNECTED"},
            {"user.id": "u1", "work_platform.name": "YouTube", "status": "SESSION_EXPIRED"},
            {"user.id": "u1", "work_platform.name": "TikTok", "status": None},  # unknown: no guess
            {"user.id": "u2", "work_platform.name": "YouTube", "status": "CONNECTED"},
        ]
    )
    lapsed = clearing.lapsed_platforms(rows)
    assert lapsed.to_dict("records") == [{"uuid": "u1", "platform": "youtube"}]


def test_split_leaves_the_cleared_attributes_out_and_lists_them():
    out, clears = clearing.split(
        creators(PLATFORMS), accounts({"instagram": "CONNECTED", "youtube": "NOT_CONNECTED"}), NAMES
    )
    assert clears.to_dict() == {"u1": ["youtube_follower_count", "youtube_handle"]}
    row = out.loc["u1"]
    assert row["custom.instagram_handle"] == "instagram-handle"  # connected: still sent
    assert pd.isna(row["custom.youtube_handle"]) and pd.isna(row["custom.youtube_follower_count"])
    assert row["custom.tiktok_handle"] == "tiktok-handle"  # no account on it in this run: not touched
    assert row["custom.total_follower_count"] == 7


def simulate(runs: list[dict[str, str]], names: tuple[str, ...]) -> set[str]:
    """Insider's per-platform attributes after each run's upsert (values the run sets) then its clears."""
    held: set[str] = set()
    for statuses in runs:
        out, clears = clearing.split(creators(statuses), accounts(statuses), names)
        row = out.loc["u1"]
        sets = {c.removeprefix("custom.") for c in out.columns if pd.notna(row[c])}
        held |= sets
        cleared = set(clears.get("u1", []))
        assert not cleared & sets  # a clear never races the run's own upsert of the same attribute
        held -= cleared
    return {a for a in held if a != "total_follower_count"}


@st.composite
def run_statuses(draw) -> list[dict[str, str]]:
    """A creator's accounts (one per platform, 1 to 3 platforms) and their statuses over 1 to 8 runs."""
    platforms = draw(st.lists(st.sampled_from(PLATFORMS), min_size=1, max_size=3, unique=True))
    statuses = st.tuples(*[st.sampled_from(STATUSES) for _ in platforms])
    return [
        dict(zip(platforms, run, strict=True)) for run in draw(st.lists(statuses, min_size=1, max_size=8))
    ]


# `make test` searches 50 sequences (each one is a pandas split per run, ~0.1 s); `make soak`
# (HYPOTHESIS_PROFILE=soak) searches 1,000. The explicit examples are the transitions a clearing bug shows on:
# a disconnect, an expired session, a reconnect, and three platforms in three states at once.
EXAMPLES = 1000 if os.environ.get("HYPOTHESIS_PROFILE") == "soak" else 50


@settings(max_examples=EXAMPLES, deadline=None)
@given(run_statuses())
@example([{"youtube": "CONNECTED"}, {"youtube": "NOT_CONNECTED"}])
@example([{"instagram": "CONNECTED"}, {"instagram": "SESSION_EXPIRED"}])
@example([{"tiktok": "CONNECTED"}, {"tiktok": "NOT_CONNECTED"}, {"tiktok": "CONNECTED"}])
@example(
    [
        {"instagram": "CONNECTED", "youtube": "CONNECTED", "tiktok": "CONNECTED"},
        {"instagram": "SESSION_EXPIRED", "youtube": "CONNECTED", "tiktok": "NOT_CONNECTED"},
    ]
)
def test_after_any_sequence_of_runs_insider_holds_the_connected_platforms_attributes_only(runs):
    connected = {p for p, status in runs[-1].items() if status == "CONNECTED"}
    assert simulate(runs, NAMES) == {f"{p}_{n}" for p in connected for n in NAMES}


def test_without_clearing_a_disconnected_platforms_attributes_stay():
    runs = [
        {"instagram": "CONNECTED", "youtube": "CONNECTED"},
        {"instagram": "CONNECTED", "youtube": "NOT_CONNECTED"},
    ]
    assert simulate(runs, NAMES) == {"instagram_follower_count", "instagram_handle"}
    assert simulate(runs, ()) == {f"{p}_{n}" for p in ("instagram", "youtube") for n in NAMES}  # stale stay


# --- the mapping's clear flag ---
def raw_mapping() -> dict:
    return yaml.safe_load(mapping_file().read_text())


def test_clear_is_on_for_per_platform_attributes_and_off_where_the_mapping_says_so():
    cleared = load_mapping().cleared(("engagement_rate",))
    assert {"follower_count", "handle", "engagement_count", "engagement_rate"} <= set(cleared)
    assert "connection_status" not in cleared  # clear: false
    assert "total_follower_count" not in cleared and "audience_top_countries" not in cleared  # not / opt-in


def test_clear_on_a_default_attribute_is_a_clear_error(tmp_path):
    raw = raw_mapping()
    raw["attributes"]["gender"]["clear"] = True
    path = tmp_path / "insider_mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    text = str(err.value)
    assert f"{path}:" in text and "attributes.gender.clear" in text
    assert "clear removes custom attributes only" in text


def test_platform_attributes_clear_false_keeps_the_contents_attributes():
    raw = raw_mapping()
    raw["platform_attributes"]["clear"] = False
    cleared = parse_mapping(raw).cleared(("engagement_rate",))
    assert "engagement_count" not in cleared and "engagement_rate" not in cleared
    assert "follower_count" in cleared


# --- the clear pass ---
class StubHook:
    def __init__(self, answers):
        self.answers, self.requests = list(answers), []

    def delete_attributes(self, users):
        self.requests.append([dict(u) for u in users])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class StubState:
    def __init__(self):
        self.letters = []

    def add_dead_letters(self, run_id, failures):
        self.letters += [(run_id, f) for f in failures]


def write_clears(path, n: int) -> None:
    path.write_text("".join(clearing.clear_line(f"u{i}", [f"youtube_a{i}", "youtube_b"]) for i in range(n)))


def test_the_clear_pass_batches_by_the_users_limit_and_keeps_failures_as_dead_letters(tmp_path):
    path = tmp_path / "clears.jsonl"
    write_clears(path, 5)
    ok = {"data": {"successful": {"count": 2}, "fail": {}}}
    one_failed = {"data": {"fail": {"count": 1, "errors": {"users.1.identifiers.exists": ["no such user"]}}}}
    hook, state = StubHook([ok, one_failed, DOWN]), StubState()
    report = clear_file(path, hook=hook, state=state, run_id="r1", max_users=2)
    assert [len(r) for r in hook.requests] == [2, 2, 1]
    assert hook.requests[0][0] == {
        "identifiers": {"uuid": "u0"},
        "custom": {"whole": ["youtube_a0", "youtube_b"]},
    }
    assert (report.users, report.attributes, report.requests) == (5, 10, 3)
    assert (report.users_cleared, report.attributes_cleared, report.users_failed) == (2 + 1, 6, 2)
    failed = {f["user_key"]: f for _, f in state.letters}
    assert set(failed) == {"u3", "u4"} and all(f["reason"] == CLEAR_FAILED for f in failed.values())
    assert "no such user" in failed["u3"]["detail"] and "down" in failed["u4"]["detail"]
    assert failed["u4"]["payload"]["custom"]["whole"] == ["youtube_a4", "youtube_b"]


def test_a_dry_run_clears_nothing_and_no_file_is_nothing_to_clear(tmp_path):
    path = tmp_path / "clears.jsonl"
    write_clears(path, 3)
    hook = StubHook([])
    report = clear_file(path, hook=hook, state=StubState(), run_id="r1", dry_run=True)
    assert hook.requests == [] and (report.users, report.users_cleared) == (3, 0)
    assert clear_file(None, hook=hook, state=StubState(), run_id="r1").users == 0
    assert clear_file(tmp_path / "absent.jsonl", hook=hook, state=StubState(), run_id="r1").users == 0


# --- the report ---
def summary(cleared: dict | None):
    stats = TransformStats(fetched_creators=2, users_written=2, clear_users=2, clear_attributes=4)
    return build_summary("r1", stats, SendReport(users_sent=2), cleared=cleared)


def test_the_report_counts_cleared_and_failed_clears_and_reconciles_them(tmp_path):
    path = tmp_path / "clears.jsonl"
    write_clears(path, 2)
    ok = {"data": {"successful": {"count": 1}, "fail": {}}}
    report = clear_file(path, hook=StubHook([ok, DOWN]), state=StubState(),
                        run_id="r1", max_users=1)  # fmt: skip
    good = summary(report.counters())
    assert good.reconciled and (good.users_cleared, good.attributes_cleared, good.clears_failed) == (1, 2, 1)
    assert "2 attribute(s) of 1 user(s) removed" in good.render() and "1 user(s) failed" in good.render()
    counters = {**report.counters(), "clear_users_failed": 0}  # a failed user neither cleared nor lettered
    gap = summary(counters)
    assert not gap.reconciled and "CLEARS DO NOT RECONCILE" in gap.render()
    assert json.dumps(gap.as_dict())  # the figures the state store keeps
