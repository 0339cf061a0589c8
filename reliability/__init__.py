"""Reliability checks run against a real server: hostile inputs (``python -m reliability.hostile``),
overload (``python -m reliability.overload``) and a soak (``python -m reliability.soak``)."""
