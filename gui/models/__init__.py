"""Qt item models over the core's dataclasses: images, inspect JSON, history, containers."""
