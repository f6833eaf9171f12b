"""The librispeech workload family."""
