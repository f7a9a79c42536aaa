"""Scoring: LoanModel, its compiled fast path, the one columnar decision path, reasons and explanations."""
