"""`tower product-bench`: the product's real paths (Slack through `tower serve`'s HTTP
endpoint, CLI commands as fresh processes) measured on the engine bench's synthetic
organisation. It lives in the Slack adapter because it signs Slack requests; `runner.py`
says what it does, `report.py` what it reports."""
