"""The release protocol: decisions on tests and the gates they pass.

Its use cases, one module per job: `edits` (register, edit, set the priority), `review`
(submit, approve, send back, reject), `runs` (launch, complete, record the result,
withdraw, cancel). They share `steps` (load, move, audit) and `notifications` (who
hears what), and return an `outcome.Outcome` or raise one of its errors.
"""
