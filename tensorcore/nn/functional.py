"""Neural-network functions (``tensorcore.nn.functional``). Placeholder, being filled in."""
