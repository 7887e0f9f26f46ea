"""The Array API linear algebra extension (``tc.linalg``). Placeholder, being filled in."""
