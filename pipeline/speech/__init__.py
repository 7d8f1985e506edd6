"""Spoken clips: their cache keys, the speech cache, conditioning, lengths and synthesis."""
