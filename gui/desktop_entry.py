"""Install and uninstall Layerdeck's desktop entry and icons for the current user.

The .desktop file goes to `<data home>/applications/` (Desktop Entry Specification) and the
icon to `<data home>/icons/hicolor/<size>x<size>/apps/` as PNGs rendered from
resources/layerdeck.svg with QtSvg, plus the SVG itself under `scalable/apps/` (Icon Theme
Specification). The data home is `$XDG_DATA_HOME`, else `~/.local/share`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSize, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from core.errors import InvalidArgument, NotFound
from gui.icons import resources_dir

log = logging.getLogger(__name__)

APP_ID = "layerdeck"
# The hicolor theme's fixed-size directories from 16 to 512 that desktops look in.
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
COMMAND_NAME = "layerdeck"

# Characters that force an Exec argument into double quotes (Desktop Entry Spec, "Exec key").
_EXEC_RESERVED = re.compile(r"[\s\"'\\><~|&;$*?#()`]")
# Characters that must be backslash-escaped inside a quoted Exec argument.
_EXEC_QUOTED_ESCAPES = re.compile(r"([\"`$\\])")


def data_home() -> Path:
    """The user's XDG data directory: `$XDG_DATA_HOME`, else `~/.local/share`."""
    configured = os.environ.get("XDG_DATA_HOME", "")
    # The Base Directory spec says a relative value is invalid and must be ignored.
    if configured and Path(configured).is_absolute():
        return Path(configured)
    return Path.home() / ".local" / "share"


def launcher_path() -> Path:
    """The installed `layerdeck` program that the desktop entry should start."""
    appimage = os.environ.get("APPIMAGE")
    if getattr(sys, "frozen", False):
        # Inside an AppImage the bundle lives on a temporary mount; the .AppImage file stays.
        if appimage:
            return Path(appimage)
        return Path(sys.executable)
    candidates = [Path(sysconfig.get_path("scripts")) / COMMAND_NAME]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        candidates.append(Path(sysconfig.get_path("scripts", user_scheme)) / COMMAND_NAME)
    on_path = shutil.which(COMMAND_NAME)
    if on_path is not None:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NotFound(
        "There is no installed `layerdeck` command to point the desktop entry at; "
        "install Layerdeck first (pip install layerdeck, or ./packaging/launch)."
    )


def entry_paths(prefix: Path | None = None) -> list[Path]:
    """Every file install_desktop_entry writes under prefix (default: the data home)."""
    root = data_home() if prefix is None else prefix
    icons = root / "icons" / "hicolor"
    paths = [root / "applications" / f"{APP_ID}.desktop"]
    paths += [icons / f"{size}x{size}" / "apps" / f"{APP_ID}.png" for size in ICON_SIZES]
    paths.append(icons / "scalable" / "apps" / f"{APP_ID}.svg")
    return paths


def install_desktop_entry(prefix: Path | None = None) -> list[Path]:
    """Write the .desktop file and the icons under prefix; return the files written."""
    root = data_home() if prefix is None else prefix
    svg = _resource("layerdeck.svg")
    template = _resource("layerdeck.desktop")
    desktop_text = desktop_entry_text(template.read_text(encoding="utf-8"), launcher_path())
    desktop_file, *png_files, svg_file = entry_paths(root)
    try:
        written = render_icon_pngs(svg, dict(zip(ICON_SIZES, png_files, strict=True)))
        _write_atomically(svg_file, svg.read_bytes())
        written.append(svg_file)
        # The entry goes last, so a desktop never lists Layerdeck with a missing icon.
        _write_atomically(desktop_file, desktop_text.encode("utf-8"))
        written.append(desktop_file)
        _mark_icon_theme_changed(root)
    except OSError as error:
        where = error.filename or root
        raise InvalidArgument(
            f"Cannot install the desktop entry: {where}: {error.strerror}."
        ) from error
    log.info("installed the desktop entry and %d icons under %s", len(written) - 1, root)
    return written


def uninstall_desktop_entry(prefix: Path | None = None) -> list[Path]:
    """Remove the files install_desktop_entry writes under prefix; return those removed."""
    root = data_home() if prefix is None else prefix
    removed: list[Path] = []
    for path in entry_paths(root):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise InvalidArgument(f"Cannot remove {path}: {error.strerror}.") from error
        removed.append(path)
    if removed:
        _mark_icon_theme_changed(root)
    log.info("removed %d desktop entry files under %s", len(removed), root)
    return removed


def desktop_entry_text(template: str, launcher: Path, try_exec: bool = True) -> str:
    """The template .desktop text with Exec (and TryExec) set to launcher, Icon to the app."""
    values = {"Exec": _exec_argument(str(launcher)), "Icon": APP_ID}
    if try_exec:
        values["TryExec"] = _escape_string(str(launcher))
    lines = template.splitlines()
    group_start = next(
        (i for i, line in enumerate(lines) if line.strip() == "[Desktop Entry]"), None
    )
    if group_start is None:
        raise InvalidArgument("The desktop entry template has no [Desktop Entry] group.")
    group_end = next(
        (i for i in range(group_start + 1, len(lines)) if lines[i].startswith("[")),
        len(lines),
    )
    group = lines[group_start + 1 : group_end]
    pending = dict(values)
    for index, line in enumerate(group):
        key = line.split("=", 1)[0].strip()
        if "=" in line and key in pending:
            group[index] = f"{key}={pending.pop(key)}"
    # Keys the template lacks go at the end of the group, before any blank separator.
    insert_at = len(group)
    while insert_at > 0 and not group[insert_at - 1].strip():
        insert_at -= 1
    group[insert_at:insert_at] = [f"{key}={value}" for key, value in pending.items()]
    result = [*lines[: group_start + 1], *group, *lines[group_end:]]
    return "\n".join(result) + "\n"


def render_icon_pngs(svg: Path, targets: Mapping[int, Path]) -> list[Path]:
    """Render svg as a transparent PNG of each size into its target path; return the paths."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise InvalidArgument(f"{svg} is not an SVG image Qt can render.")
    with _gui_application():
        written = []
        for size, target in targets.items():
            image = QImage(QSize(size, size), QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter)
            painter.end()
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            if not image.save(str(partial), "PNG"):
                raise InvalidArgument(f"Cannot write the icon {target}.")
            partial.replace(target)
            written.append(target)
    return written


@contextlib.contextmanager
def _gui_application() -> Iterator[None]:
    # Painting SVG text needs Qt's font database, which needs a QGuiApplication; when none
    # runs (the CLI, the build script), an offscreen one needs no display.
    running = QCoreApplication.instance()
    if running is not None:
        if not isinstance(running, QGuiApplication):
            raise InvalidArgument("Icons cannot be rendered under a QCoreApplication.")
        yield
        return
    owned = QGuiApplication([sys.argv[0] if sys.argv else APP_ID, "-platform", "offscreen"])
    try:
        yield
    finally:
        owned.shutdown()


def _resource(name: str) -> Path:
    path = resources_dir() / name
    if not path.is_file():
        raise NotFound(f"Layerdeck's resource {name} is missing from {path.parent}.")
    return path


def _write_atomically(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(content)
    partial.replace(target)


def _mark_icon_theme_changed(root: Path) -> None:
    # Icon caches are ignored once the theme directory is newer than them (Icon Theme
    # Spec), so touching it is enough; running gtk-update-icon-cache would add a file.
    theme = root / "icons" / "hicolor"
    if theme.is_dir():
        os.utime(theme)


def _exec_argument(argument: str) -> str:
    quoted = argument
    if _EXEC_RESERVED.search(argument):
        quoted = '"' + _EXEC_QUOTED_ESCAPES.sub(r"\\\1", argument) + '"'
    # Exec is also a string value: its backslashes are escaped once more, and a literal
    # percent sign would otherwise be read as a field code.
    return _escape_string(quoted).replace("%", "%%")


def _escape_string(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    )
