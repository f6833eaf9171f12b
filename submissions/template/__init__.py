"""A copy-me submission: see README.md and submission.py."""
