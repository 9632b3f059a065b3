"""The worker: the one process that runs Tower's scheduled jobs."""
