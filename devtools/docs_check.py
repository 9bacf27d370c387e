"""Check that README.md and docs/*.md name only things that exist (run by `make lint`).

    python -m devtools.docs_check [FILE.md ...]

- settings: every ``CREATOR_SYNC_*`` name is a setting of creator_sync.settings or a variable the deployment
  and dev files read (docker-compose.yaml, .env.example, Dockerfile, scripts/, devtools/, tests/);
- make targets: every ``make <target>`` is a target of the Makefile;
- paths: every repository path in backticks or in a relative link exists (globs must match something);
- DAG ids: every "`<id>` DAG" / "DAG `<id>`" is the dag_id of a DAG file;
- tense: no "previously", "now ...", "as before" history wording (the docs describe the present).
Exit 1 with one line per problem.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DEPLOYMENT_FILES = [
    REPO / "docker-compose.yaml",
    REPO / ".env.example",
    REPO / "Dockerfile",
    *sorted((REPO / "scripts").glob("*.sh")),
    *sorted((REPO / "devtools").rglob("*.py")),
    *sorted((REPO / "tests").rglob("*.py")),
]
TOP_DIRS = ("include/", "docs/", "devtools/", "scripts/", "config/", "dags/", "plugins/", "tests/", "deploy/")
TOP_FILES = ("constraints/",)
PATH_TOKEN = re.compile(r"`([A-Za-z0-9_.\-/*]+)`")
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")
MAKE = re.compile(r"(?:`|^\s*)make ([a-z][a-z-]*)\b")
VARIABLE = re.compile(r"\bCREATOR_SYNC_[A-Z0-9_]*[A-Z0-9]\b")
DAG_MENTION = re.compile(r"`([a-z][a-z0-9_]+)` DAG\b|\bDAG `([a-z][a-z0-9_]+)`")
HISTORY = re.compile(
    r"\b(previously|used to be|as before|no longer|is now|are now|now (uses|runs|has|is|re-reads))\b"
    r"|\bprevious =|\| previous \|",
    re.I,
)


def settings_names() -> set[str]:
    sys.path.insert(0, str(REPO / "include"))
    from creator_sync.settings import Settings

    return {Settings.env_name(name) for name in Settings.model_fields}


def deployment_variables() -> set[str]:
    found: set[str] = set()
    for path in DEPLOYMENT_FILES:
        found |= set(VARIABLE.findall(path.read_text()))
    return found


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def dag_ids() -> set[str]:
    ids = set()
    for path in (REPO / "dags").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "dag_id" and isinstance(keyword.value, ast.Constant):
                        ids.add(keyword.value.value)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for deco in node.decorator_list:
                    name = ast.unparse(deco.func if isinstance(deco, ast.Call) else deco)
                    explicit = isinstance(deco, ast.Call) and any(k.arg == "dag_id" for k in deco.keywords)
                    if name in ("dag", "DAG") and not explicit:
                        ids.add(node.name)
    return ids


def _is_repo_path(token: str) -> bool:
    return token.startswith(TOP_DIRS + TOP_FILES) and "<" not in token and "..." not in token


def _exists(token: str, base: Path) -> bool:
    token = token.rstrip("/").split("::")[0]
    if any(ch in token for ch in "*?["):
        return any(base.glob(token))
    return (base / token).exists()


def problems(paths: list[Path] | None = None) -> list[str]:
    known_variables = settings_names() | deployment_variables()
    targets = make_targets()
    dags = dag_ids()
    found = []
    for path in paths or DOCS:
        name = path.relative_to(REPO).as_posix()
        in_code_block = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code_block = not in_code_block
            where = f"{name}:{number}"
            for variable in VARIABLE.findall(line):
                if variable not in known_variables:
                    found.append(f"{where}: {variable} is neither a setting nor read by the deployment")
            for target in MAKE.findall(line):
                if target not in targets:
                    found.append(f"{where}: `make {target}`: the Makefile has no target {target!r}")
            for token in PATH_TOKEN.findall(line):
                if _is_repo_path(token) and not _exists(token, REPO):
                    found.append(f"{where}: {token} does not exist")
            for link in LINK.findall(line):
                if not _exists(link, path.parent):
                    found.append(f"{where}: link {link} does not exist")
            for match in DAG_MENTION.finditer(line):
                dag_id = match.group(1) or match.group(2)
                if dag_id not in dags:
                    found.append(f"{where}: DAG {dag_id!r} is not the dag_id of a file in dags/")
            if not in_code_block and (history := HISTORY.search(line)):
                found.append(f"{where}: {history.group(0)!r}: describe the present, not a change")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    found = problems([Path(a).resolve() for a in args] or None)
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
