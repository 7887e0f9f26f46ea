"""Op definitions: each op once, with its NumPy reference, shape/dtype rule and gradient."""
