"""A project: its settings and their precedence, config file, assets, layout and new scripts."""
