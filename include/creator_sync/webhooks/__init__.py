"""Webhook receiver (InsightIQ events, Insider One error callbacks) and webhook registration.

Modules use absolute imports only: Airflow's plugin loader also executes every file under plugins/ as a
top-level module named after the file.
"""
