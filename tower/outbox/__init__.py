"""The notification outbox: every message is a row written with the change that caused it."""
