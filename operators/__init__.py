"""Plain-Python operators: each is a function or callable class on a batch of NumPy/Arrow columns."""
