"""One router per resource: health, the model, decisions, notices."""
