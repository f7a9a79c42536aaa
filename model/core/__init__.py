"""The bottom layer: schema and coercion, the pipeline's construction, metrics, config and errors.

Nothing here imports another layer of `model/`.
"""
