"""The audit log: who did what to which test, when, why, and what it looked like before."""
