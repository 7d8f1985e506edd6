"""Commands over many scripts: render, incremental builds, outputs and catalog, speak, prune."""
