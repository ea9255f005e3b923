"""Layerdeck's desktop app: PySide6 widgets over the core Backend and its models."""
