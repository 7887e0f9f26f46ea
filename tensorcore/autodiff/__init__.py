"""Reverse-mode automatic differentiation: GradientTape, Variable, custom gradients."""
