"""Issue 24, admin power in the demo: no Airflow connection holds an admin login (every task can read every
connection), and compose-init.sh never passes a password on a command line (visible in the process list)."""

from __future__ import annotations

import re
from pathlib import Path

from devtools import demo_run

REPO = Path(__file__).resolve().parents[1]
_HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?.*?\n(.*?)\n\1\n", re.DOTALL)
_PASSWORD_ARG = re.compile(r"--password\b|\$\{?\w*PASSWORD\w*\}?", re.IGNORECASE)


def command_line_passwords(script: str) -> list[str]:
    """Shell lines (outside here-documents, which a program reads from stdin) that put a password on a
    command line."""
    shell = _HEREDOC.sub("\n", script)
    lines = [line for line in shell.splitlines() if not line.lstrip().startswith("#")]
    return [
        line.strip()
        for line in lines
        if _PASSWORD_ARG.search(line) and not re.match(r"\s*(if|\[\[|elif)\b", line) and "-n " not in line
    ]


def test_compose_init_passes_no_password_on_a_command_line():
    assert command_line_passwords((REPO / "scripts" / "compose-init.sh").read_text()) == []


def test_the_check_finds_the_command_line_compose_init_used_to_run():
    old = (
        'if [[ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then\n'
        '  airflow users create --role Admin --username "${AIRFLOW_ADMIN_USERNAME:-admin}" \\\n'
        '    --password "$AIRFLOW_ADMIN_PASSWORD" --email admin@example.com\n'
        "fi\n"
    )
    assert command_line_passwords(old) == ['--password "$AIRFLOW_ADMIN_PASSWORD" --email admin@example.com']


def test_the_demo_stores_no_login_in_a_connection():
    script = (REPO / "scripts" / "demo.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "connections import --overwrite" not in code and '"password"' not in code
    assert "connections delete creator_sync_airflow_api" in code  # the one earlier demos left is removed


class FakeAPI:
    def __init__(self, fail: bool = False):
        self.notes: list[tuple[str, str, str]] = []
        self.fail = fail

    def set_note(self, dag_id, run_id, note):
        if self.fail:
            raise RuntimeError("HTTP 403 for admin:s3cret-password")
        self.notes.append((dag_id, run_id, note))


def test_the_demo_writes_the_run_note_from_its_own_process(capsys):
    api = FakeAPI()
    assert demo_run.write_note(api, "creator_sync", "manual__1", "Reconciliation holds")
    assert api.notes == [("creator_sync", "manual__1", "Reconciliation holds")]
    assert not demo_run.write_note(FakeAPI(fail=True), "creator_sync", "manual__1", "x")
    assert "s3cret" not in capsys.readouterr().out
