"""Packaging: the wheel carries resources/, the desktop entry and icon are valid, the changelog and
the guide are in step with the code. (The full checks, a fresh venv and a PyInstaller build, are
packaging/test_wheel.sh and packaging/build.sh: minutes each, so not part of the suite.)"""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from unlearn_studio import __version__

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _setuptools_builds_wheels_in_place() -> bool:
    """setuptools ≥ 70.1 has bdist_wheel built in, so no isolated build env (and no `wheel`) is needed."""
    try:
        major, minor = (int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)]
    if _setuptools_builds_wheels_in_place():
        command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out)
    assert result.returncode == 0, f"building the wheel failed:\n{result.stdout}\n{result.stderr}"
    wheels = list(out.glob("unlearn_studio-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {wheels}"
    assert f"-{__version__}-" in wheels[0].name
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_carries_resources(wheel_names):
    for required in ("entities/known.json", "entities/unknown.json", "entities/templates.json",
                     "text/generic_retain.txt", "text/generic_heldout.txt",
                     "icons/unlearn-studio.svg", "icons/unlearn-studio.png", "unlearn-studio.desktop"):
        assert f"unlearn_studio/resources/{required}" in wheel_names, f"the wheel lacks resources/{required}"
    # Every shipped file, whatever is added later (the demo SAE in resources/demo_sae/ included).
    shipped = [p.relative_to(RESOURCES).as_posix() for p in RESOURCES.rglob("*") if p.is_file()]
    missing = [name for name in shipped if f"unlearn_studio/resources/{name}" not in wheel_names]
    assert not missing, f"resources/ files missing from the wheel: {missing}"
    if (RESOURCES / "demo_sae").is_dir():
        assert any(n.startswith("unlearn_studio/resources/demo_sae/") and n.endswith(".safetensors") for n in wheel_names)


def test_wheel_carries_code_and_console_script(wheel, wheel_names):
    for module in ("unlearn_studio/__init__.py", "unlearn_studio/cli.py", "unlearn_studio/engine/paths.py",
                   "unlearn_studio/gui/app.py"):
        assert module in wheel_names
    assert not any(n.startswith(("tests/", "bench/", "packaging/")) for n in wheel_names)
    entry_points = next(n for n in wheel_names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]" in text and "unlearn-studio = unlearn_studio.cli:main" in text
    metadata = zipfile.ZipFile(wheel).read(entry_points.replace("entry_points.txt", "METADATA")).decode()
    assert f"Version: {__version__}" in metadata


def test_version_and_resources_link_are_declared():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["unlearn-studio"] == "unlearn_studio.cli:main"
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "unlearn_studio.__version__"}
    link = ROOT / "unlearn_studio" / "resources"
    assert link.is_symlink() and link.resolve() == RESOURCES.resolve(), "unlearn_studio/resources must link to ../resources"


def test_desktop_entry_parses_and_names_the_icon():
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read(RESOURCES / "unlearn-studio.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Unlearn Studio"
    assert entry["Exec"].split()[0] == "unlearn-studio"
    assert entry["Icon"] == "unlearn-studio"
    assert (RESOURCES / "icons" / f"{entry['Icon']}.svg").is_file()
    categories = entry["Categories"]
    assert categories.endswith(";") and {"Science", "Education", "Development"} <= set(categories.split(";"))
    assert entry.get("Terminal") == "false"


def test_svg_icon_is_valid_square_svg():
    root = ElementTree.parse(RESOURCES / "icons" / "unlearn-studio.svg").getroot()
    assert root.tag == f"{SVG_NS}svg"
    x, y, width, height = (float(v) for v in root.get("viewBox").split())
    assert width == height > 0
    assert len(list(root.iter())) > 5  # it draws something


def test_png_icon_is_256_square():
    data = (RESOURCES / "icons" / "unlearn-studio.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)


def test_changelog_has_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    match = re.search(rf"^## \[{re.escape(__version__)}\] - (\d{{4}}-\d{{2}}-\d{{2}})$", text, re.MULTILINE)
    assert match, f"CHANGELOG.md has no '## [{__version__}] - YYYY-MM-DD' section"


def test_guide_pictures_exist():
    guide = ROOT / "docs" / "guide.md"
    text = guide.read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert pictures, "the guide shows no screenshot"
    missing = [p for p in pictures if not (guide.parent / p).is_file()]
    assert not missing, f"docs/guide.md links pictures that do not exist: {missing}"


def test_packaging_scripts_parse():
    for script in ("build.sh", "test_wheel.sh"):
        result = subprocess.run(["bash", "-n", str(ROOT / "packaging" / script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    for source in ("unlearn-studio.spec", "launcher.py", "render_icon.py"):
        path = ROOT / "packaging" / source
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


BINDING_STRESS = """
import sys
from PySide6.QtCore import QObject, Signal

class Probe(QObject):
    ping = Signal()

probe = Probe()
true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
for _ in range(5000):  # the window makes thousands of these during one run
    probe.ping.emit()
    probe.setObjectName("probe")  # a method returning nothing
print(sys.getrefcount(True) - true_before, sys.getrefcount(None) - none_before)
"""


def test_qt_binding_keeps_its_references_to_true_and_none():
    """PySide6 6.12.0 on Python 3.11 releases a reference to True at every emit and one to None at every
    method returning nothing, until the interpreter aborts (issue 18: the built app died at every exit)."""
    result = subprocess.run([sys.executable, "-c", BINDING_STRESS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"the Qt binding aborted the interpreter:\n{result.stderr[-2000:]}"
    # A leaking binding loses one reference per call (−5000 here); ±a few come from the interpreter's own objects.
    true_change, none_change = (int(v) for v in result.stdout.split())
    assert abs(true_change) < 50 and abs(none_change) < 50, f"references to True and None lost: {result.stdout}"


def test_a_binding_that_loses_references_is_refused(monkeypatch):
    from unlearn_studio.errors import UserError
    from unlearn_studio.gui import app

    counts = iter([5000, 5000 - app.BINDING_PROBE_EMITS])  # what 6.12.0 on Python 3.11 does to True
    monkeypatch.setattr(app, "sys", type("FakeSys", (), {"getrefcount": staticmethod(lambda _obj: next(counts)),
                                                          "version": sys.version}))
    with pytest.raises(UserError, match=r"pyside6-essentials<6\.12"):
        app.check_bindings()


@pytest.mark.parametrize("scenario", ["window", "run"])  # build.sh also quits right after a load
def test_launcher_checks_quit_through_the_file_menu_with_exit_code_0(scenario, tmp_path, tiny_model_dir, tiny_sae_dir):
    """The checks packaging/build.sh runs on the built binary, here on the source tree: open the window
    (and load a model, or start a run), then File → Quit; the process must end with exit code 0."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this tree, not an install
    env = {**os.environ, "PYTHONPATH": path, "QT_QPA_PLATFORM": "offscreen", "UNLEARN_STUDIO_DATA": str(tmp_path / "data"),
           "UNLEARN_STUDIO_SMOKE_TIMEOUT_S": "150"}
    if scenario == "window":
        env |= {"UNLEARN_STUDIO_SMOKE_MS": "300", "UNLEARN_STUDIO_SMOKE_SHOT": str(tmp_path / "shot.png")}
    else:
        env |= {"UNLEARN_STUDIO_SMOKE_QUIT": scenario, "UNLEARN_STUDIO_SMOKE_MODEL": str(tiny_model_dir),
                "UNLEARN_STUDIO_SMOKE_SAE": str(tiny_sae_dir)}
    result = subprocess.run([sys.executable, str(ROOT / "packaging" / "launcher.py")], capture_output=True,
                            text=True, timeout=240, env=env, cwd=tmp_path)
    assert result.returncode == 0, f"exit code {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "Fatal Python error" not in result.stderr
    quit_line = next(line for line in result.stdout.splitlines() if "File → Quit" in line)
    if scenario == "window":
        assert f"window 'Unlearn Studio {__version__}' visible=True" in result.stdout
        assert (tmp_path / "shot.png").stat().st_size > 1000
        assert "job running: none" in quit_line
    elif scenario == "loaded":
        assert "loaded " in result.stdout and "job running: none" in quit_line
    else:
        assert "run at step 1" in result.stdout and "job running: run" in quit_line
        runs = list((tmp_path / "data" / "runs").iterdir())
        assert len(runs) == 1 and (runs[0] / "metrics.jsonl").read_text().strip(), "the stopped run kept no metrics"
