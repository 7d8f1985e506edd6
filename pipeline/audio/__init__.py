"""Audio from a timeline: mixing, mastering, encoding with tags, and analysis."""
