"""Adverse action notices: the bank's template, a notice's content for one decision, and its PDF.

Above the records (a notice is made from a decision on record and is itself recorded) and apart
from scoring: rendering a letter is not deciding.
"""
