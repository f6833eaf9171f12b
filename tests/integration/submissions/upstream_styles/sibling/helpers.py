"""A sibling module the submission imports relatively; reads the data file next to it."""

import json
import os


def learning_rate() -> float:
    with open(os.path.join(os.path.dirname(__file__), "schedule.json")) as f:
        return float(json.load(f)["learning_rate"])
