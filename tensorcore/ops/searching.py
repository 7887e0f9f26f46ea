"""Placeholder: filled in by the Array API breadth work."""

__all__: list[str] = []
