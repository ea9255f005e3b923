"""Installing and removing the desktop entry and icons under a prefix, per the freedesktop specs."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from core.errors import InvalidArgument
from gui.desktop_entry import (
    ICON_SIZES,
    desktop_entry_text,
    install_desktop_entry,
    launcher_path,
    uninstall_desktop_entry,
)


def _main_group(desktop_file: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(desktop_file.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def _files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def test_install_writes_the_desktop_file_into_applications(qapp: object, tmp_path: Path) -> None:
    install_desktop_entry(tmp_path)
    entry = _main_group(tmp_path / "applications" / "layerdeck.desktop")
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Layerdeck"


def test_installed_entry_starts_the_installed_layerdeck_command(
    qapp: object, tmp_path: Path
) -> None:
    install_desktop_entry(tmp_path)
    entry = _main_group(tmp_path / "applications" / "layerdeck.desktop")
    program = Path(shlex.split(entry["Exec"])[0])
    assert program == launcher_path()
    assert program.name == "layerdeck"
    assert program.is_file()
    assert os.access(program, os.X_OK)


def test_installed_entry_names_the_layerdeck_icon(qapp: object, tmp_path: Path) -> None:
    install_desktop_entry(tmp_path)
    entry = _main_group(tmp_path / "applications" / "layerdeck.desktop")
    assert entry["Icon"] == "layerdeck"


def test_install_renders_a_square_png_icon_of_each_size(qapp: object, tmp_path: Path) -> None:
    install_desktop_entry(tmp_path)
    for size in ICON_SIZES:
        png = tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "layerdeck.png"
        image = QImage(str(png))
        assert (image.width(), image.height()) == (size, size), png
        centre = image.pixelColor(size // 2, size // 2)
        assert centre.alpha() > 0, f"{png} is blank in the middle"


def test_install_returns_every_file_it_wrote(qapp: object, tmp_path: Path) -> None:
    written = install_desktop_entry(tmp_path)
    assert set(written) == _files_under(tmp_path)
    assert len(written) == len(ICON_SIZES) + 2  # the PNGs, the SVG and the .desktop file


def test_installed_desktop_file_passes_desktop_file_validate(qapp: object, tmp_path: Path) -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate (Debian's desktop-file-utils) is not installed")
    install_desktop_entry(tmp_path)
    desktop_file = tmp_path / "applications" / "layerdeck.desktop"
    result = subprocess.run([validator, str(desktop_file)], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 0 and not errors, result.stdout + result.stderr


def test_uninstall_removes_exactly_the_installed_files(qapp: object, tmp_path: Path) -> None:
    other_entry = tmp_path / "applications" / "other.desktop"
    other_icon = tmp_path / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    for unrelated in (other_entry, other_icon):
        unrelated.parent.mkdir(parents=True, exist_ok=True)
        unrelated.write_text("not ours")
    written = install_desktop_entry(tmp_path)
    removed = uninstall_desktop_entry(tmp_path)
    assert set(removed) == set(written)
    assert _files_under(tmp_path) == {other_entry, other_icon}


def test_uninstall_of_nothing_installed_removes_nothing(tmp_path: Path) -> None:
    assert uninstall_desktop_entry(tmp_path) == []


def test_default_prefix_is_xdg_data_home(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    written = install_desktop_entry()
    assert tmp_path / "applications" / "layerdeck.desktop" in written


def test_exec_quotes_a_launcher_path_with_spaces_and_dollars() -> None:
    text = desktop_entry_text("[Desktop Entry]\nExec=layerdeck\n", Path("/opt/my $apps/layerdeck"))
    assert 'Exec="/opt/my \\\\$apps/layerdeck"\n' in text


def test_keys_missing_from_the_template_are_added_to_its_main_group() -> None:
    template = "[Desktop Entry]\nType=Application\nName=Layerdeck\n\n[Desktop Action build]\n"
    text = desktop_entry_text(template, Path("/usr/bin/layerdeck"))
    main_group = text.split("[Desktop Action build]")[0]
    assert "Exec=/usr/bin/layerdeck\n" in main_group
    assert "Icon=layerdeck\n" in main_group


def test_template_without_a_desktop_entry_group_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"\[Desktop Entry\]"):
        desktop_entry_text("[Something Else]\nName=x\n", Path("/usr/bin/layerdeck"))


def test_install_where_a_file_blocks_the_icon_folder_says_so(qapp: object, tmp_path: Path) -> None:
    (tmp_path / "icons").write_text("a file where the icon theme folder should be")
    with pytest.raises(InvalidArgument, match="Cannot install the desktop entry"):
        install_desktop_entry(tmp_path)
