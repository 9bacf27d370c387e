"""Logic of the manual / follow-up DAGs: the Insider profile audit, web push and InsightIQ onboarding."""
