#!/usr/bin/env bash
# Builds Layerdeck's wheel and one-folder bundle (packaging/dist/layerdeck/, PyInstaller),
# then the AppImage: its runtime (packaging/appimage/runtime.c), the AppDir, the AppDir's
# squashfs image, and the two joined (see packaging/appimage/recipe.sh and
# packaging/README.md).
#
# On a fresh Debian machine it installs what it needs: binutils (PyInstaller strips and
# inspects binaries with it), squashfs-tools, python3-venv, the X libraries Qt's xcb
# window needs, so the bundle carries them to machines that lack them, and gcc with the
# squashfuse, FUSE 3 and compression libraries the runtime is built from. Python packages
# go into a build environment of their own (packaging/build/venv): PyInstaller and the
# project with its dependencies, and nothing else, so nothing else reaches the bundle.
#
# Environment: LAYERDECK_APPIMAGE_RUNTIME (a type-2 runtime file to use instead of the one
# built here), LAYERDECK_SKIP_APPIMAGE=1 (stop after the bundle), PYTHON (default python3).
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
# What the AppImage runtime is compiled and linked from: libsquashfuse (with the
# decompressors it is built with: zlib, xz, lzo, lz4, zstd) and libfuse3, static archives
# included, and libc6-dev's libc.a for a static link.
runtime_packages="gcc libc6-dev libsquashfuse-dev libfuse3-dev zlib1g-dev liblzma-dev"
runtime_packages="$runtime_packages liblzo2-dev liblz4-dev libzstd-dev"
if command -v dpkg-query >/dev/null 2>&1; then
    # The same X libraries packaging/launch installs for the window: one list, kept there.
    window_packages="$(sed -n 's/^XCB_PACKAGES="\(.*\)"$/\1/p' packaging/launch)"
    if [ -z "$window_packages" ]; then
        echo "error: packaging/launch no longer lists XCB_PACKAGES=\"...\"" >&2
        exit 1
    fi
    if [ "${LAYERDECK_SKIP_APPIMAGE:-}" != 1 ] && [ -z "${LAYERDECK_APPIMAGE_RUNTIME:-}" ]; then
        window_packages="$window_packages $runtime_packages"
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
runtime="${LAYERDECK_APPIMAGE_RUNTIME:-}"
if [ -z "$runtime" ]; then
    echo "Building the AppImage runtime"
    runtime="$build/runtime/runtime-$(uname -m)"
    mkdir -p "$build/runtime"
    libraries=(-lsquashfuse_ll -lfuse3 -lzstd -llzma -llzo2 -llz4 -lz -lpthread -ldl)
    # Static when every library ships an archive (Debian's do, glibc's libc.a included), so
    # the AppImage runs on machines without squashfuse or libfuse3; dynamic otherwise.
    link=(-static)
    for archive in libc.a libsquashfuse_ll.a libfuse3.a libzstd.a liblzma.a liblzo2.a \
        liblz4.a libz.a; do
        if [ "$(gcc -print-file-name="$archive")" = "$archive" ]; then
            echo "warning: no $archive: linking the runtime dynamically" >&2
            link=()
            break
        fi
    done
    log="$build/runtime/gcc.log"
    if ! gcc -std=gnu11 -O2 -Wall -Wextra -s "${link[@]}" -o "$runtime.partial" \
        packaging/appimage/runtime.c "${libraries[@]}" 2>"$log"; then
        cat "$log" >&2
        exit 1
    fi
    # A static libfuse3 warns that its module loader's dlopen needs glibc's shared libraries:
    # that loader belongs to the high-level API, which the runtime does not use.
    grep -v -e "fuse_get_module" -e "statically linked applications requires" "$log" >&2 || true
    # The AppImage type-2 magic: 'A' 'I' 2 at offset 8, in the ELF identification padding.
    printf 'AI\002' | dd of="$runtime.partial" bs=1 seek=8 conv=notrunc status=none
    offset="$("$runtime.partial" --appimage-offset)"
    if [ "$offset" != "$(stat -c %s "$runtime.partial")" ]; then
        echo "error: the runtime would look for its image at $offset, not at its own end" >&2
        exit 1
    fi
    mv "$runtime.partial" "$runtime"
    if [ "${#link[@]}" -eq 0 ]; then
        echo "runtime: $runtime ($(stat -c %s "$runtime") bytes, dynamic; it needs:)"
        ldd "$runtime" | sed 's/^/    /'
    else
        echo "runtime: $runtime ($(stat -c %s "$runtime") bytes, static)"
    fi
fi
LAYERDECK_APPIMAGE_RUNTIME="$runtime" PYTHON="$venv/bin/python" \
    bash packaging/appimage/recipe.sh "$dist/layerdeck" "$build/appimage" "$dist"
