"""Requests that may arrive twice, answered once (a retried or re-sent form submission)."""
