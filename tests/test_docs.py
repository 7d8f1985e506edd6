"""The documentation: every command documented, links that resolve, the module map current."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import cli

ROOT = Path(__file__).resolve().parents[1]
COMMANDS_PAGE = ROOT / "docs" / "commands.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HEADING = re.compile(r"^(#+) (.+?)\s*$", re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def all_commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand, by its full name (``cache prune``)."""
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        yield full, command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{full} ")


def sections(page: Path) -> dict[str, str]:
    """The text under each heading of a Markdown page, by heading."""
    text = page.read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    return {
        match.group(2): text[match.end() : found[i + 1].start() if i + 1 < len(found) else None]
        for i, match in enumerate(found)
    }


def mentions(text: str, option: str) -> bool:
    """Whether ``text`` names ``option`` as a word (``-d`` is not in ``--dry-run``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("name", [name for name, _ in all_commands()])
def test_every_command_has_help_and_is_documented_with_its_options(name: str) -> None:
    command = dict(all_commands())[name]
    assert command.help, f"{name} has no help text"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    documented = sections(COMMANDS_PAGE)
    heading = f"meditate {name}"
    assert heading in documented, f"docs/commands.md has no '# {heading}' section"
    for parameter in command.params:
        if isinstance(parameter, click.Option) and "--help" not in parameter.opts:
            assert any(mentions(documented[heading], opt) for opt in parameter.opts), (
                f"{heading}: {'/'.join(parameter.opts)} is not documented"
            )


def test_the_global_options_are_documented() -> None:
    text = COMMANDS_PAGE.read_text(encoding="utf-8")
    for parameter in cli.params:
        assert isinstance(parameter, click.Option)
        assert any(mentions(text, opt) for opt in parameter.opts), parameter.opts


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve_inside_the_repository(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path_text, _, anchor = target.partition("#")
        path = (page.parent / path_text).resolve() if path_text else page
        assert path.is_relative_to(ROOT), f"{target}: outside the repository"
        assert path.is_file(), f"{target}: no such file"
        if anchor and path.suffix == ".md":
            anchors = {slug(heading) for heading in sections(path)}
            assert anchor in anchors, f"{target}: no such heading"


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"the README does not link docs/{page.name}"


def test_readme_module_table_matches_the_layout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named: set[str] = set()
    for line in readme.splitlines():
        if line.startswith("| `pipeline/"):
            package_cell, modules_cell = line.split("|")[1:3]
            package = re.findall(r"`pipeline/([^`]*)`", package_cell)[0]
            modules = re.findall(r"`([^`]+)`", modules_cell)
            named.update(package + module for module in modules or [""])
    root = ROOT / "pipeline"
    present = {
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "__init__.py" or path.parent.name == "engines"
    } - {"__main__.py"}
    assert sorted(present - named) == [], "modules missing from the README's module table"
    assert sorted(named - present) == [], "the README's module table names modules that are gone"


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", ROOT / "docs" / "scripts.md"], ids=lambda p: p.name
)
def test_the_example_script_validates_without_warnings(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    example = re.search(r"```yaml\n(# yaml-language-server.*?)```", page.read_text(), re.S)
    assert example is not None
    shutil.copy(ROOT / "meditate.yaml", tmp_path / "meditate.yaml")
    shutil.copytree(ROOT / "scripts" / "_snippets", tmp_path / "scripts" / "_snippets")
    (tmp_path / "scripts" / "anxiety").mkdir()
    (tmp_path / "scripts" / "anxiety" / "example.yaml").write_text(example.group(1))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--strict", "scripts/anxiety/example.yaml"])
    assert result.exit_code == 0, result.output


OUTSIDE = re.compile(r"\.\./shared/|team" + r" repository|\b" + "SP" + r"EC\b")
"""References to files a user of this project does not have (spelt so as not to match here)."""


def test_nothing_refers_to_files_outside_the_repository() -> None:
    texts = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder, pattern in (("pipeline", "*.py"), ("tests", "*.py"), ("bench", "*.py"),
                            ("docs", "*.md"), ("scripts", "*.yaml")):  # fmt: skip
        texts += sorted((ROOT / folder).rglob(pattern))
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in texts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []
