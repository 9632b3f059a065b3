"""Tower: the control tower of a testing pipeline."""
