"""Slack adapter for Tower (filled in by the Slack bot issue)."""
