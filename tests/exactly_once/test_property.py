"""A stateful property test of the exactly-once sender against the Insider sandbox: hypothesis generates
the hard cases instead of sampling random fault rates.

Each machine holds a few creators (several items in the same second; some users Insider rejects), runs
attempts of two runs in generated order, each through a network whose plan loses answers after processing,
loses requests on their way, refuses them, or kills the task before or after Insider processed its request
(leases are left to expire), with the Profile API lagging behind the upserts; attempts of one run and of two
runs overlap; replays run in between. After every step nothing is at Insider twice, nothing of a rejected
user is stored, and every acknowledged ledger entry is at Insider. At the end each run completes, and
every valid event is at Insider exactly once, every rejected user is a dead letter, and each run's report
says it reconciles exactly when all of that is true.

Seeded and bounded for `make test`; `HYPOTHESIS_PROFILE=soak` (make soak) runs many more examples.
"""

from __future__ import annotations

import contextlib
import os
import threading

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from creator_sync.http.errors import VendorError
from creator_sync.pipeline.replay import replay_dead_letters
from creator_sync.pipeline.report import build_summary, run_send_totals
from creator_sync.pipeline.send import new_fence, send_users
from creator_sync.pipeline.transform import TransformStats
from creator_sync.store import FencedOut, StateStore

from .harness import Dying, Killed, Net, check_delivery, check_ledger, content_event, duplicates, hook, user

settings.register_profile(
    "ci",
    max_examples=12,
    stateful_step_count=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "soak", max_examples=300, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

SECONDS = ["2026-12-01T10:00:00Z", "2026-12-01T10:00:01Z"]
NETWORK = st.lists(
    st.sampled_from(["ok", "ok", "lost", "vanished", "refused", "kill_before", "kill_after"]), max_size=4
)


@st.composite
def creators(draw):
    """3-6 creators with 1-3 items each, items of one creator often in the same second. Run 1 sees the
    first items of each creator, run 2 all of them (a later run with look-back: cross-posts appear)."""
    n = draw(st.integers(3, 6))
    first, full = [], []
    for i in range(n):
        items = draw(st.integers(1, 3))
        events = [content_event(f"c{i}-{k}", draw(st.sampled_from(SECONDS))) for k in range(items)]
        seen = draw(st.integers(0, items))
        full.append(user(f"p{i}", events))
        first.append(user(f"p{i}", events[:seen]))
    return {"run-1": first, "run-2": full}


class SenderMachine(RuleBasedStateMachine):
    """One Insider (the sandbox), one state store, two runs of the same creators."""

    sandbox = None  # set by the test before the machine runs
    tmp = None

    @initialize(
        users=creators(),
        data=st.data(),
        lag=st.sampled_from([0.0, 0.0, 0.25]),
    )
    def setup(self, users, data, lag):
        self.tries = {"run-1": 0, "run-2": 0}
        self.by_run, self.users = users, users["run-2"]
        uuids = [u["identifiers"]["uuid"] for u in self.users]
        self.rejected = set(data.draw(st.lists(st.sampled_from(uuids), max_size=2, unique=True)))
        self.sandbox.reset("insider")
        self.sandbox.configure(
            "insider", {"reject_uuids": sorted(self.rejected), "ingestion_lag_seconds": lag}
        )
        SenderMachine.count = getattr(SenderMachine, "count", 0) + 1
        self.store = StateStore(f"sqlite:///{self.tmp / f'state-{SenderMachine.count}.db'}")
        from .harness import Insider

        self.insider = Insider(self.sandbox)
        self.ready = True

    fence = staticmethod(new_fence)

    def _attempt(self, run_id: str, plan: list[str], max_users: int) -> None:
        self.tries[run_id] += 1
        state = Dying(self.store)
        net = Net(list(plan), state=state)
        # the task may fail or die: Airflow retries it (a later rule)
        with contextlib.suppress(Killed, VendorError, FencedOut):
            send_users(
                self.by_run[run_id],
                state=state,
                hook=hook(net),
                run_id=run_id,
                max_users=max_users,
                fence=self.fence(run_id, self.tries[run_id]),
            )

    @rule(run=st.sampled_from(["run-1", "run-2"]), plan=NETWORK, max_users=st.integers(1, 4))
    def attempt(self, run, plan, max_users):
        self._attempt(run, plan, max_users)

    @rule(
        runs=st.sampled_from([("run-1", "run-1"), ("run-1", "run-2")]),
        plans=st.tuples(NETWORK, NETWORK),
        max_users=st.integers(1, 4),
    )
    def overlapping(self, runs, plans, max_users):
        """Two attempts at once: a zombie and its retry, or two runs of the same creators."""
        threads = [
            threading.Thread(target=self._attempt, args=(run, plan, max_users))
            for run, plan in zip(runs, plans, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

    @precondition(lambda self: bool(self.store.dead_letters(reasons=["vendor_rejected"])))
    @rule()
    def replay(self):
        net = Net()
        with contextlib.suppress(VendorError, FencedOut):
            replay_dead_letters(self.store, hook(net), run_id=f"replay-{len(self.store.dead_letters())}")

    @invariant()
    def nothing_twice_and_the_ledger_true(self):
        if not getattr(self, "ready", False):
            return
        assert duplicates(self.insider, self.users) == 0
        assert check_ledger(self.insider, self.store, self.users) == []
        stored = self.insider.events(sorted(self.rejected))
        assert all(sum(c.values()) == 0 for c in stored.values()), "a rejected user's events are stored"

    def teardown(self):
        if not getattr(self, "ready", False):
            return
        for run in ("run-1", "run-2"):
            self._attempt(run, [], 1000)  # the run's last retry: nothing goes wrong any more
        problems = check_delivery(self.insider, self.store, self.users, self.rejected)
        assert problems == [], problems
        for run in ("run-1", "run-2"):
            n = len(self.by_run[run])
            stats = TransformStats(fetched_creators=n, users_written=n)
            summary = build_summary(run, stats, run_send_totals(self.store, run, stats))
            assert summary.reconciled, summary.render()


def run_machine(machine, insider, tmp_path, profile) -> None:
    machine.sandbox, machine.tmp = insider.sandbox, tmp_path
    test = machine.TestCase
    test.settings = profile
    test().runTest()


@pytest.mark.slow
def test_the_sender_delivers_exactly_once_under_generated_histories(insider, tmp_path):
    run_machine(SenderMachine, insider, tmp_path, settings.get_profile(PROFILE))


class RunLevelClaims(SenderMachine):
    """Guard off: every attempt of a run shares one fencing token (claims cannot tell attempts apart)."""

    fence = staticmethod(lambda run_id, _try: f"{run_id}#shared")


@pytest.mark.slow
def test_control_without_fencing_the_search_finds_a_duplicate(insider, tmp_path):
    profile = settings(settings.get_profile("ci"), max_examples=40, phases=[Phase.explicit, Phase.generate])
    with pytest.raises((AssertionError, FlakyFailure)) as found:
        run_machine(RunLevelClaims, insider, tmp_path, profile)
    failures = found.value.exceptions if isinstance(found.value, FlakyFailure) else [found.value]
    assert any(isinstance(f, AssertionError) for f in failures)  # a timing-dependent duplicate is flaky
