"""Checked scripts and their timelines: validation, pure planning, excerpts and the plan view."""
