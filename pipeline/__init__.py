"""The only package that knows about Ray: configuration, the Ray Data graph, storage helpers, run summary."""
