"""Submissions: baselines and a template."""
