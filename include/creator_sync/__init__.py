"""creator-sync: Airflow hooks, operators and one HTTP core for InsightIQ -> Insider One."""
