"""The finewebedu_lm workload family."""
