"""The pure engine: graph, collisions, score and planner on plain dataclasses, no database."""
