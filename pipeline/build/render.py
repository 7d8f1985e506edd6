"""Rendering one track: timeline -> speech -> streaming mix -> master -> encode -> sidecars.

Mastering is two passes over the (deterministic, cheap) streaming mix: the first measures
the integrated loudness, the second applies one static gain and the true-peak limiter on
its way into the encoder. Nothing holds the whole track in memory.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import AudioError, PipelineError
from pipeline.plan.checked import (
    Planned,
    check_script,
    log_warnings,
    plan_checked,
    replan,
    speech_requests,
)
from pipeline.plan.excerpt import (
    cut,
    excerpt_window,
    fade_out,
    find_chapter,
    needed_speech,
    section_titles,
)
from pipeline.plan.timeline import SoundCue, SpeechCue, Timeline
from pipeline.plan.validate import Checked
from pipeline.project.config import Project
from pipeline.project.settings import VoiceSettings
from pipeline.speech.cache import SpeechCache
from pipeline.speech.synthesis import ProgressCallback, SpeakReport, synthesize_missing

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pipeline.audio.encode import Encoder, TrackTags
    from pipeline.audio.master import Loudness

log = logging.getLogger(__name__)

Stage = Callable[[str, float], None]
"""Reports ``(stage, fraction done)`` while a track renders: speech, measure, encode, finish."""


@dataclass(frozen=True)
class RenderOptions:
    """What to render and where."""

    output_dir: Path
    """Folder of the outputs."""
    formats: tuple[str, ...]
    """Encoded formats; the first one is measured again for the sidecar."""
    section: str | None = None
    """Render only the chapter with this title (an editor's excerpt, no sidecar)."""
    preview_s: float | None = None
    """Render only the first seconds (an editor's excerpt, no sidecar)."""
    build_key: str = ""
    """Content hash of every input, stored in the sidecar (see `pipeline.build.keys`)."""
    jobs: int = 1
    """Sentences synthesized at once."""


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote."""

    files: tuple[Path, ...]
    """Every file written, audio first, sidecar last."""
    sidecar: dict[str, Any]
    """The track's sidecar (an excerpt's describes the excerpt and is not written)."""
    speech: SpeakReport
    """What speech synthesis did."""
    timeline: Timeline = field(repr=False)
    """The timeline rendered."""

    @property
    def fallback(self) -> int:
        """Sentences without a recorded take, spoken by their voice's fallback engine."""
        return sum(cue.voice.fills_in for cue in self.timeline.speech)


def render_script(
    path: Path,
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    output_dir: Path | None = None,
    section: str | None = None,
    preview_s: float | None = None,
    progress: ProgressCallback | None = None,
    stage: Stage | None = None,
    jobs: int = 1,
) -> RenderResult:
    """Validate and render one script into the output folder."""
    from pipeline.build.keys import build_key

    item = check_script(path, project, flags)
    settings = item.settings
    key = build_key(item)
    options = RenderOptions(
        output_dir=output_dir or settings.output_dir,
        formats=settings.formats,
        section=section,
        preview_s=preview_s,
        build_key=key,
        jobs=jobs,
    )
    return render_checked(item, options, progress=progress, stage=stage)


def render_checked(
    checked: Checked,
    options: RenderOptions,
    *,
    cache: SpeechCache | None = None,
    progress: ProgressCallback | None = None,
    stage: Stage | None = None,
    speech_ready: Callable[[Planned, Timeline], None] | None = None,
) -> RenderResult:
    """Render a validated script: synthesize what is missing, mix, master, encode, write.

    ``speech_ready`` is called with the plan and the timeline to render (an excerpt's) once
    every clip is in the cache, before the mix (``watch`` checks the clips meanwhile).
    """
    settings = checked.settings
    report_stage = stage or (lambda name, fraction: None)
    chapter, suffix = _excerpt_target(checked, options)
    _prepare_output_dir(options.output_dir)
    cache = cache or SpeechCache(settings.cache_dir)
    report_stage("speech", 0.0)
    planned, speech = _speak(checked, cache, options, chapter, progress)
    cache.record_run()
    log_warnings(planned.timeline)
    timeline, fade_s = _excerpt(planned.timeline, options, chapter)
    if speech_ready is not None:
        speech_ready(planned, timeline)
    track = _Track(checked, options, timeline, fade_s, _Sources(planned, cache), report_stage)
    track.sources.prefetch(timeline, options.formats)
    report_stage("measure", 0.2)
    mastered = track.master(checked.script.id + suffix)
    written, data = track.write(mastered)
    report_stage("done", 1.0)
    return RenderResult(tuple(written), data, speech, timeline)


def _excerpt_target(checked: Checked, options: RenderOptions) -> tuple[int | None, str]:
    """The chapter an excerpt is cut from (None: the whole track) and its file-name suffix."""
    if options.section is not None:
        titles = section_titles(checked.script)
        chapter = find_chapter(titles, options.section)
        return chapter, _section_suffix(titles[chapter])
    if options.preview_s is not None:
        return None, ".preview"
    return None, ""


def _prepare_output_dir(output_dir: Path) -> None:
    """Fail early on an output folder we cannot write; remove an interrupted render's files."""
    from pipeline.audio.encode import remove_stale_temporaries
    from pipeline.core.fileio import check_writable

    check_writable(output_dir)
    for stale in remove_stale_temporaries(output_dir):
        log.info("removed %s, left by an interrupted render", stale)


@dataclass(frozen=True)
class _Mastered:
    """The encoded temporaries of a track and what mastering decided and measured."""

    name: str
    """The outputs' file name without its extension."""
    encoder: Encoder
    """Holds the tagged temporaries until they are released into place."""
    loudness: Loudness
    """Measured on the first format's encoded file."""
    gain_db: float
    """The static gain applied before the limiter."""
    headroom_db: float
    """The most gain the peaks allow (see ``_mastering_gain_db``)."""


@dataclass(frozen=True)
class _Track:
    """One render's timeline and sources, mixed again at each gain mastering tries."""

    checked: Checked
    options: RenderOptions
    timeline: Timeline
    fade_s: float
    """The fade-out where an excerpt is cut (0: none)."""
    sources: _Sources
    report_stage: Stage

    @property
    def excerpt(self) -> bool:
        return self.options.section is not None or self.options.preview_s is not None

    def mixed(self, gain_db: float) -> Iterator[npt.NDArray[np.float32]]:
        """The streaming mix at ``gain_db``, faded out where an excerpt is cut."""
        from pipeline.audio.mix import mix, track_frames

        settings, timeline, sources = self.checked.settings, self.timeline, self.sources
        sample_rate = settings.sample_rate
        blocks = mix(
            timeline,
            speech_clip=sources.speech,
            sound=sources.sound,
            bed=sources.bed if timeline.background is not None else None,
            sample_rate=sample_rate,
            channels=settings.channels,
            gain_db=gain_db,
        )
        if not self.fade_s:
            return blocks
        frames = track_frames(timeline, sample_rate)
        return fade_out(blocks, frames, round(self.fade_s * sample_rate))

    def master(self, name: str) -> _Mastered:
        """Measure the mix, then limit and encode it at the gain that reaches the target.

        When the limiter took more loudness than the static gain allowed for (short, peaky
        speech), the track is encoded once more with the shortfall added, within the same
        headroom.
        """
        from pipeline.audio.master import limiter_ceiling_dbtp, measure_stream, static_gain_db

        settings, options = self.checked.settings, self.options
        peak = _PeakMeter()
        measured = measure_stream(
            peak.watch(self.mixed(0.0)), settings.sample_rate, settings.channels
        )
        ceiling_dbtp = limiter_ceiling_dbtp(settings.true_peak_dbtp, options.formats)
        headroom_db = ceiling_dbtp + MAX_LIMITING_DB - peak.dbfs
        gain_db = _mastering_gain_db(
            self.checked.script.path, static_gain_db(measured, settings.target_lufs), headroom_db
        )
        tags = self.tags()
        encoder, loudness = self.encode(name, gain_db, ceiling_dbtp, tags)
        missed_lu = settings.target_lufs - loudness.integrated_lufs
        louder_allowed = missed_lu < 0 or gain_db < headroom_db
        if not self.excerpt and abs(missed_lu) > LOUDNESS_TOLERANCE_LU and louder_allowed:
            log.info("%s: %.1f LUFS after limiting; encoding again", name, loudness.integrated_lufs)
            encoder.abort()
            gain_db = min(gain_db + missed_lu, headroom_db)
            encoder, loudness = self.encode(name, gain_db, ceiling_dbtp, tags)
        return _Mastered(name, encoder, loudness, gain_db, headroom_db)

    def tags(self) -> TrackTags:
        """The tags of every encoded format."""
        from pipeline.audio.encode import TrackTags

        script, timeline = self.checked.script, self.timeline
        return TrackTags(
            title=script.title + (" (excerpt)" if self.excerpt else ""),
            artist=script.author,
            album=script.category,
            comment=script.description,
            chapters=tuple((chapter.title, chapter.start_s) for chapter in timeline.chapters),
            duration_s=timeline.length_s,
        )

    def encode(
        self, name: str, gain_db: float, ceiling_dbtp: float, tags: TrackTags
    ) -> tuple[Encoder, Loudness]:
        """Limit and encode the mix at ``gain_db``, tag the temporaries and measure them."""
        from pipeline.audio.encode import Encoder, tag_file
        from pipeline.audio.master import TruePeakLimiter, measure_file

        settings, options, report_stage = self.checked.settings, self.options, self.report_stage
        sample_rate, channels = settings.sample_rate, settings.channels
        total = max(1, round(self.timeline.length_s * sample_rate))
        report_stage("encode", 0.3)
        encoder = Encoder(
            options.output_dir,
            name,
            options.formats,
            sample_rate=sample_rate,
            channels=channels,
            bitrate=settings.bitrate,
            tags=tags,
            measure=True,
        )
        try:
            limiter = TruePeakLimiter(sample_rate, channels, ceiling_dbtp)
            for block in limiter.stream(self.mixed(gain_db)):
                encoder.write(block)
                report_stage("encode", 0.3 + 0.6 * min(1.0, encoder.frames_written / total))
            encoder.close()
            for fmt, temporary in encoder.temp_paths.items():
                tag_file(temporary, fmt, tags)
            # measured while encoding: the first format's own packets, decoded by ffmpeg
            loudness = encoder.loudness or measure_file(encoder.temp_paths[options.formats[0]])
        except BaseException:
            encoder.abort()
            raise
        return encoder, loudness

    def write(self, mastered: _Mastered) -> tuple[list[Path], dict[str, Any]]:
        """Make audio, captions and sidecar final together, the sidecar last (see FileSet)."""
        from pipeline.build.outputs import captions_vtt, carried_qa, json_text, with_qa
        from pipeline.build.state import read_sidecar
        from pipeline.core.fileio import FileSet

        script, settings, options = self.checked.script, self.checked.settings, self.options
        name, encoder, loudness = mastered.name, mastered.encoder, mastered.loudness
        with FileSet() as outputs:
            with encoder:  # its temporaries are removed unless handed over
                self.report_stage("finish", 0.9)
                _check_loudness(
                    name,
                    loudness.integrated_lufs,
                    loudness.true_peak_dbtp,
                    settings,
                    peak_limited=mastered.gain_db >= mastered.headroom_db,
                )
                audio = encoder.release()
                for fmt in options.formats:
                    outputs.adopt(audio[fmt], encoder.final_paths[fmt])
            captions_path = options.output_dir / f"{name}.vtt"
            outputs.write(captions_path, captions_vtt(self.timeline, script.title).encode("utf-8"))
            data = self.sidecar(mastered, audio, captions_path.name)
            if not self.excerpt:
                sidecar_path = options.output_dir / f"{script.id}.json"
                qa = carried_qa(data, read_sidecar(sidecar_path), settings.qa)
                if qa is not None:
                    data = with_qa(data, qa)
                outputs.write(sidecar_path, json_text(data).encode("utf-8"))
            written = outputs.commit()
        return written, data

    def sidecar(self, mastered: _Mastered, audio: dict[str, Path], captions: str) -> dict[str, Any]:
        """The track's sidecar, describing the released audio files."""
        from pipeline.build.outputs import file_info, sha256_file, sidecar
        from pipeline.engines import get_engine

        script, settings, options = self.checked.script, self.checked.settings, self.options
        final_paths, loudness = mastered.encoder.final_paths, mastered.loudness
        return sidecar(
            script,
            self.timeline,
            files=[
                file_info(
                    audio[fmt],
                    fmt,
                    settings.sample_rate,
                    settings.channels,
                    settings.bitrate if fmt not in ("flac", "wav") else None,
                    options.output_dir,
                    final=final_paths[fmt],
                )
                for fmt in options.formats
            ],
            integrated_lufs=loudness.integrated_lufs,
            true_peak_dbtp=(
                loudness.true_peak_dbtp if loudness.true_peak_dbtp is not None else -120.0
            ),
            loudness_range_lu=loudness.loudness_range_lu,
            voice=settings.voice,
            engine_version=get_engine(settings.voice.engine, settings.retry).version(),
            source_sha256=sha256_file(script.path),
            build_key=options.build_key,
            root=settings.root,
            captions=captions,
            credits=self.credits(),
            clip_keys=[self.sources.clip_key(cue) for cue in self.timeline.speech],
        )

    def credits(self) -> list[str]:
        """The credit lines the licences of the track's voices ask for, each once."""
        from pipeline.engines import get_engine

        retry = self.checked.settings.retry
        voices = dict.fromkeys(cue.voice for cue in self.timeline.speech)
        lines = (get_engine(voice.engine, retry).voice_credit(voice) for voice in voices)
        return list(dict.fromkeys(line for line in lines if line))


class _Sources:
    """Audio the mixer pulls: cached speech clips, one-shots and the bed, at project format."""

    def __init__(self, planned: Planned, cache: SpeechCache) -> None:
        from pipeline.project.assets import project_catalog

        self.planned = planned
        self.cache = cache
        self.settings = planned.settings
        self.catalog = project_catalog(self.settings.assets_dir)
        self.script_dir = planned.script.path.resolve().parent
        self.sound_dirs = {
            cue.asset: cue.place.path.resolve().parent
            for cue in planned.timeline.cues
            if isinstance(cue, SoundCue)
        }

    def prefetch(self, timeline: Timeline, formats: tuple[str, ...]) -> None:
        """Decode the timeline's assets and measure its codecs' gains, all at once.

        Each is an ffmpeg run of its own, so they overlap instead of queueing one behind the
        other in front of the mix; results stay memoized for the render. Failures are raised
        as the mix would meet them: the bed's first, then the one-shots', in cue order.
        """
        from concurrent.futures import ThreadPoolExecutor

        from pipeline.audio.encode import codec_gain_db

        settings = self.settings
        tasks: list[Callable[[], object]] = []
        if timeline.background is not None:
            tasks.append(functools.partial(self.bed, timeline.background.asset))
        for name in dict.fromkeys(c.asset for c in timeline.cues if isinstance(c, SoundCue)):
            tasks.append(functools.partial(self.sound, name))
        for fmt in formats:
            gain = functools.partial(
                codec_gain_db, fmt, settings.bitrate, settings.sample_rate, settings.channels
            )
            tasks.append(gain)
        if len(tasks) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(len(tasks), 4)) as pool:
            for future in [pool.submit(task) for task in tasks]:
                future.result()

    def clip_key(self, cue: SpeechCue) -> str | None:
        """The speech-cache key of a sentence's clip (None before it is synthesized)."""
        return self.planned.lengths.key(cue.text, cue.voice)

    def speech(self, cue: SpeechCue) -> npt.NDArray[np.float32]:
        key = self.clip_key(cue)
        clip = self.cache.get(key) if key is not None else None
        if clip is None:
            raise AudioError(
                f"{cue.place}: the speech clip of {cue.text[:60]!r} is missing from the cache "
                "(was it pruned during the render?)" + "".join(f"\n{n}" for n in cue.place.notes())
            )
        return clip

    def sound(self, name: str) -> tuple[npt.NDArray[np.float32], float]:
        return self._load(name, self.sound_dirs.get(name, self.script_dir), "one-shot")

    def bed(self, name: str) -> tuple[npt.NDArray[np.float32], float]:
        return self._load(name, self.script_dir, "bed")

    def _load(self, name: str, folder: Path, kind: str) -> tuple[npt.NDArray[np.float32], float]:
        from pipeline.project.assets import find_asset, load_asset_audio

        asset = find_asset(name, self.catalog, folder, self.settings.root, kind)
        audio = load_asset_audio(asset, self.settings.sample_rate, self.settings.channels)
        return audio, asset.level_db


MAX_LIMITING_DB = 6.0
"""The most the true-peak limiter may take off the loudest peak; more would crush speech."""
LOUDNESS_TOLERANCE_LU = 0.5
"""How far the encoded file's integrated loudness may be from the target (docs/quality.md)."""


class _PeakMeter:
    """The sample peak of a stream of blocks, measured on its way through."""

    def __init__(self) -> None:
        self.peak = 0.0

    def watch(self, blocks: Iterator[npt.NDArray[np.float32]]) -> Iterator[npt.NDArray[np.float32]]:
        import numpy as np

        for block in blocks:
            if block.size:
                self.peak = max(self.peak, float(np.max(np.abs(block))))
            yield block

    @property
    def dbfs(self) -> float:
        return 20.0 * math.log10(self.peak) if self.peak > 0 else -math.inf


def _mastering_gain_db(path: Path, wanted_db: float, headroom_db: float) -> float:
    """The static gain: the loudness target's, unless reaching it would crush the peaks.

    ``headroom_db`` is the most gain the limiter may absorb (MAX_LIMITING_DB off the loudest
    peak). A track that is mostly bed or silence with a little speech measures very quietly;
    the gain that brings it to the target would push its speech far into the limiter. Such a
    track stays below the target (with a warning, see ``_check_loudness``) rather than being
    squashed.
    """
    if wanted_db <= headroom_db:
        return wanted_db
    log.info(
        "%s: the loudness target needs %+.1f dB, but its peaks allow %+.1f dB without "
        "crushing them",
        path,
        wanted_db,
        headroom_db,
    )
    return headroom_db


def _speak(
    checked: Checked,
    cache: SpeechCache,
    options: RenderOptions,
    chapter: int | None,
    progress: ProgressCallback | None,
) -> tuple[Planned, SpeakReport]:
    """The plan after synthesizing what the render needs: every sentence, or an excerpt's.

    An excerpt is found on a plan with estimated lengths; once its sentences are measured
    the plan changes, and sentences that moved into the excerpt are synthesized too.
    """
    settings = checked.settings
    planned = plan_checked(checked, cache)
    excerpt = options.section is not None or options.preview_s is not None
    asked: set[tuple[str, VoiceSettings]] = set()
    reports: list[SpeakReport] = []
    while True:
        window = excerpt_window(planned.timeline, chapter, options.preview_s) if excerpt else None
        needed = needed_speech(planned.timeline, window)
        cues = [cue for cue in needed if (cue.text, cue.voice) not in asked]
        if reports and not cues:
            break
        asked.update((cue.text, cue.voice) for cue in cues)
        report = synthesize_missing(
            speech_requests(planned.timeline, str(checked.script.path), cues=cues),
            cache,
            lexicon=settings.lexicon,
            sample_rate=settings.sample_rate,
            retry=settings.retry,
            jobs=options.jobs,
            progress=_counted_on(progress, sum(report.synthesized for report in reports)),
        )
        reports.append(report)
        if not report.synthesized:
            break
        planned = replan(planned)
    return planned, SpeakReport(
        total=sum(report.total for report in reports),
        cached_before=sum(report.cached_before for report in reports),
        synthesized=sum(report.synthesized for report in reports),
        engine_calls=sum(report.engine_calls for report in reports),
    )


def _counted_on(progress: ProgressCallback | None, before: int) -> ProgressCallback | None:
    """``progress`` counting on from ``before`` sentences synthesized by an earlier round."""
    if progress is None or not before:
        return progress
    reported = progress
    return lambda done, total, text: reported(before + done, before + total, text)


def _excerpt(
    timeline: Timeline, options: RenderOptions, chapter: int | None
) -> tuple[Timeline, float]:
    """The part of the timeline an editor asked for, and the fade-out (s) where it is cut."""
    if options.section is None and options.preview_s is None:
        return timeline, 0.0
    window = excerpt_window(timeline, chapter, options.preview_s)
    part, fade_s = cut(timeline, window)
    if abs(window.start_s + part.length_s - window.end_s) > 1e-6:
        log.info("the excerpt lasts %.2f s, to end between sentences", part.length_s)
    return part, fade_s


def _section_suffix(title: str) -> str:
    """``.section-<slug>`` of a chapter's title, the part of an excerpt's file names."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    return f".section-{slug}"


def _check_loudness(
    name: str,
    integrated_lufs: float,
    true_peak_dbtp: float | None,
    settings: Any,
    *,
    peak_limited: bool = False,
) -> None:
    """Warn when the encoded file misses the loudness target, by what the file measures.

    ``peak_limited``: the gain was held back so as not to crush the peaks, the likely cause
    of a quiet track (little speech over a long bed or silence).
    """
    missed_lu = settings.target_lufs - integrated_lufs
    if abs(missed_lu) > LOUDNESS_TOLERANCE_LU:
        how = f"{missed_lu:.1f} LU quieter" if missed_lu > 0 else f"{-missed_lu:.1f} LU louder"
        why = ""
        if missed_lu > 0 and peak_limited:
            why = ": more gain would crush its peaks (little speech over a long bed or silence?)"
        log.warning(
            "%s: integrated loudness %.1f LUFS measured on the encoded file, %s than the "
            "target %.1f LUFS%s",
            name,
            integrated_lufs,
            how,
            settings.target_lufs,
            why,
        )
    if true_peak_dbtp is not None and true_peak_dbtp > settings.true_peak_dbtp:
        raise PipelineError(
            f"{name}: error: true peak {true_peak_dbtp:.2f} dBTP over the ceiling "
            f"{settings.true_peak_dbtp:.1f} dBTP after encoding"
        )
