"""Finding the scripts in the files and folders a user names."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.project.assets import CATALOG_FILE
from pipeline.project.config import CONFIG_NAME
from pipeline.script.parse import is_partial

SCRIPT_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Skipped:
    """A file or folder met in a folder of scripts and not read as a script."""

    path: Path
    """As found (under the folder given)."""
    reason: str
    """Why, and what to do to have it checked."""


def find_scripts(paths: Iterable[Path]) -> list[Path]:
    """Script files in the given files and folders (see ``collect_scripts``)."""
    return collect_scripts(paths)[0]


def collect_scripts(
    paths: Iterable[Path], known: Iterable[Path | None] = ()
) -> tuple[list[Path], list[Skipped]]:
    """Script files in the given files and folders, and what the folders held that was skipped.

    Inside folders, partials are not scripts, and the project config, asset catalogs, hidden
    files and folders, virtual environments (whose packages hold YAML files) and symbolic
    links to folders (not followed) are skipped; those are listed, except the ``known`` files
    (the project's own config and catalog).
    """
    found: list[Path] = []
    skipped: list[Skipped] = []
    expected = {path.resolve() for path in known if path is not None}
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        in_folder: list[Path] = []
        for folder, subfolders, files in os.walk(path):
            kept = []
            for name in sorted(subfolders):
                reason = _skipped_folder(Path(folder, name))
                if reason:
                    skipped.append(Skipped(Path(folder, name), reason))
                else:
                    kept.append(name)
            subfolders[:] = kept
            for name in files:
                candidate = Path(folder, name)
                if candidate.suffix not in SCRIPT_SUFFIXES or is_partial(
                    candidate.relative_to(path)
                ):
                    continue
                reason = _skipped_file(name)
                if not reason:
                    in_folder.append(candidate)
                elif candidate.resolve() not in expected:
                    skipped.append(Skipped(candidate, reason))
        found += sorted(in_folder)
    skipped.sort(key=lambda item: str(item.path))
    return list(dict.fromkeys(found)), skipped


def _skipped_folder(folder: Path) -> str:
    """Why a subfolder is not searched for scripts ('' if it is)."""
    if folder.name.startswith("."):
        return "a hidden folder (give it as a path to check it)"
    if folder.is_symlink():
        return "a symbolic link to a folder: not followed (give it as a path to check it)"
    if (folder / "pyvenv.cfg").exists():
        return "a virtual environment"
    return ""


def _skipped_file(name: str) -> str:
    """Why a YAML file in a folder is not read as a script ('' if it is)."""
    if name.startswith("."):
        return "a hidden file (give it as a path to check it)"
    if name == CONFIG_NAME:
        return "a project config's name: not read as a script (rename it if it is one)"
    if name == CATALOG_FILE:
        return "an asset catalog's name: not read as a script (rename it if it is one)"
    return ""
