"""Training: the built-in data, fitting and checking a pipeline, and the workflows above the registry."""
