"""runbook: step-by-step repair of broken AWS deployments, until really healthy."""

__version__ = "0.1.0"
