"""The packaged app: packaging/build.sh's wheel, one-folder bundle and AppImage run.

The build runs once per test session (a minute or two); every test here uses its output.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 1800
RUN_TIMEOUT = 120
IMAGES_HEADER = ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]


@dataclass(frozen=True)
class Build:
    """What one run of packaging/build.sh produced."""

    output: str
    bundle: Path
    wheel: Path
    appdir: Path
    squashfs: Path
    appimage: Path

    @property
    def executable(self) -> Path:
        """The bundle's `layerdeck` program."""
        return self.bundle / "layerdeck"


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """Run packaging/build.sh once, with the AppImage runtime it builds itself."""
    env = dict(os.environ)
    env.pop("LAYERDECK_APPIMAGE_RUNTIME", None)
    env.pop("LAYERDECK_SKIP_APPIMAGE", None)
    log_file = tmp_path_factory.mktemp("packaging") / "build.log"
    with log_file.open("w") as log:
        result = subprocess.run(
            ["bash", str(ROOT / "packaging" / "build.sh")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
        )
    output = log_file.read_text(errors="replace")
    if result.returncode != 0:
        pytest.fail(f"packaging/build.sh exited {result.returncode}:\n{output[-6000:]}")
    dist = ROOT / "packaging" / "dist"
    wheels = sorted(dist.glob("layerdeck-*.whl"))
    assert len(wheels) == 1, wheels
    appimage_work = ROOT / "packaging" / "build" / "appimage"
    yield Build(
        output=output,
        bundle=dist / "layerdeck",
        wheel=wheels[0],
        appdir=appimage_work / "AppDir",
        squashfs=next(appimage_work.glob("layerdeck-*.squashfs")),
        appimage=next(dist.glob("Layerdeck-*.AppImage")),
    )


def _app_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LAYERDECK_STORE", "DOCKER_HOST", "DOCKER_CONTEXT", "PYTHONPATH")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        QT_QPA_PLATFORM="offscreen",
    )
    env.update(extra)
    return env


def _run(argv: list[str], home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=_app_env(home, **extra),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_bundled_cli_lists_an_empty_store(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.executable), "--store", str(tmp_path / "store"), "images"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == IMAGES_HEADER
    assert lines[1:] == []


def test_bundled_window_lists_the_store_and_quits(build: Build, tmp_path: Path) -> None:
    result = _run(
        [str(build.executable), "--store", str(tmp_path / "store")],
        tmp_path,
        LAYERDECK_EXIT_AFTER_SHOW="1",
    )
    assert result.returncode == 0, result.stderr
    assert "listed 0 images" in result.stdout
    assert "Traceback" not in result.stderr


def test_bundled_install_desktop_entry_points_the_menu_at_the_bundle(
    build: Build, tmp_path: Path
) -> None:
    result = _run([str(build.executable), "--install-desktop-entry"], tmp_path)
    assert result.returncode == 0, result.stderr
    desktop_file = tmp_path / "data" / "applications" / "layerdeck.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(desktop_file.read_text(encoding="utf-8"))
    assert parser["Desktop Entry"]["Exec"].split()[0] == str(build.executable)
    png = tmp_path / "data" / "icons" / "hicolor" / "512x512" / "apps" / "layerdeck.png"
    assert _png_size(png) == (512, 512)


def test_bundle_reports_the_project_version(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.executable), "--version"], tmp_path)
    version = build.wheel.name.split("-")[1]
    assert result.stdout.strip() == f"layerdeck {version}"


def test_bundle_carries_the_native_modules_the_store_runs_on(build: Build) -> None:
    internal = build.bundle / "_internal"
    for pattern in ("isal/isal_zlib*.so", "zstandard/backend_c*.so", "dockerfile*.so"):
        assert list(internal.glob(pattern)), f"no {pattern} in the bundle"
    modules = _archived_modules(build)
    for package in ("docker", "requests", "platformdirs", "isal", "zstandard"):
        assert package in modules, package


def test_bundle_carries_the_resources(build: Build) -> None:
    bundled = build.bundle / "_internal" / "resources"
    expected = {p.relative_to(ROOT / "resources") for p in _files(ROOT / "resources")}
    assert {p.relative_to(bundled) for p in _files(bundled)} == expected


def test_bundle_keeps_the_qt_plugins_the_window_needs(build: Build) -> None:
    plugins = build.bundle / "_internal" / "PySide6" / "Qt" / "plugins"
    for plugin in (
        "platforms/libqoffscreen.so",
        "platforms/libqxcb.so",
        "platforms/libqwayland.so",
        "imageformats/libqsvg.so",
        "iconengines/libqsvgicon.so",
    ):
        assert (plugins / plugin).is_file(), plugin


def test_bundle_leaves_out_what_the_app_does_not_use(build: Build) -> None:
    unwanted = (
        "WebEngine",
        "Qt6Qml",
        "Qt6Quick",
        "Qt63D",
        "Qt6Multimedia",
        "Qt6Pdf",
        "Qt6Network",
        "QtNetwork.abi3",
        "libgtk",
        "tkinter",
        "libqeglfs",
        "libqvnc",
    )
    names = [str(path.relative_to(build.bundle)) for path in _files(build.bundle)]
    found = [name for name in names if any(part in name for part in unwanted)]
    assert found == []
    modules = _archived_modules(build)
    unused = ("unittest", "tkinter", "pytest", "pydoc", "setuptools", "cffi", "PySide6.QtNetwork")
    assert {m for m in modules if m.split(".")[0] in unused or m in unused} == set()


def test_bundle_has_no_dangling_links(build: Build) -> None:
    dangling = [p for p in build.bundle.rglob("*") if p.is_symlink() and not p.exists()]
    assert dangling == []


def test_build_links_the_appimage_runtime_statically(build: Build) -> None:
    assert re.search(r"^runtime: .*runtime-\S+ \(\d+ bytes, static\)$", build.output, re.M)
    assert f"AppImage: {build.appimage} " in build.output


def test_appimage_is_an_elf_with_the_type2_magic(build: Build) -> None:
    with build.appimage.open("rb") as appimage:
        head = appimage.read(16)
    assert head[:4] == b"\x7fELF"
    assert head[8:11] == b"AI\x02"
    assert os.access(build.appimage, os.X_OK)


def test_appimage_offset_is_where_the_squashfs_image_starts(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.appimage), "--appimage-offset"], tmp_path)
    assert result.returncode == 0, result.stderr
    offset = int(result.stdout)
    with build.appimage.open("rb") as appimage:
        appimage.seek(offset)
        assert appimage.read(4) == b"hsqs"
    assert build.appimage.stat().st_size == offset + build.squashfs.stat().st_size


def test_appimage_extract_and_run_lists_an_empty_store_without_fuse(
    build: Build, tmp_path: Path
) -> None:
    result = _run(
        [str(build.appimage), "--store", str(tmp_path / "store"), "images"],
        tmp_path,
        APPIMAGE_EXTRACT_AND_RUN="1",
        TMPDIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == IMAGES_HEADER
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("appimage_")] == []


def test_appimage_extract_writes_squashfs_root_with_apprun(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.appimage), "--appimage-extract"], tmp_path)
    assert result.returncode == 0, result.stderr
    apprun = tmp_path / "squashfs-root" / "AppRun"
    assert apprun.is_file()
    assert os.access(apprun, os.X_OK)
    assert (tmp_path / "squashfs-root" / ".DirIcon").readlink() == Path("layerdeck.png")


needs_fuse = pytest.mark.skipif(
    not os.access("/dev/fuse", os.R_OK | os.W_OK), reason="/dev/fuse is not usable here"
)


@needs_fuse
def test_appimage_mounts_with_fuse_runs_and_leaves_no_mount(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.appimage), "--version"], tmp_path, TMPDIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    version = build.wheel.name.split("-")[1]
    assert result.stdout.strip() == f"layerdeck {version}"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mount_")] == []


@needs_fuse
def test_appimage_exits_with_the_applications_exit_code(build: Build, tmp_path: Path) -> None:
    result = _run([str(build.appimage), "no-such-command"], tmp_path, TMPDIR=str(tmp_path))
    assert result.returncode == 2
    assert "invalid choice: 'no-such-command'" in result.stderr


def test_appimage_payload_runs_the_cli_through_apprun(build: Build, tmp_path: Path) -> None:
    unsquashfs = shutil.which("unsquashfs")
    assert unsquashfs is not None, "build.sh installs squashfs-tools, which has unsquashfs"
    extracted = tmp_path / "squashfs-root"
    subprocess.run(
        [unsquashfs, "-q", "-no-progress", "-d", str(extracted), str(build.squashfs)],
        check=True,
        capture_output=True,
        timeout=RUN_TIMEOUT,
    )
    result = _run(
        [str(extracted / "AppRun"), "--store", str(tmp_path / "store"), "images"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == IMAGES_HEADER


def test_appdir_desktop_entry_starts_layerdeck_with_its_icon(build: Build) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((build.appdir / "layerdeck.desktop").read_text(encoding="utf-8"))
    entry = parser["Desktop Entry"]
    assert entry["Exec"].split()[0] == "layerdeck"
    assert entry["Icon"] == "layerdeck"
    assert (build.appdir / "usr" / "bin" / "layerdeck").exists()
    assert _png_size(build.appdir / "layerdeck.png") == (256, 256)
    assert (build.appdir / ".DirIcon").resolve() == (build.appdir / "layerdeck.png").resolve()


def test_wheel_carries_every_resource(build: Build) -> None:
    with zipfile.ZipFile(build.wheel) as wheel:
        names = set(wheel.namelist())
    expected = {
        f"resources/{p.relative_to(ROOT / 'resources')}" for p in _files(ROOT / "resources")
    }
    assert expected - names == set()


def test_installed_wheel_finds_its_resources(build: Build, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(target), str(build.wheel)],
        check=True,
        capture_output=True,
        timeout=RUN_TIMEOUT,
    )
    probe = (
        "import gui.icons; d = gui.icons.resources_dir(); "
        "print(gui.icons.__file__); print((d / 'layerdeck.svg').is_file())"
    )
    result = _run([sys.executable, "-c", probe], tmp_path, PYTHONPATH=str(target))
    assert result.returncode == 0, result.stderr
    module_file, svg_found = result.stdout.split()
    assert Path(module_file).is_relative_to(target)
    assert svg_found == "True"


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _archived_modules(build: Build) -> set[str]:
    """The dotted names of the Python modules in the bundle's PYZ archive."""
    archive_viewer = ROOT / "packaging" / "build" / "venv" / "bin" / "pyi-archive_viewer"
    result = subprocess.run(
        [str(archive_viewer), "--recursive", str(build.executable)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("(PYZ):", 1)[1]
    return set(re.findall(r"'([^']+)'$", listing, re.MULTILINE))
