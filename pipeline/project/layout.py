"""The files a project writes into its output folder, and the track ids they reserve."""

from __future__ import annotations

CATALOG_NAME = "catalog.json"
"""The catalog ``build`` writes into the output folder."""
LOCK_NAME = ".meditate-build.lock"
"""The lock a build holds on its output folder."""
PROJECT_FILES = (CATALOG_NAME, LOCK_NAME)
"""Files of the project's own in an output folder (temporaries are hidden: ``.<name>...``)."""
WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul", *(f"{port}{n}" for port in ("com", "lpt") for n in range(1, 10))]
)
"""Names Windows gives to devices: ``nul.mp3`` cannot be a file there."""


def reserved_id(track_id: str) -> str:
    """Why a track id cannot be used ('' if it can): its files, ``<id>.<suffix>``, would
    overwrite one of the project's own (compared without case, as some stores do).
    """
    for name in PROJECT_FILES:
        if name.lower().startswith(f"{track_id.lower()}."):
            return f"the build writes its own {name} into the output folder"
    if track_id.lower() in WINDOWS_DEVICES:
        return f"Windows cannot store files named {track_id}.<format> (a device name)"
    return ""
