"""The package's metadata, license, changelog and links, as pip installed them.

These run in the development virtualenv and, through check.py, against the built
wheel on every supported Python: the metadata read here is the installed one.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import sessionstore
from tests.package.check import PYTHONS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HOME = PROJECT["project"]["urls"]["Homepage"]
README = (ROOT / "README.md").read_text(encoding="utf-8")
METADATA = importlib.metadata.metadata("sessionstore")

_CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.MULTILINE | re.DOTALL)
_LINK_TARGETS = (
    re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)"),  # [text](x), ![alt](x)
    re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", re.MULTILINE),  # [ref]: x
    re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']"),  # <a href="x">, <img src="x">
)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def link_targets(markdown: str) -> list[str]:
    """Every link and image target in ``markdown``, code left out."""
    text = _CODE.sub("", markdown)
    return [match for pattern in _LINK_TARGETS for match in pattern.findall(text)]


def relative(targets: list[str]) -> list[str]:
    return [target for target in targets if not _ABSOLUTE.match(target)]


def test_the_installed_version_is_sessionstore_version() -> None:
    assert "version" in PROJECT["project"]["dynamic"]
    assert "version" not in PROJECT["project"]
    assert importlib.metadata.version("sessionstore") == sessionstore.__version__


def test_the_console_script_prints_the_version() -> None:
    script = Path(sys.executable).with_name("sessionstore")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        f"sessionstore {sessionstore.__version__}\n",
        "",
    )


def test_the_license_is_mit_and_ships_in_the_package() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The sessionstore authors\n")
    assert PROJECT["project"]["license"] == METADATA["License-Expression"] == "MIT"
    assert METADATA.get_all("License-File") == ["LICENSE"]
    files = importlib.metadata.distribution("sessionstore").files or []
    (shipped,) = [file for file in files if file.name == "LICENSE"]
    assert shipped.read_text(encoding="utf-8") == text
    # PEP 639: a license expression excludes license classifiers (PyPI refuses both).
    classifiers = METADATA.get_all("Classifier") or []
    assert not [classifier for classifier in classifiers if classifier.startswith("License ::")]


def test_the_python_classifiers_are_the_pythons_the_check_installs_on() -> None:
    classifiers = METADATA.get_all("Classifier") or []
    versions = [
        match[1]
        for classifier in classifiers
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
    ]
    assert sorted(versions, key=lambda v: tuple(map(int, v.split(".")))) == list(PYTHONS)
    assert METADATA["Requires-Python"] == f">={PYTHONS[0]}"


def test_the_readme_names_the_pythons_the_check_installs_on() -> None:
    (line,) = [line for line in README.splitlines() if "Supported Python versions" in line]
    named = re.findall(r"3\.\d+", line)
    assert named == list(PYTHONS)


def test_every_project_url_is_on_the_home_repository_and_exists_there() -> None:
    urls = dict(entry.split(", ", 1) for entry in METADATA.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert urls["Homepage"] == HOME == "https://github.com/sessionstore/sessionstore"
    for name, url in urls.items():
        assert url == HOME or url.startswith(f"{HOME}/"), name
        in_repository = re.fullmatch(re.escape(HOME) + r"/(?:blob|tree)/main/(.+)", url)
        if in_repository:
            assert (ROOT / in_repository[1]).exists(), url
    hooks = PROJECT["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    for substitution in hooks["substitutions"]:
        assert f"({HOME}" in substitution["replacement"]


def test_every_relative_link_in_the_readme_points_to_a_file() -> None:
    targets = relative(link_targets(README))
    assert any(target.startswith("docs/") for target in targets)
    paths = [target.partition("#")[0] for target in targets if not target.startswith("#")]
    assert [path for path in paths if not (ROOT / path).exists()] == []


def test_the_pypi_description_has_only_absolute_links() -> None:
    assert METADATA["Description-Content-Type"] == "text/markdown"
    description = METADATA.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# sessionstore\n")
    assert relative(link_targets(description)) == []
    assert f"]({HOME}/blob/main/docs/" in description


def test_the_substitutions_make_each_kind_of_relative_link_absolute() -> None:
    hooks = PROJECT["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    text = (
        "See [items](docs/items.md), [a part](docs/sync.md#closing), [up](#install),"
        " ![plot](docs/img/bench-creates.png), [site](https://example.org/a) and"
        " [mail](mailto:a@example.org)."
    )
    for substitution in hooks["substitutions"]:
        text = re.sub(substitution["pattern"], substitution["replacement"], text)
    assert text == (
        f"See [items]({HOME}/blob/main/docs/items.md), [a part]({HOME}/blob/main/docs/sync.md"
        f"#closing), [up]({HOME}#install), ![plot]({HOME}/raw/main/docs/img/bench-creates.png),"
        " [site](https://example.org/a) and [mail](mailto:a@example.org)."
    )


def test_the_changelog_has_an_unreleased_section_then_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1].split(" ")[0] == sessionstore.__version__
