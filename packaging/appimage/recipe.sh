#!/usr/bin/env bash
# Turns the one-folder bundle into an AppDir, its squashfs image and, when a type-2 AppImage
# runtime is at hand, the AppImage.
#
#   packaging/appimage/recipe.sh BUNDLE_DIR WORK_DIR OUT_DIR
#
# BUNDLE_DIR is PyInstaller's dist/layerdeck; the AppDir and the squashfs image go to
# WORK_DIR, the AppImage to OUT_DIR. PYTHON must name a Python that can import gui (it
# renders the icons). LAYERDECK_APPIMAGE_RUNTIME names the type-2 runtime file:
# packaging/build.sh builds one from packaging/appimage/runtime.c and passes it here (any
# other type-2 runtime works too). LAYERDECK_SQUASHFS_COMPRESSION picks mksquashfs's
# compressor: default zstd, which our runtime's libsquashfuse reads (Debian builds it with
# zlib, xz, lzo, lz4 and zstd), as does the AppImage project's own runtime.
#
# An AppImage is that runtime (a small static ELF that mounts the image appended to it
# and starts AppRun) followed by the squashfs image of the AppDir. Neither Debian nor PyPI
# ships a runtime, which is why packaging/build.sh compiles its own; without
# LAYERDECK_APPIMAGE_RUNTIME this stops after the squashfs image and says so.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 BUNDLE_DIR WORK_DIR OUT_DIR" >&2
    exit 2
fi
bundle="$(readlink -f "$1")"
work="$(readlink -f "$2")"
out="$(readlink -f "$3")"
here="$(dirname "$(readlink -f "$0")")"
root="$(dirname "$(dirname "$here")")"
python="${PYTHON:-python3}"
compression="${LAYERDECK_SQUASHFS_COMPRESSION:-zstd}"
arch="$(uname -m)"

if [ ! -x "$bundle/layerdeck" ]; then
    echo "error: $bundle/layerdeck is missing; build the bundle first (packaging/build.sh)" >&2
    exit 1
fi
if ! command -v mksquashfs >/dev/null 2>&1; then
    echo "error: mksquashfs is missing; install Debian's squashfs-tools" >&2
    exit 1
fi

appdir="$work/AppDir"
rm -rf "$appdir"
mkdir -p "$appdir/usr/lib" "$appdir/usr/bin" "$appdir/usr/share/applications" "$out"

# The bundle, a command on the AppDir's PATH, and the entry point.
cp -a "$bundle" "$appdir/usr/lib/layerdeck"
ln -s ../lib/layerdeck/layerdeck "$appdir/usr/bin/layerdeck"
install -m 0755 "$here/AppRun" "$appdir/AppRun"

# The desktop entry (Exec is the command's name, as the AppImage spec wants) and the icons:
# the AppDir's own icon and .DirIcon, and the hicolor set desktop integration copies.
(
    cd "$root"
    "$python" - "$appdir" <<'PYTHON'
"""Write the AppDir's desktop entry and icons from resources/."""

import shutil
import sys
from pathlib import Path

from gui.desktop_entry import ICON_SIZES, desktop_entry_text, render_icon_pngs
from gui.icons import resources_dir

appdir = Path(sys.argv[1])
template = (resources_dir() / "layerdeck.desktop").read_text(encoding="utf-8")
entry = desktop_entry_text(template, Path("layerdeck"), try_exec=False)
for desktop_file in ("layerdeck.desktop", "usr/share/applications/layerdeck.desktop"):
    (appdir / desktop_file).write_text(entry, encoding="utf-8")
svg = resources_dir() / "layerdeck.svg"
hicolor = appdir / "usr/share/icons/hicolor"
targets = {size: hicolor / f"{size}x{size}/apps/layerdeck.png" for size in ICON_SIZES}
render_icon_pngs(svg, targets)
(hicolor / "scalable/apps").mkdir(parents=True)
shutil.copyfile(svg, hicolor / "scalable/apps/layerdeck.svg")
shutil.copyfile(targets[256], appdir / "layerdeck.png")
PYTHON
)
ln -s layerdeck.png "$appdir/.DirIcon"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$appdir/layerdeck.desktop"
fi
echo "AppDir: $appdir"

# The AppImage payload: the AppDir as a squashfs image, owned by root like a package's.
image="$work/layerdeck-$arch.squashfs"
rm -f "$image"
mksquashfs "$appdir" "$image" -root-owned -noappend -no-progress -quiet -comp "$compression"
echo "squashfs image: $image ($(du -h "$image" | cut -f1))"

appimage="$out/Layerdeck-$arch.AppImage"
runtime="${LAYERDECK_APPIMAGE_RUNTIME:-}"
if [ -z "$runtime" ]; then
    rm -f "$appimage"
    cat <<EOF
AppImage: not assembled: no runtime given. packaging/build.sh builds one (from
packaging/appimage/runtime.c) and passes it as LAYERDECK_APPIMAGE_RUNTIME; by hand:
    LAYERDECK_APPIMAGE_RUNTIME=/path/to/runtime-$arch bash $0 BUNDLE_DIR WORK_DIR OUT_DIR
Meanwhile the image runs as it is: squashfuse "$image" MOUNTPOINT && MOUNTPOINT/AppRun
(or unsquashfs it and start squashfs-root/AppRun).
EOF
    exit 0
fi
if [ ! -f "$runtime" ] || [ "$(head -c 4 "$runtime" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    echo "error: $runtime is not an AppImage runtime (an ELF executable)" >&2
    exit 1
fi
# The runtime finds its payload right after its own ELF image, so the file is just both.
cat "$runtime" "$image" > "$appimage.partial"
chmod 0755 "$appimage.partial"
mv "$appimage.partial" "$appimage"
echo "AppImage: $appimage ($(du -h "$appimage" | cut -f1))"
