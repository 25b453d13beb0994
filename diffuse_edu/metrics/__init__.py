"""Metrics: quality numbers a learner can trust, each reported next to its noise floor."""
