"""Sidecar outputs of a track: WebVTT captions, the JSON sidecar and the build catalog.

Everything here is pure (timeline and figures in, text or dicts out) except ``file_info``,
``sha256_file`` and ``write_json_atomic``, which touch files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pipeline
from pipeline.core.fileio import write_text_atomic
from pipeline.plan.timeline import SpeechCue, Timeline
from pipeline.project.settings import QaSettings, VoiceSettings
from pipeline.script.model import Script

GENERATOR = f"meditation-pipeline {pipeline.__version__}"
"""The ``generator`` field of sidecars and catalogs."""
SEAL = "sidecar_sha256"
"""The sidecar field holding :func:`sidecar_digest` of the rest of it."""
QA = "qa"
"""The sidecar field ``meditate listen`` writes (see :func:`with_qa`)."""
MAX_CUE_CHARS = 84
"""Longest caption cue (two lines of 42); a longer sentence is split into several cues."""
_CLAUSE_ENDS = (",", ";", ":", "-", "\u2013", "\u2014")
"""A word ending so closes a clause: a caption cue may end after it."""
_CHUNK_BYTES = 1 << 20




def vtt_timestamp(time_s: float) -> str:
    """``HH:MM:SS.mmm`` of a time, rounded to the millisecond."""
    total_ms = max(0, round(time_s * 1000))
    hours, rest_ms = divmod(total_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    seconds, millis = divmod(rest_ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def vtt_escape(text: str) -> str:
    """Caption text safe in a WebVTT cue: one line, ``&``, ``<`` and ``>`` escaped."""
    one_line = " ".join(text.split())
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _note(text: str) -> str:
    """Text safe in a NOTE block: one line, no ``-->``."""
    return " ".join(text.split()).replace("-->", "->")


def captions_vtt(timeline: Timeline, title: str = "") -> str:
    """WebVTT captions: one cue per spoken sentence (breathing cues included), timeline times;
    a sentence longer than ``MAX_CUE_CHARS`` is split into cues that share its span.

    A NOTE block carries the title and the chapters, for people reading the file.
    """
    lines = ["WEBVTT", ""]
    notes = [_note(title)] if title.strip() else []
    notes += [
        f"Chapter {vtt_timestamp(chapter.start_s)} {_note(chapter.title)}"
        for chapter in timeline.chapters
    ]
    if notes:
        lines += ["NOTE", *notes, ""]
    number = 0
    for cue in timeline.cues:
        if not isinstance(cue, SpeechCue):
            continue
        for start_s, end_s, text in _timed_pieces(cue):
            number += 1
            lines += [
                str(number),
                f"{vtt_timestamp(start_s)} --> {vtt_timestamp(end_s)}",
                vtt_escape(text) or "...",
                "",
            ]
    return "\n".join(lines)


def _timed_pieces(cue: SpeechCue) -> list[tuple[float, float, str]]:
    """A sentence's caption cues, its span shared among them by their characters."""
    pieces = caption_pieces(cue.text)
    total = sum(len(piece) for piece in pieces)
    if len(pieces) < 2 or total == 0:
        return [(cue.start_s, cue.start_s + cue.length_s, cue.text)]
    timed = []
    done = 0
    for piece in pieces:
        start_s = cue.start_s + cue.length_s * done / total
        done += len(piece)
        timed.append((start_s, cue.start_s + cue.length_s * done / total, piece))
    return timed


def caption_pieces(text: str, max_chars: int = MAX_CUE_CHARS) -> list[str]:
    """A sentence as caption cues of at most ``max_chars``: cut after clauses (commas,
    semicolons, colons, dashes) where possible, else between words. Pure.
    """
    words = text.split()
    if len(" ".join(words)) <= max_chars:
        return [" ".join(words)]
    clauses: list[list[str]] = [[]]
    for word in words:
        clauses[-1].append(word)
        if word.endswith(_CLAUSE_ENDS):
            clauses.append([])
    chunks = [chunk for clause in clauses if clause for chunk in _by_words(clause, max_chars)]
    pieces: list[str] = []
    for chunk in chunks:
        if pieces and len(pieces[-1]) + 1 + len(chunk) <= max_chars:
            pieces[-1] += " " + chunk
        else:
            pieces.append(chunk)
    return pieces


def _by_words(words: list[str], max_chars: int) -> list[str]:
    """Words packed into lines of at most ``max_chars``; a longer word is cut in pieces."""
    lines: list[str] = []
    for word in words:
        while len(word) > max_chars:
            lines.append(word[:max_chars])
            word = word[max_chars:]
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        elif word:
            lines.append(word)
    return lines


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_info(
    path: Path,
    fmt: str,
    sample_rate: int,
    channels: int,
    bitrate: str | None,
    output_dir: Path | None = None,
    *,
    final: Path | None = None,
) -> dict[str, Any]:
    """The sidecar entry of an encoded file, hashed in chunks.

    ``final``: the name the file will have when ``path`` is its temporary. That name is made
    relative to ``output_dir`` (default: its folder); ``bitrate`` is None for lossless
    formats (flac, wav).
    """
    base = output_dir if output_dir is not None else path.parent
    return {
        "format": fmt,
        "path": _relative(final or path, base),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "sample_rate": sample_rate,
        "channels": channels,
        "bitrate": bitrate,
    }


def sidecar(
    script: Script,
    timeline: Timeline,
    *,
    files: Sequence[Mapping[str, Any]],
    integrated_lufs: float,
    true_peak_dbtp: float,
    voice: VoiceSettings,
    engine_version: str,
    source_sha256: str,
    build_key: str,
    root: Path,
    loudness_range_lu: float | None = None,
    captions: str | None = None,
    credits: Sequence[str] = (),
    clip_keys: Sequence[str | None] = (),
) -> dict[str, Any]:
    """The ``<id>.json`` sidecar (``docs/outputs.md``), from plain inputs. Pure.

    ``files`` are ``file_info`` entries; loudness figures are those measured on the encoded
    file; ``voice`` is the script's resolved voice; ``source.path`` is made relative to ``root``;
    ``credits`` are the lines the voices' licences ask for (the key is left out when none do);
    ``clip_keys`` are the speech-cache keys of the timeline's sentences, in order.
    """
    loudness: dict[str, float] = {
        "integrated_lufs": round(integrated_lufs, 2),
        "true_peak_dbtp": round(true_peak_dbtp, 2),
    }
    if loudness_range_lu is not None:
        loudness["loudness_range_lu"] = round(loudness_range_lu, 2)
    data: dict[str, Any] = {
        **script_fields(script, voice),
        "duration_s": round(timeline.length_s, 3),
        "loudness": loudness,
        "chapters": [
            {"title": chapter.title, "start_s": round(chapter.start_s, 3)}
            for chapter in timeline.chapters
        ],
        "captions": captions if captions is not None else f"{script.id}.vtt",
        "sentences": sentence_entries(timeline, root, clip_keys),
        "files": [dict(entry) for entry in files],
        "voice": {
            "engine": voice.engine,
            "engine_version": engine_version,
            "name": voice.name or voice.language,  # no name: the engine's voice for the language
            "rate": voice.rate,
        },
        "source": {"path": source_path(script, root), "sha256": source_sha256},
        "build_key": build_key,
        "generator": GENERATOR,
    }
    if credits:
        data["credits"] = list(credits)
    data[SEAL] = sidecar_digest(data)
    return data


def sentence_entries(
    timeline: Timeline, root: Path, clip_keys: Sequence[str | None] = ()
) -> list[dict[str, Any]]:
    """The sidecar's ``sentences``: each spoken sentence's span in the track, its text, the
    script place it came from (``path:line:col``, relative to ``root``) and its clip's key."""
    entries = []
    speech = [cue for cue in timeline.cues if isinstance(cue, SpeechCue)]
    keys = list(clip_keys) or [None] * len(speech)
    if len(keys) != len(speech):
        raise ValueError(f"{len(keys)} clip keys for {len(speech)} sentences")
    for cue, key in zip(speech, keys, strict=True):
        place = cue.place
        entries.append(
            {
                "start_s": round(cue.start_s, 3),
                "end_s": round(cue.start_s + cue.length_s, 3),
                "text": cue.text,
                "place": f"{_relative(place.path, root)}:{place.line}:{place.column}",
                "clip": key,
            }
        )
    return entries


def script_fields(script: Script, voice: VoiceSettings) -> dict[str, Any]:
    """The sidecar's fields that come from the script alone (``voice``: its resolved voice)."""
    return {
        "id": script.id,
        "title": script.title,
        "description": script.description,
        "author": script.author,
        "language": script.language if script.language is not None else voice.language,
        "category": script.category,
        "tags": list(script.tags),
    }


def source_path(script: Script, root: Path) -> str:
    """The sidecar's ``source.path``: the script relative to the project root."""
    return _relative(script.path, root)


def sidecar_digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of a sidecar's canonical JSON, its own ``sidecar_sha256`` left out: a sidecar
    edited by hand no longer matches it (the audio is covered by ``files[].sha256``).
    """
    content = {key: value for key, value in data.items() if key != SEAL}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def with_qa(data: Mapping[str, Any], qa: Mapping[str, Any] | None) -> dict[str, Any]:
    """A sidecar with its ``qa`` section set (or removed, for None), sealed again."""
    updated = {key: value for key, value in data.items() if key not in (QA, SEAL)}
    if qa is not None:
        updated[QA] = dict(qa)
    updated[SEAL] = sidecar_digest(updated)
    return updated


def spoken(data: Mapping[str, Any]) -> list[tuple[str, str | None]] | None:
    """The (text, clip key) of each of a sidecar's sentences; None when it lists none
    (a sidecar written before sentences were recorded) or they are malformed."""
    sentences = data.get("sentences")
    if not isinstance(sentences, list):
        return None
    pairs: list[tuple[str, str | None]] = []
    for entry in sentences:
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            return None
        clip = entry.get("clip")
        pairs.append((entry["text"], clip if isinstance(clip, str) else None))
    return pairs


def qa_thresholds(settings: QaSettings) -> dict[str, Any]:
    """The thresholds a ``qa`` section was judged by (recorded in it): every ``qa`` setting but
    the model."""
    return {
        field.name: getattr(settings, field.name)
        for field in dataclasses.fields(settings)
        if field.name != "model"
    }


def carried_qa(
    new: Mapping[str, Any], old: Mapping[str, Any] | None, settings: QaSettings
) -> dict[str, Any] | None:
    """The ``qa`` section of a track's previous sidecar when it still holds for the new one:
    the same sentences from the same clips, judged by the same thresholds (a rebuild that
    changed only pauses, the bed or the mastering keeps what ``listen`` found). None otherwise.
    """
    if old is None or not isinstance(old.get(QA), dict) or old.get(SEAL) != sidecar_digest(old):
        return None
    qa = old[QA]
    before = spoken(old)
    if before is None or before != spoken(new) or any(clip is None for _, clip in before):
        return None
    if qa.get("thresholds") != qa_thresholds(settings):
        return None
    return dict(qa)


def catalog(sidecars: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``catalog.json``: every track's sidecar, sorted by id."""
    tracks = sorted((dict(entry) for entry in sidecars), key=lambda entry: str(entry["id"]))
    return {"generator": GENERATOR, "tracks": tracks}


def json_text(data: Mapping[str, Any]) -> str:
    """Stable, readable JSON: two-space indent, UTF-8 kept, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json_text(data))


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` in POSIX form; unchanged if it lies elsewhere."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        pass
    for absolute, folder in (
        (Path(os.path.abspath(path)), Path(os.path.abspath(base))),
        (path.resolve(), base.resolve()),
    ):
        try:
            return absolute.relative_to(folder).as_posix()
        except ValueError:
            continue
    return path.as_posix()
