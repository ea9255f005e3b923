#!/usr/bin/env bash
# Builds Layerdeck's wheel and one-folder bundle (packaging/dist/layerdeck/, PyInstaller),
# then its AppDir and squashfs image, and the AppImage when a runtime is at hand
# (see packaging/appimage/recipe.sh and packaging/README.md).
#
# On a fresh Debian machine it installs what it needs: binutils (PyInstaller strips and
# inspects binaries with it), squashfs-tools, python3-venv, and the X libraries Qt's xcb
# window needs, so the bundle carries them to machines that lack them. Python packages go
# into a build environment of their own (packaging/build/venv): PyInstaller and the
# project with its dependencies, and nothing else, so nothing else reaches the bundle.
#
# Environment: LAYERDECK_APPIMAGE_RUNTIME (a type-2 runtime file: also assemble the
# AppImage), LAYERDECK_SKIP_APPIMAGE=1 (stop after the bundle), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build="$root/packaging/build"
dist="$root/packaging/dist"
python="${PYTHON:-python3}"

need_debian=""
command -v objdump >/dev/null 2>&1 || need_debian="$need_debian binutils"
command -v mksquashfs >/dev/null 2>&1 || need_debian="$need_debian squashfs-tools"
"$python" -c 'import ensurepip, venv' 2>/dev/null || need_debian="$need_debian python3-venv"
if command -v dpkg-query >/dev/null 2>&1; then
    # The same X libraries packaging/launch installs for the window: one list, kept there.
    window_packages="$(sed -n 's/^XCB_PACKAGES="\(.*\)"$/\1/p' packaging/launch)"
    if [ -z "$window_packages" ]; then
        echo "error: packaging/launch no longer lists XCB_PACKAGES=\"...\"" >&2
        exit 1
    fi
    for pkg in $window_packages; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || need_debian="$need_debian $pkg"
    done
fi
if [ -n "$need_debian" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "error: the build needs these Debian packages:$need_debian" >&2
        echo "install them as root with: apt-get install -y --no-install-recommends$need_debian" >&2
        exit 1
    fi
    echo "Installing Debian packages:$need_debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $need_debian >/dev/null
fi

venv="$build/venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
echo "Building the wheel"
mkdir -p "$dist"
rm -f "$dist"/layerdeck-*.whl
# From a copy of the tree without git-ignored files: setuptools builds in ./build and
# would ship whatever an earlier build left in build/lib, deleted modules included.
source="$build/wheel-source"
rm -rf "$source"
mkdir -p "$source"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} sh -c 'test -e "$1" && printf "%s\0" "$1"' _ {} \
        | tar --null -T - -cf - | tar -C "$source" -xf -
else
    # Not a git checkout (an unpacked source archive): everything but build output.
    tar --exclude=./build --exclude=./packaging/build --exclude=./packaging/dist \
        --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$source" -xf -
fi
"${pip[@]}" wheel --no-deps --wheel-dir "$dist" "$source"
rm -rf "$source"
wheel="$(ls "$dist"/layerdeck-*.whl)"
echo "wheel: $wheel"
echo "Installing PyInstaller and Layerdeck into $venv"
"${pip[@]}" install "pyinstaller>=6.10" "$wheel"
# The same version number may hold older metadata; the bundle copies this wheel's.
"${pip[@]}" install --no-deps --force-reinstall "$wheel"

echo "Building the bundle"
started=$SECONDS
"$venv/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$dist" --workpath "$build/pyinstaller" packaging/layerdeck.spec
"$dist/layerdeck/layerdeck" --version
echo "bundle: $dist/layerdeck ($(du -sh "$dist/layerdeck" | cut -f1), built in $((SECONDS - started)) s)"

if [ "${LAYERDECK_SKIP_APPIMAGE:-}" = 1 ]; then
    exit 0
fi
PYTHON="$venv/bin/python" bash packaging/appimage/recipe.sh "$dist/layerdeck" "$build/appimage" "$dist"
