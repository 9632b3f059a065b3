"""A scripted walk through Tower's protocol on the demo portfolio."""
