"""Plain, independent implementations written straight from the papers' equations, for the harness."""
