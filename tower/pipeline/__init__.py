"""The pipeline as the database holds it: ranked, checked for collisions and planned."""
