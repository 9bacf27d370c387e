"""creator-sync benchmarks (`make bench`, `make bench QUICK=1`): see docs/performance.md.

Modules: `results` (pure: targets, bound, flat JSON, table), `fetch` (InsightIQ paging: our hooks vs the
HttpHook baseline), `upsert`, `local` (transform, DAG parse, sandbox start), `e2e` (a real Airflow run),
`cli` (orchestration; `python -m devtools.bench [--quick]`).
"""
