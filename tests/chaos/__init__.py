"""Tower's chaos suite: what a control-tower manager would see go wrong, counted.

`make chaos` (`python -m tests.chaos --budget SECONDS`) runs each part on a fresh SQLite
database and, when a server answers, a fresh PostgreSQL one; it prints one JSON summary, a
line per part, and exits 1 when any count that must be zero is not. The parts:

- `worker_kills`: a real `tower worker` delivering through a Slack that fails 30% of calls
  every way Slack fails, SIGKILLed and restarted again and again while writers change
  tests, then sweeps at later business times: notifications queued, delivered, lost,
  duplicated (by dedupe key, or by text in one channel) and held for a person.
- `racing_dispatchers`: a worker's dispatch loop, two sweep loops and a writer at once on
  one database: rows sent twice, sweeps that crashed.
- `decisions`: two managers' `tower approve` and two `tower edit` of one version from
  processes released at one instant, five identical signed Approve clicks on a running
  `tower serve`: trials left with two decisions, events or announcements, a lost edit,
  an HTTP 5xx or a traceback.
- `security`: forged, stale, malformed and tampered signatures on `tower serve` (401,
  nothing done; one signed five minutes ago passes), and people acting beyond their role
  through the CLI (exit 1, nothing changed, audited `denied:<action>`).
- `fuzzing` (hypothesis, derandomized): roadmaps with cells and bytes changed, policies
  with values changed, signed Slack payloads of any shape: tracebacks, refusals that name
  no place, refusals that wrote, HTTP 5xx.
"""
