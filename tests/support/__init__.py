"""The suite's one home for what tests share: paths, databases, people, factories, the
`tower` command, the brute-force reference and the Slack fakes. Test modules import from
here, never from one another (tests/architecture/test_test_layout.py)."""
