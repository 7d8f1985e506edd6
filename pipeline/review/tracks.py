"""Which built tracks a review shows: each script's sidecar and audio, what changed since its
build, and the script line each sentence came from.

What changed is told by comparing the sidecar with what a build would make now: the same
build key is ``up to date`` (then its files are checked as ``meditate check`` does); another
script content (``source.sha256``) is ``script edited since the build``; the same script with
another key is ``settings changed since the build`` (the project config, an include, an asset,
the engine or the generator); a script that no longer validates keeps its last page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.build.keys import build_key
from pipeline.build.outputs import sha256_file
from pipeline.build.state import outputs_problem, read_sidecar, sidecars_in
from pipeline.core.errors import PipelineError
from pipeline.core.fileio import display_path
from pipeline.plan.validate import Checked, Report, validate_paths
from pipeline.project.config import Project, flags_layer

log = logging.getLogger(__name__)

UP_TO_DATE = "up to date"
SCRIPT_EDITED = "script edited since the build"
SETTINGS_CHANGED = "settings changed since the build"
SCRIPT_INVALID = "script has errors now"
OUTPUTS_CHANGED = "outputs changed since the build"
EXCERPT = "excerpt, rendered on save"
PLAYABLE = ("mp3", "m4a", "ogg", "opus", "flac", "wav")
"""Formats a browser plays, in the order the page prefers them."""
SEARCH_LINES = 80
"""How far below its step a sentence's own line is looked for."""


@dataclass(frozen=True)
class ScriptLine:
    """The line of the script a sentence starts on."""

    place: str
    """``path:line:col`` relative to the project root (the step's place when not found)."""
    text: str
    """That line, as the script has it now ('' when the file cannot be read)."""


@dataclass(frozen=True)
class Track:
    """A built track to review."""

    track_id: str
    """The script's id (the sidecar's name)."""
    source: Path
    """The script file."""
    sidecar: dict[str, Any]
    """The sidecar's data."""
    audio: Path
    """The built audio file the page plays."""
    audio_sha256: str
    """Its SHA-256, as the sidecar records it (the key of its cached levels)."""
    change: str
    """What changed since the build (one of the labels of this module)."""
    change_detail: str = ""
    """Why, in one line ('' when up to date)."""
    lines: tuple[ScriptLine, ...] = ()
    """The script line of each of the sidecar's sentences, in order."""
    note: str = ""
    """What the page cannot show and why ('' when it shows everything)."""


@dataclass(frozen=True)
class Skipped:
    """A script whose track cannot be reviewed."""

    source: Path
    """The script file."""
    reason: str
    """Why, and what to do (``never built: run meditate build ...``)."""


def find_tracks(
    paths: Iterable[Path], project: Project, flags: Mapping[str, object], tracks_dir: Path
) -> tuple[list[Track], list[Skipped]]:
    """The tracks of the scripts under ``paths`` built in ``tracks_dir``, in id order, and
    the scripts skipped (never built, corrupt sidecar, audio missing), in path order.
    """
    report = validate_paths(paths, project, flags=flags_layer(dict(flags)))
    found: list[Track] = []
    skipped: list[Skipped] = []
    for checked in report.checked:
        sidecar_path = tracks_dir / f"{checked.script.id}.json"
        if not sidecar_path.is_file():
            command = f"meditate build {display_path(checked.script.path)}"
            skipped.append(Skipped(checked.script.path, f"never built: run `{command}`"))
            continue
        track = _track(checked.script.id, checked.script.path, sidecar_path, project.root)
        if isinstance(track, Skipped):
            skipped.append(track)
        else:
            found.append(_with_change(track, checked, tracks_dir))
    valid = {checked.script.path.resolve() for checked in report.checked}
    invalid = [path for path in report.files if path.resolve() not in valid]
    if invalid:
        built = _sidecars_by_source(tracks_dir)
        for path in invalid:
            _invalid_script(path, report, project.root, built, found, skipped)
    found.sort(key=lambda track: track.track_id)
    skipped.sort(key=lambda item: str(item.source))
    return found, skipped


def _sidecars_by_source(tracks_dir: Path) -> dict[str, tuple[str, Path]]:
    """(track id, sidecar) by the script path each readable sidecar records."""
    found: dict[str, tuple[str, Path]] = {}
    for track_id, sidecar_path in sidecars_in(tracks_dir).items():
        data = read_sidecar(sidecar_path)
        source = data.get("source") if data is not None else None
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            found[source["path"]] = (track_id, sidecar_path)
    return found


def _invalid_script(
    path: Path,
    report: Report,
    root: Path,
    built: Mapping[str, tuple[str, Path]],
    found: list[Track],
    skipped: list[Skipped],
) -> None:
    """A script with errors: its last build, if any, is shown with its first error (in the
    script itself or in a file it includes)."""
    from pipeline.script.parse import is_partial

    if not path.exists():
        skipped.append(Skipped(path, "no such file or folder"))
        return
    if is_partial(path):
        skipped.append(Skipped(path, "a partial has no track; review a script that includes it"))
        return
    relative = _relative(path, root)
    errors = [
        problem
        for problem in report.errors
        if relative
        in {_relative(place.path, root) for place in (problem.place, *problem.place.included_from)}
    ]
    first = errors[0].format().splitlines()[0] if errors else "see `meditate validate`"
    if relative not in built:
        skipped.append(Skipped(path, f"has errors and was never built: {first}"))
        return
    track_id, sidecar_path = built[relative]
    track = _track(track_id, path, sidecar_path, root)
    if isinstance(track, Skipped):
        skipped.append(track)
    else:
        found.append(_changed(track, SCRIPT_INVALID, first))


def _track(track_id: str, source: Path, sidecar_path: Path, root: Path) -> Track | Skipped:
    """The track a sidecar describes, or why it cannot be shown."""
    name = display_path(sidecar_path)
    data = read_sidecar(sidecar_path)
    if data is None:
        return Skipped(source, f"{name}: corrupt sidecar (not JSON, or not this track's); "
                       "rebuild it with `meditate build --force`")  # fmt: skip
    note = ""
    if "sentences" not in data:
        data["sentences"] = []
        note = (
            "This build's sidecar lists no sentences (it was built before sidecars recorded "
            f"them): no transcript. `meditate build --force {display_path(source)}` adds them."
        )
    problem = sidecar_problem(data)
    if problem:
        return Skipped(source, f"{name}: corrupt sidecar: {problem}")
    entry = _playable(data["files"])
    if entry is None:
        return Skipped(source, f"{name}: no audio file a browser plays")
    audio = sidecar_path.parent / entry["path"]
    if not audio.is_file():
        return Skipped(source, f"{display_path(audio)}: missing; rebuild the track")
    lines = script_lines(data["sentences"], root)
    return Track(track_id, source, data, audio, entry["sha256"], UP_TO_DATE, "", lines, note)


def excerpt_track(
    track_id: str, source: Path, data: dict[str, Any], audio: Path, root: Path
) -> Track:
    """An excerpt ``watch`` rendered: ``data`` describes it as a sidecar would (not written)."""
    entry = next(item for item in data["files"] if Path(item["path"]).name == audio.name)
    lines = script_lines(data["sentences"], root)
    return Track(track_id, source, data, audio, entry["sha256"], EXCERPT, "", lines)


def sidecar_problem(data: Mapping[str, Any]) -> str:
    """What in a sidecar the review cannot use ('' when nothing)."""
    duration = data.get("duration_s")
    if not isinstance(duration, (int, float)) or duration <= 0:
        return "no duration_s"
    for field, kind in (("sentences", list), ("chapters", list), ("loudness", dict)):
        if not isinstance(data.get(field), kind):
            return f"no {field}"
    for index, sentence in enumerate(data["sentences"]):
        if (
            not isinstance(sentence, dict)
            or not isinstance(sentence.get("text"), str)
            or not isinstance(sentence.get("start_s"), (int, float))
            or not isinstance(sentence.get("end_s"), (int, float))
        ):
            return f"sentences[{index}] is not a sentence"
    for index, chapter in enumerate(data["chapters"]):
        if not isinstance(chapter, dict) or not isinstance(chapter.get("start_s"), (int, float)):
            return f"chapters[{index}] is not a chapter"
    qa = data.get("qa")
    if qa is not None and not (isinstance(qa, dict) and isinstance(qa.get("sentences"), list)):
        return "its qa section has no sentences list"
    return ""


def _playable(files: Sequence[Any]) -> dict[str, Any] | None:
    """The sidecar's file entry the page plays: the first format browsers prefer."""
    usable = [
        entry
        for entry in files
        if isinstance(entry, dict)
        and entry.get("format") in PLAYABLE
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("sha256"), str)
        and not Path(entry["path"]).is_absolute()
        and ".." not in Path(entry["path"]).parts
    ]
    usable.sort(key=lambda entry: PLAYABLE.index(entry["format"]))
    return usable[0] if usable else None


def _with_change(track: Track, checked: Checked, tracks_dir: Path) -> Track:
    """The track with what changed since its build."""
    data = track.sidecar
    try:
        key = build_key(checked)
        script_sha256 = sha256_file(checked.script.path)
    except (PipelineError, OSError) as error:
        return _changed(track, SETTINGS_CHANGED, f"inputs cannot be read: {error}")
    if data.get("build_key") == key:
        problem = outputs_problem(tracks_dir, data)
        return track if not problem else _changed(track, OUTPUTS_CHANGED, problem)
    source = data.get("source")
    if not isinstance(source, dict) or source.get("sha256") != script_sha256:
        return _changed(track, SCRIPT_EDITED, "`meditate build` renders it again")
    return _changed(
        track, SETTINGS_CHANGED, "the config, an include, an asset, the engine or the generator"
    )


def _changed(track: Track, change: str, detail: str) -> Track:
    return replace(track, change=change, change_detail=detail)


def script_lines(sentences: Sequence[Mapping[str, Any]], root: Path) -> tuple[ScriptLine, ...]:
    """Each sentence's script line: from its step's place (``path:line:col``), the first line
    below holding its first words (a ``say: |`` block starts a line below its key); the
    step's own line when none does (a breathing cue). Files are read once each.
    """
    files: dict[str, list[str]] = {}
    cursor: dict[str, int] = {}
    found = []
    for sentence in sentences:
        place = str(sentence.get("place") or "")
        path_text, line_number = _split_place(place)
        if path_text not in files:
            files[path_text] = _read_lines(root / path_text) if path_text else []
        lines = files[path_text]
        if not lines or not 1 <= line_number <= len(lines):
            found.append(ScriptLine(place, ""))
            continue
        start = max(cursor.get(place, line_number - 1), line_number - 1)
        hit = _find_sentence(str(sentence.get("text", "")), lines, start)
        if hit is None:
            found.append(ScriptLine(place, lines[line_number - 1].strip()))
            continue
        index, column = hit
        cursor[place] = index
        found.append(ScriptLine(f"{path_text}:{index + 1}:{column}", lines[index].strip()))
    return tuple(found)


def _split_place(place: str) -> tuple[str, int]:
    """(path, line) of ``path:line:col``; ('', 0) when it is not one."""
    parts = place.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return "", 0


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _find_sentence(text: str, lines: Sequence[str], start: int) -> tuple[int, int] | None:
    """(line index, 1-based column) of the first line from ``start`` holding the sentence's
    first words (four, or fewer when the sentence starts at the end of a line)."""
    words = text.split()
    stop = min(len(lines), start + SEARCH_LINES)
    fewest = 1 if len(words) == 1 else 2  # one word of a longer sentence matches too easily
    for count in range(min(4, len(words)), fewest - 1, -1):
        needle = " ".join(words[:count])
        for index in range(start, stop):
            if needle in " ".join(lines[index].split()):
                return index, lines[index].find(words[0]) + 1
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
