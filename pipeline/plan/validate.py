"""Validation of scripts without synthesis: every problem in every file, then one verdict."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import (
    ConfigError,
    EngineError,
    PipelineError,
    Place,
    Problem,
    ScriptError,
)
from pipeline.core.fileio import display_path
from pipeline.core.processes import FORKS, usable_cpus, worker_context
from pipeline.plan.timeline import Timeline
from pipeline.project.assets import CATALOG_FILE, Asset, project_catalog
from pipeline.project.config import Project, resolve
from pipeline.project.discovery import Skipped, collect_scripts
from pipeline.project.settings import Settings, VoiceSettings
from pipeline.script.model import BreatheStep, SayStep, Script, SectionStep, SoundStep
from pipeline.script.parse import is_partial, parse_partial, read_script

log = logging.getLogger(__name__)


@dataclass
class Checked:
    """A script that passed validation, with its resolved settings."""

    script: Script
    """The parsed script."""
    settings: Settings
    """Its settings after every precedence rule."""


@dataclass
class Report:
    """Everything validation found."""

    files: list[Path] = field(default_factory=list)
    """Every script file looked at."""
    problems: list[Problem] = field(default_factory=list)
    """Errors and warnings, in file and line order."""
    checked: list[Checked] = field(default_factory=list)
    """Scripts without errors."""
    skipped: list[Skipped] = field(default_factory=list)
    """What the folders held that was not read as a script (the project's own config and
    asset catalog aside)."""

    @property
    def errors(self) -> list[Problem]:
        """The errors only."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The warnings only."""
        return [p for p in self.problems if p.severity == "warning"]

    def failed(self, strict: bool = False) -> bool:
        """Whether the run must fail: any error, or any warning under ``--strict``."""
        return bool(self.errors or (strict and self.warnings))












PARALLEL_FROM_FILES = 48
"""Batches at least this large are validated in worker processes, one per core."""


def validate_paths(
    paths: Iterable[Path],
    project: Project,
    environ: dict[str, object] | None = None,
    flags: dict[str, object] | None = None,
) -> Report:
    """Validate every script under ``paths`` and collect all problems."""
    files, skipped = collect_scripts(paths, _project_files(project, environ, flags))
    for item in skipped:
        log.info("%s: skipped: %s", display_path(item.path), item.reason)
    report = Report(files=files, skipped=skipped)
    seen_ids: dict[str, Path] = {}
    for problems, checked in _validate_all(report.files, project, environ, flags):
        report.problems += problems
        if checked is None:
            continue
        script = checked.script
        if script.id in seen_ids:
            report.problems.append(
                Problem(
                    _id_place(script),
                    f"duplicate id {script.id!r}, also used by {seen_ids[script.id]}",
                )
            )
            continue
        seen_ids[script.id] = script.path
        report.checked.append(checked)
    default_voice = _default_voice_problem(project, environ, flags)
    if default_voice is not None:  # once, where it is set, rather than in every script
        report.problems = [p for p in report.problems if p.message != default_voice.message]
        report.problems.append(default_voice)
    report.problems.sort(key=_reading_order)
    return report


def _reading_order(problem: Problem) -> tuple[tuple[str, int, int], ...]:
    """Problems in file and line order; one in an included file sorts at its include step in
    the script given (then at the next include step in, and so on).
    """
    place = problem.place
    return tuple((str(p.path), p.line, p.column) for p in (*place.included_from[::-1], place))


def _project_files(
    project: Project, environ: dict[str, object] | None, flags: dict[str, object] | None
) -> tuple[Path | None, ...]:
    """The project's config and asset catalog: YAML files that are, by design, not scripts."""
    try:
        assets_dir = resolve(project, None, environ, flags).assets_dir
    except PipelineError:
        return (project.config_path,)
    return (project.config_path, assets_dir / CATALOG_FILE)


VOICE_KEYS = ("voice.engine", "voice.name", "voice.language", "language", "voice.tld")
"""Settings that choose the voice, in the order a fault is looked for in them."""


def _default_voice_problem(
    project: Project, environ: dict[str, object] | None, flags: dict[str, object] | None
) -> Problem | None:
    """A fault of the voice that a command-line flag, a ``MEDITATE_*`` variable or
    ``meditate.yaml`` gives every script, reported at that setting.
    """
    from pipeline.engines import get_engine
    from pipeline.project.config import ENVIRONMENT, environment_layer, flag_name

    given_flags = {key for key, value in (flags or {}).items() if value is not None}
    environment = environment_layer() if environ is None else environ
    variables = {flat: name for name, flat in ENVIRONMENT.items()}

    def place_of(key: str) -> Place | None:
        """Where the winning value of a setting comes from, if not from a built-in default."""
        if key in given_flags:
            return Place(Path("command line"), 0, 0, flag_name(key))
        if key in environment:
            return Place(Path("environment"), 0, 0, variables[key])
        return project.places.get(key)

    if not any(place_of(key) for key in VOICE_KEYS):
        return None
    settings = resolve(project, None, environ, flags)
    try:
        engine = get_engine(settings.voice.engine, settings.retry)
        engine.cache_settings(engine.own_voice(settings.voice))
    except EngineError as error:
        message = str(error)
    else:
        return None
    if message.startswith(("unknown engine", "engine ")):
        suspects: tuple[str, ...] = ("voice.engine",)
    elif "unknown tld" in message:
        suspects = ("voice.tld",)
    else:
        suspects = ("voice.name", "voice.language", "language")
    voice = settings.voice
    values = {
        "voice.name": voice.name,
        "voice.language": voice.language,
        "language": voice.language,
    }
    named = tuple(key for key in suspects if values.get(key) and f"'{values[key]}'" in message)
    for key in (*named, *suspects, *VOICE_KEYS):  # the setting whose value the message quotes
        place = place_of(key)
        if place is not None:
            return Problem(place, message)
    return None


_Outcome = tuple[list[Problem], "Checked | None"]


def _validate_all(
    files: list[Path],
    project: Project,
    environ: dict[str, object] | None,
    flags: dict[str, object] | None,
) -> list[_Outcome]:
    """Each file's problems and result, in file order; large batches use every core."""
    workers = min(usable_cpus(), 8) if FORKS else 1
    if len(files) < PARALLEL_FROM_FILES or workers < 2:
        return [_validate_one(path, project, environ, flags) for path in files]
    from concurrent.futures import ProcessPoolExecutor

    chunks = [files[index::workers] for index in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as pool:
        results = list(
            pool.map(
                _validate_chunk, chunks, [project] * workers, [environ] * workers, [flags] * workers
            )
        )
    by_file = {
        path: outcome
        for chunk, outcomes in zip(chunks, results, strict=True)
        for path, outcome in zip(chunk, outcomes, strict=True)
    }
    return [by_file[path] for path in files]


def _validate_chunk(
    files: list[Path],
    project: Project,
    environ: dict[str, object] | None,
    flags: dict[str, object] | None,
) -> list[_Outcome]:
    return [_validate_one(path, project, environ, flags) for path in files]


def _validate_one(
    path: Path,
    project: Project,
    environ: dict[str, object] | None,
    flags: dict[str, object] | None,
) -> _Outcome:
    problems: list[Problem] = []
    if not path.exists():
        problems.append(Problem(Place(display_path(path)), "no such file or folder"))
        return problems, None
    return problems, validate_file(path, project, problems, environ, flags)


def validate_file(
    path: Path,
    project: Project,
    problems: list[Problem],
    environ: dict[str, object] | None = None,
    flags: dict[str, object] | None = None,
) -> Checked | None:
    """Parse and check one script; problems are appended; None if it has errors."""
    before = len([p for p in problems if p.severity == "error"])
    root = project.root
    if not path.resolve().is_relative_to(root):
        root = path.resolve().parent
    if is_partial(path):
        parse_partial(path, root, problems)
        return None
    script = read_script(path, root, problems)
    if script is None:
        return None
    _check_id(script, problems)
    if len([p for p in problems if p.severity == "error"]) > before:
        _check_draft(script, project, root, problems, environ, flags)
        return None
    settings = resolve(project, script, environ, flags)
    _check_script(script, settings, root, problems)
    if len([p for p in problems if p.severity == "error"]) > before:
        return None
    return Checked(script, settings)


def _id_place(script: Script) -> Place:
    """Where a script's id is written, or its file (the id comes from the file name)."""
    return script.id_place or Place(script.path, 1, 1, "id")


def _check_id(script: Script, problems: list[Problem]) -> None:
    """An id whose files would overwrite the project's own (``catalog`` and the like)."""
    from pipeline.project.layout import reserved_id

    why = reserved_id(script.id)
    if not why:
        return
    if script.id_place is not None:
        message = f"{script.id!r} is reserved: {why}; choose another id"
    else:
        message = (
            f"the file name gives the id {script.id!r}, which is reserved: {why}; "
            "rename the file or set 'id:'"
        )
    problems.append(Problem(_id_place(script), message))


def _check_draft(
    script: Script,
    project: Project,
    root: Path,
    problems: list[Problem],
    environ: dict[str, object] | None,
    flags: dict[str, object] | None,
) -> None:
    """The assets and voices of a script with errors elsewhere, so that one run reports them
    too (on the steps that could be read).
    """
    try:
        settings = resolve(project, script, environ, flags)
    except PipelineError:
        return
    _check_assets(script, settings, root, problems)
    _check_voices_despite_errors(script, settings, problems)


def _check_script(script: Script, settings: Settings, root: Path, problems: list[Problem]) -> None:
    errors_before = len(problems)
    _check_assets(script, settings, root, problems)
    _check_sections(script, problems)
    if not any(p.severity == "error" for p in problems[errors_before:]):
        _check_plan(script, settings, problems)
    else:
        _check_voices_despite_errors(script, settings, problems)


def _check_voices_despite_errors(
    script: Script, settings: Settings, problems: list[Problem]
) -> None:
    """The voices of a script with errors, on a plan where unusable sounds last 0 s; if even
    that plan fails, they wait for the errors to be fixed.
    """
    from pipeline.plan.timeline import plan

    lengths = EstimatedLengths(script, settings, unusable_sounds_last=0.0)
    try:
        timeline = plan(script, settings, lengths)
    except PipelineError:
        return
    _check_voices(script, timeline, settings, problems)


def _check_assets(script: Script, settings: Settings, root: Path, problems: list[Problem]) -> None:
    """The bed and every sound resolve to assets of the right kind."""
    catalog = project_catalog(settings.assets_dir)
    script_dir = script.path.resolve().parent
    if settings.background is not None:
        place = script.background.place if script.background and script.background.place else None
        place = place or Place(settings.config_path or script.path, 0, 0, "defaults.background")
        asset = _asset(
            settings.background.asset, catalog, script_dir, root, place, problems, kind="bed"
        )
        if asset is not None and asset.kind != "bed":
            problems.append(Problem(place, f"{asset.name!r} is a {asset.kind}, not a bed"))
        if settings.background.fade_out_s == 0:
            problems.append(
                Problem(
                    place.at("background.fade_out"),
                    "the bed stops abruptly: set a fade_out",
                    "warning",
                )
            )
    for step in script.steps:
        if isinstance(step, SoundStep):
            _asset(
                step.asset, catalog, step.place.path.resolve().parent, root, step.place, problems
            )


def _asset(
    name: str,
    catalog: dict[str, Asset],
    script_dir: Path,
    root: Path,
    place: Place,
    problems: list[Problem],
    kind: str = "one-shot",
) -> Asset | None:
    from pipeline.project.assets import asset_file_problem, find_asset

    try:
        asset = find_asset(name, catalog, script_dir, root, kind)
    except (ValueError, ConfigError) as error:
        problems.append(Problem(place, str(error)))
        return None
    unusable = asset_file_problem(asset)
    if unusable is not None:
        problems.append(Problem(place, unusable))
        return None
    return asset


def _check_sections(script: Script, problems: list[Problem]) -> None:
    """Warn about a section that holds no speech."""
    open_section: SectionStep | None = None
    spoken = False
    for step in (*script.steps, None):
        if step is None or isinstance(step, SectionStep):
            if open_section is not None and not spoken:
                problems.append(
                    Problem(
                        open_section.place,
                        f"section {open_section.title!r} has no speech",
                        "warning",
                    )
                )
            open_section, spoken = step, False
        elif isinstance(step, SayStep) or (isinstance(step, BreatheStep) and step.cues):
            spoken = True


def _check_plan(script: Script, settings: Settings, problems: list[Problem]) -> None:
    """Plan with estimated lengths (catches impossible targets and long cues), check voices."""
    from pipeline.plan.timeline import plan

    try:
        timeline = plan(script, settings, EstimatedLengths(script, settings))
    except ScriptError as error:
        problems.extend(error.problems)
        return
    except PipelineError as error:
        problems.append(Problem(Place(script.path), str(error)))
        return
    problems.extend(timeline.warnings)
    _check_voices(script, timeline, settings, problems)


def _check_voices(
    script: Script, timeline: Timeline, settings: Settings, problems: list[Problem]
) -> None:
    """Every voice used must name a registered engine and a voice or language it has.

    A fault of the script's own ``voice`` is reported there, once; any other fault at the
    first step that speaks with the faulty voice.
    """
    from pipeline.engines import get_engine
    from pipeline.project.config import voice_for

    def fault(voice: VoiceSettings) -> str | None:
        try:
            engine = get_engine(voice.engine, settings.retry)
            engine.cache_settings(engine.own_voice(voice))
        except EngineError as error:
            return str(error)
        return None

    script_fault = None
    if script.voice_place is not None:
        script_fault = fault(voice_for(None, settings))
        if script_fault is not None:
            problems.append(Problem(script.voice_place.at("voice"), script_fault))
    seen: set[VoiceSettings] = set()
    faulty: set[VoiceSettings] = set()
    for cue in timeline.speech:
        if cue.voice in seen:
            continue
        seen.add(cue.voice)
        message = fault(cue.voice)
        if message is not None:
            faulty.add(cue.voice)
            if message != script_fault:
                problems.append(Problem(cue.place.at(cue.place.key_path or "voice"), message))
    _check_texts(timeline, settings, faulty, problems)


def _check_texts(
    timeline: Timeline, settings: Settings, faulty: set[VoiceSettings], problems: list[Problem]
) -> None:
    """Every sentence must be one its engine can speak (e.g. phonemes only to engines that
    take them); reported once per step and reason."""
    from pipeline.engines import get_engine
    from pipeline.script.text import prepare_for_engine

    reported: set[tuple[Place, str]] = set()
    for cue in timeline.speech:
        if cue.voice in faulty:
            continue
        try:
            prepared = prepare_for_engine(cue.text, settings.lexicon)
        except ValueError:
            continue  # the text review reports it
        why = get_engine(cue.voice.engine, settings.retry).refuses(prepared)
        if why and (cue.place, why) not in reported:
            reported.add((cue.place, why))
            problems.append(Problem(cue.place, why))


def sound_lengths(script: Script, settings: Settings) -> Callable[[str], float]:
    """Full length of a one-shot asset referenced by ``script``."""
    from pipeline.project.assets import asset_length_s, find_asset

    catalog = project_catalog(settings.assets_dir)

    def length(asset: str) -> float:
        found = find_asset(asset, catalog, script.path.resolve().parent, settings.root)
        return asset_length_s(found)

    return length


class EstimatedLengths:
    """Lengths for planning without synthesis: speech estimated, sounds from their files.

    ``unusable_sounds_last``: the length given to a sound that cannot be found or read,
    instead of raising (for a script whose errors are reported already).
    """

    def __init__(
        self, script: Script, settings: Settings, *, unusable_sounds_last: float | None = None
    ) -> None:
        self._sound = sound_lengths(script, settings)
        self._fallback = unusable_sounds_last

    def sound(self, asset: str) -> float:
        """Full length of a one-shot asset."""
        if self._fallback is None:
            return self._sound(asset)
        try:
            return self._sound(asset)
        except PipelineError:
            return self._fallback

    def speech(self, text: str, voice: VoiceSettings) -> float | None:
        """Always unknown: the planner estimates it."""
        return None
