"""The webhook path of a throw-away Airflow stack (devtools.airflow_stack.AirflowStack): the receiver the
API server mounts (include/creator_sync_webhooks_plugin.py) made reachable for the InsightIQ sandbox, and our
webhook registered there by the real ``insightiq_webhooks_setup`` DAG. Used by the e2e tests and benches."""

from __future__ import annotations

from creator_sync.webhooks.app import DEBOUNCE_ENV

SETUP_DAG = "insightiq_webhooks_setup"
PUBLIC_BASE_URL_ENV = "CREATOR_SYNC_PUBLIC_BASE_URL"


def enable_receiver(stack, debounce_s: float) -> None:
    """Before ``stack.start()``: InsightIQ webhooks go to this stack's API server (the receiver plugin),
    which coalesces them for ``debounce_s`` seconds before it triggers a targeted creator_sync run."""
    if stack.process is not None:
        raise RuntimeError("enable_receiver must be called before the stack starts (the API server reads it)")
    stack.env[PUBLIC_BASE_URL_ENV] = stack.url
    stack.env[DEBOUNCE_ENV] = f"{debounce_s:g}"


def register_webhook(api, timeout: float = 300) -> str:
    """Unpause and trigger ``insightiq_webhooks_setup`` (registers our receiver URL at InsightIQ); returns
    the run id once it succeeded. Triggered, not scheduled, so it also works with the job schedule off."""
    api.wait_for_dag(SETUP_DAG)
    api.unpause(SETUP_DAG)
    run_id = api.trigger(SETUP_DAG)
    state = api.wait_for_run(SETUP_DAG, run_id, timeout=timeout)
    if state != "success":
        raise RuntimeError(f"{SETUP_DAG} run {run_id} {state}: {api.task_states(SETUP_DAG, run_id)}")
    return run_id
