"""The release protocol: decisions on tests and the gates they pass."""
