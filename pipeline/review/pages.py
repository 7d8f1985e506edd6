"""The review site's pages as text: the index of tracks and one page per track. Pure.

Every text from a script or a sidecar is HTML-escaped; the data the page's script needs is
inlined as JSON (``file://`` pages cannot fetch) with ``<``, ``>``, ``&`` and the two
JavaScript line separators escaped, so no text can close the ``<script>`` element.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.core.units import format_clock
from pipeline.review.levels import Levels
from pipeline.review.tracks import UP_TO_DATE, ScriptLine, Skipped, Track

NOT_CHECKED = "not checked"
"""The QA status of a track whose sidecar has no ``qa`` section (``meditate listen``)."""
STATIC = "static"
"""The site's folder of style sheet and scripts."""
_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def version_script_name(track_id: str) -> str:
    """The file holding a track page's version (``<id>.version.js``)."""
    return f"{track_id}.version.js"


def version_script(version: str) -> str:
    """``<id>.version.js``: the page loads it again every second and reloads itself when the
    value differs from the one it was opened with."""
    return f"window.__reviewVersion = {inline_json(version)};\n"


def inline_json(data: object) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_ESCAPES)


def qa_status(sidecar: Mapping[str, Any]) -> str:
    """``ok``, ``warn``, ``fail`` from the sidecar's ``qa``, or ``not checked``."""
    qa = sidecar.get("qa")
    status = qa.get("status") if isinstance(qa, dict) else None
    return status if status in ("ok", "warn", "fail") else NOT_CHECKED


def qa_counts(sidecar: Mapping[str, Any]) -> str:
    """``3 warn, 1 fail; WER 0.04`` of the flagged sentences and the whole track ('' when
    not checked; the WER only when ``listen`` recorded one)."""
    qa = sidecar.get("qa")
    if not isinstance(qa, dict):
        return ""
    counts = qa["counts"] if isinstance(qa.get("counts"), dict) else {}
    flagged = ", ".join(f"{counts[key]} {key}" for key in ("warn", "fail") if counts.get(key))
    wer = qa.get("wer")
    pooled = f"WER {wer:.2f}" if isinstance(wer, (int, float)) else ""
    return "; ".join(part for part in (flagged, pooled) if part)


def _qa_by_index(sidecar: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    qa = sidecar.get("qa")
    entries = qa.get("sentences") if isinstance(qa, dict) else None
    if not isinstance(entries, list):
        return {}
    return {
        entry["index"]: entry
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("index"), int)
    }


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _db(value: object, unit: str) -> str:
    return f"{value:.1f} {unit}" if isinstance(value, (int, float)) else "?"


def _page(title: str, body_class: str, body: str, lang: str = "en", tail: str = "") -> str:
    return (
        "<!doctype html>\n"
        f'<html lang="{_text(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n"
        f'<link rel="stylesheet" href="{STATIC}/review.css">\n'
        f'</head>\n<body class="{body_class}">\n{body}{tail}</body>\n</html>\n'
    )


def _badge(status: str) -> str:
    css = status.replace(" ", "-")
    return f'<span class="badge qa-{css}">{_text(status)}</span>'


def _change(track: Track) -> str:
    css = "ok" if track.change == UP_TO_DATE else "changed"
    detail = f' title="{_text(track.change_detail)}"' if track.change_detail else ""
    return f'<span class="change change-{css}"{detail}>{_text(track.change)}</span>'


def index_page(
    tracks: Sequence[Track], skipped: Sequence[Skipped], skipped_names: Sequence[str]
) -> str:
    """The index: a row per track (title, duration, loudness, true peak, QA, what changed)
    and the scripts that could not be shown, each with its reason (``skipped_names``: how
    each is named, in the order of ``skipped``)."""
    rows = []
    for track in tracks:
        data = track.sidecar
        loudness = data.get("loudness", {})
        counts = qa_counts(data)
        title = _text(data.get("title", track.track_id))
        rows.append(
            f'<tr id="track-{_text(track.track_id)}">'
            f'<td dir="auto"><a href="{_text(track.track_id)}.html">{title}</a>'
            f'<div class="id">{_text(track.track_id)}</div></td>'
            f'<td class="num">{format_clock(float(data["duration_s"]))}</td>'
            f'<td class="num">{_db(loudness.get("integrated_lufs"), "LUFS")}</td>'
            f'<td class="num">{_db(loudness.get("true_peak_dbtp"), "dBTP")}</td>'
            f"<td>{_badge(qa_status(data))}"
            f'{f" <span class=counts>{_text(counts)}</span>" if counts else ""}</td>'
            f"<td>{_change(track)}</td></tr>\n"
        )
    table = (
        '<table id="tracks">\n<thead><tr><th>track</th><th>duration</th><th>loudness</th>'
        "<th>true peak</th><th>QA</th><th>since the build</th></tr></thead>\n<tbody>\n"
        + "".join(rows)
        + "</tbody>\n</table>\n"
    )
    missing = ""
    if skipped:
        items = "".join(
            f'<li><code dir="auto">{_text(name)}</code>: {_text(item.reason)}</li>\n'
            for item, name in zip(skipped, skipped_names, strict=True)
        )
        missing = f'<section id="skipped"><h2>Not shown</h2>\n<ul>\n{items}</ul>\n</section>\n'
    header = f"<header><h1>Review: {len(tracks)} track(s)</h1></header>\n"
    body = f"{header}<main>\n{table}{missing}</main>\n"
    return _page("Review", "index", body)


def track_page(track: Track, levels: Levels, audio_href: str) -> str:
    """A track's page: facts, audio, waveform with chapter and sentence regions, loudness
    plot, chapters, and the transcript with QA flags and script lines."""
    data = track.sidecar
    loudness = data.get("loudness", {})
    qa = _qa_by_index(data)
    status = qa_status(data)
    source = data["source"] if isinstance(data.get("source"), dict) else {}
    counts = qa_counts(data)
    facts = (
        '<dl class="facts">'
        f'<dt>duration</dt><dd>{format_clock(float(data["duration_s"]))}</dd>'
        f'<dt>loudness</dt><dd>{_db(loudness.get("integrated_lufs"), "LUFS")}</dd>'
        f'<dt>true peak</dt><dd>{_db(loudness.get("true_peak_dbtp"), "dBTP")}</dd>'
        f'<dt>QA</dt><dd id="qa-status"{_recognizer(data)}>{_badge(status)}'
        f'{f" {_text(counts)}" if counts else ""}</dd>'
        f'<dt>since the build</dt><dd id="change">{_change(track)}'
        f'{f" <small>{_text(track.change_detail)}</small>" if track.change_detail else ""}</dd>'
        f'<dt>script</dt><dd><code dir="auto">{_text(source.get("path", ""))}</code></dd>'
        "</dl>\n"
    )
    chapters = "".join(
        f'<li><button type="button" class="chapter" data-start="{float(c["start_s"]):.3f}">'
        f'<span class="time">{format_clock(float(c["start_s"]))}</span> '
        f'<span dir="auto">{_text(c.get("title", ""))}</span></button></li>\n'
        for c in data["chapters"]
    )
    sentences = "".join(
        _sentence(index, sentence, line, qa.get(index), status != NOT_CHECKED)
        for index, (sentence, line) in enumerate(
            zip(data["sentences"], _padded(track.lines, len(data["sentences"])), strict=True)
        )
    )
    payload = {
        "id": track.track_id,
        "duration_s": levels.duration_s or float(data["duration_s"]),
        "levels": levels.as_dict(),
        "integrated_lufs": loudness.get("integrated_lufs"),
        "chapters": [
            {"title": str(c.get("title", "")), "start_s": float(c["start_s"])}
            for c in data["chapters"]
        ],
        "sentences": [
            {
                "start_s": float(s["start_s"]),
                "end_s": float(s["end_s"]),
                "status": str(qa.get(index, {}).get("status", "")),
            }
            for index, s in enumerate(data["sentences"])
        ],
    }
    body = (
        '<header><nav><a href="index.html">All tracks</a></nav>\n'
        f'<h1 dir="auto">{_text(data.get("title", track.track_id))}</h1>\n{facts}</header>\n'
        '<main>\n<section class="player">\n'
        f'<audio id="audio" controls preload="auto" src="{_text(audio_href)}"></audio>\n'
        '<div id="waveform" aria-label="waveform"></div>\n'
        '<canvas id="loudness" height="110" aria-label="short-term loudness"></canvas>\n'
        "</section>\n"
        '<section class="chapters"><h2>Chapters</h2>\n'
        f'<ol id="chapters">\n{chapters}</ol>\n</section>\n'
        '<section class="transcript"><h2>Transcript</h2>\n'
        f"{_flag_buttons(qa)}"
        f'{f"<p class=note>{_text(track.note)}</p>" if track.note else ""}'
        f'<ol id="sentences">\n{sentences}</ol>\n'
        "</section>\n</main>\n"
    )
    tail = (
        f'<script type="application/json" id="track-data">{inline_json(payload)}</script>\n'
        f'<script src="{STATIC}/wavesurfer/wavesurfer.min.js"></script>\n'
        f'<script src="{STATIC}/wavesurfer/regions.min.js"></script>\n'
        f'<script src="{_text(version_script_name(track.track_id))}"></script>\n'
        f'<script src="{STATIC}/review.js"></script>\n'
    )
    language = str(data.get("language") or "en")
    return _page(f"{data.get('title', track.track_id)} · review", "track", body, language, tail)


def _flag_buttons(qa: Mapping[int, Mapping[str, Any]]) -> str:
    """Buttons that seek to the previous and next flagged sentence ('' when none is)."""
    flagged = sum(entry.get("status") in ("warn", "fail") for entry in qa.values())
    if not flagged:
        return ""
    return (
        f'<p class="flags">{flagged} flagged: '
        '<button type="button" id="previous-flag" title="p">previous</button> '
        '<button type="button" id="next-flag" title="n">next</button></p>\n'
    )


def _recognizer(sidecar: Mapping[str, Any]) -> str:
    """A ``title`` attribute naming what checked the track ('' when nothing did)."""
    qa = sidecar.get("qa")
    name = qa.get("recognizer") if isinstance(qa, dict) else None
    return f' title="checked by {_text(name)}"' if name else ""


def _padded(lines: Sequence[ScriptLine], count: int) -> list[ScriptLine]:
    return [*lines[:count], *[ScriptLine("", "")] * max(0, count - len(lines))]


def _sentence(
    index: int,
    sentence: Mapping[str, Any],
    line: ScriptLine,
    check: Mapping[str, Any] | None,
    checked: bool,
) -> str:
    """One transcript entry: time, text, QA flag and what was heard, the script line."""
    start_s, end_s = float(sentence["start_s"]), float(sentence["end_s"])
    status = str(check.get("status", "")) if check else ""
    css = f" qa-{status}" if status in ("ok", "warn", "fail") else ""
    flag = heard = ""
    if check is not None and status in ("warn", "fail"):
        reasons = "; ".join(str(reason) for reason in check.get("reasons") or [])
        flag = f'<span class="flag">{_badge(status)} {_text(reasons)}</span>'
    if check is not None and check.get("heard") is not None:
        details = [f'heard: <q dir="auto">{_text(check["heard"])}</q>']
        if isinstance(check.get("wer"), (int, float)):
            details.append(f"WER {float(check['wer']):.2f}")
        for key in ("missing", "extra"):
            if check.get(key):
                details.append(f"{key}: {_text(', '.join(map(str, check[key])))}")
        heard = f'<div class="heard">{" · ".join(details)}</div>'
    elif checked and check is None:
        heard = '<div class="heard">not checked</div>'
    source = (
        f'<div class="source"><code class="place">{_text(line.place)}</code> '
        f'<code class="line" dir="auto">{_text(line.text)}</code></div>'
        if line.place
        else ""
    )
    return (
        f'<li class="sentence{css}" id="s-{index}" data-index="{index}" '
        f'data-start="{start_s:.3f}" data-end="{end_s:.3f}" tabindex="0">'
        f'<span class="time">{format_clock(start_s)}</span> '
        f'<span class="text" dir="auto">{_text(sentence["text"])}</span>{flag}{heard}{source}'
        "</li>\n"
    )
