"""Starting points for new scripts (``meditate new``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeline.core.errors import PipelineError, Place, UsageError
from pipeline.script.parse import ID_PATTERN

HEADER = "# yaml-language-server: $schema={schema}\n"

TEMPLATES: dict[str, str] = {
    "breathing": """\
id: {id}
title: {title}
description: A short breathing practice.
author: Smart Meditation team
category: stress
tags: [breathing]
duration: 4m

background: {{asset: ocean, gain: -18dB, fade_in: 5s, fade_out: 10s}}

steps:
  - section: Arriving
  - sound: {{asset: bowl, wait: 4s}}
  - say: |
      Welcome. Find a position that feels comfortable, and let your eyes close if you like.
      There is nothing you need to do right now except breathe.
  - pause: 20s+
  - section: Breathing
  - say: We will breathe together in a steady rhythm. Follow my voice.
  - breathe: {{pattern: box, cycles: 4}}
  - pause: 30s+
  - say: Keep breathing like this on your own for a few more rounds.
  - pause: 20s+
  - section: Closing
  - say: |
      Let your breath return to its own rhythm.
      When you are ready, open your eyes and come back to the room.
  - sound: {{asset: chime, wait: 3s}}
""",
    "body-scan": """\
id: {id}
title: {title}
description: A gentle body scan.
author: Smart Meditation team
category: sleep
tags: [body scan]
duration: 10m

background: {{asset: rain, gain: -20dB, fade_in: 5s, fade_out: 15s}}

steps:
  - section: Settling
  - say: |
      Lie down or sit comfortably. Let the surface beneath you hold your weight.
      Take a few slow breaths, and let each breath out be a little longer than the one before.
  - pause: 30s+
  - section: Feet and legs
  - say: Bring your attention to your feet. Notice whatever is there, without changing it.
  - pause: 30s+
  - say: Now move your attention slowly up through your ankles, your calves and your knees.
  - pause: 30s+
  - say: Notice your thighs and your hips, and the places where your body touches the ground.
  - pause: 30s+
  - section: Belly and chest
  - say: Let your attention rest on your belly. Feel it rise and fall with each breath.
  - pause: 30s+
  - say: And now your chest. Notice the breath moving there, all by itself.
  - pause: 30s+
  - section: Hands and arms
  - say: Bring your attention to your hands. The palms, the fingers, the backs of the hands.
  - pause: 30s+
  - say: Let the attention move up through your arms, to your elbows and your shoulders.
  - pause: 30s+
  - section: Shoulders and face
  - say: Notice your shoulders. Let them soften a little, if they want to.
  - pause: 30s+
  - say: And your face. The jaw, the eyes, the forehead.
  - pause: 30s+
  - section: Resting
  - say: Now feel your whole body at once, breathing, resting, held.
  - pause: 30s+
  - say: Rest here, with your whole body, for as long as you like.
  - pause: 60s+
""",
    "sleep": """\
id: {id}
title: {title}
description: A slow practice for falling asleep.
author: Smart Meditation team
category: sleep
tags: [sleep]
duration: 15m

voice: {{rate: 0.9}}
background: {{asset: drone, gain: -20dB, fade_in: 10s, fade_out: 60s}}

steps:
  - section: Settling in
  - say: |
      Make yourself comfortable for sleep. There is nothing left to do today.
      Let the bed hold the whole weight of your body.
  - pause: 30s+
  - say: Notice the sounds around you, near and far, and let them be.
  - pause: 30s+
  - section: Breathing
  - say: Let us slow the breath down together.
  - breathe: {{pattern: relax, cycles: 6}}
  - pause: 30s+
  - section: Letting go
  - say: Let your forehead soften, and the space between your eyebrows.
  - pause: 30s+
  - say: Let your jaw loosen. Let your tongue rest in your mouth.
  - pause: 30s+
  - say: Let your shoulders sink a little deeper into the bed.
  - pause: 30s+
  - say: Let your arms and your hands grow heavy and warm.
  - pause: 30s+
  - say: Let your legs and your feet grow heavy and warm.
  - pause: 30s+
  - section: Drifting
  - say: You can let go of my voice now, and drift.
  - pause: 240s+
""",
    "article": """\
id: {id}
title: {title}
description: An audio version of an article.
author: Smart Meditation team
category: articles
tags: [article]

pauses: {{sentence: 0.6s, paragraph: 1.5s}}

steps:
  - section: Introduction
  - say: |
      This is the introduction of the article.

      A second paragraph continues here.
  - section: Summary
  - say: |
      This is general information, not medical advice.
      Please talk with a professional about your situation.
""",
}


def create_script(
    folder: Path,
    script_id: str,
    template: str,
    search: Iterable[Path] = (),
    schema: Path | None = None,
) -> Path:
    """Write ``folder/<id>.yaml`` from a template; refuse to overwrite, and refuse an id that
    a script in ``folder`` or under ``search`` (the project's scripts) already has.

    ``schema``: the project's copy of the JSON Schema; when it exists, the script's first line
    points the YAML language server at it, by a path relative to the script.
    """
    if not ID_PATTERN.match(script_id):
        raise UsageError(
            f"error: invalid id {script_id!r}: use lowercase letters, digits and dashes"
        )
    if template not in TEMPLATES:
        raise UsageError(
            f"error: unknown template {template!r}; choose one of {', '.join(TEMPLATES)}"
        )
    from pipeline.project.layout import reserved_id

    why = reserved_id(script_id)
    if why:
        raise UsageError(f"error: id {script_id!r} is reserved: {why}; choose another id")
    path = folder / f"{script_id}.yaml"
    used = _id_in_use(script_id, [folder, *search])
    if used is not None:
        raise PipelineError(
            f"{used}: error: id {script_id!r} already exists here; choose another id"
        )
    title = script_id.replace("-", " ").capitalize()
    text = _schema_header(folder, schema) + TEMPLATES[template].format(id=script_id, title=title)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as stream:
            stream.write(text)
    except FileExistsError:
        raise PipelineError(f"{path}: error: already exists; choose another id") from None
    except OSError as error:
        raise PipelineError(f"{path}: error: cannot write: {error.strerror or error}") from None
    return path


def _id_in_use(script_id: str, folders: list[Path]) -> Place | None:
    """Where a script under ``folders`` has this id (its ``id:`` value, else its file name)."""
    import yaml

    from pipeline.project.discovery import find_scripts
    from pipeline.script.load import LoadFailed, load_document, place_of

    existing = [folder for folder in folders if folder.is_dir()]
    for script in find_scripts(dict.fromkeys(existing)):
        shown = _shown(script)
        try:
            root = load_document(shown).root
        except LoadFailed:
            root = None
        declared = None
        if isinstance(root, yaml.MappingNode):
            for key, value in root.value:
                if key.value == "id" and isinstance(value, yaml.ScalarNode):
                    declared = value
        if declared is not None and declared.value == script_id:
            return place_of(shown, declared)
        if declared is None and script.stem == script_id:
            return Place(shown, 1, 1)
    return None


def _shown(path: Path) -> Path:
    from pipeline.core.fileio import display_path

    return display_path(path)


def _schema_header(folder: Path, schema: Path | None) -> str:
    """The language-server line naming ``schema`` relative to ``folder``; '' without one."""
    import os

    if schema is None or not schema.is_file():
        return ""
    try:
        relative = os.path.relpath(schema.resolve(), folder.resolve())
    except ValueError:  # another drive (Windows): no relative path leads there
        return ""
    return HEADER.format(schema=Path(relative).as_posix())
