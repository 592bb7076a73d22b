#!/usr/bin/env bash
# The execution environment image (ee/Dockerfile, docs/execution-environment.md).
#
#   scripts/ee.sh wheels   download the pinned wheels of ee/requirements.txt into ee/.build/wheels
#                          (the one step that needs the package index; skipped when the wheels
#                          of the same requirements are there)
#   scripts/ee.sh build    build the image from them and the prosaas.deploy collection
#                          (scripts/collection.py build), offline; prints the image's tag
#
# The image is tagged prosaas-deploy/ee:<digest of what it is built from> and
# prosaas-deploy/ee:latest; a build whose digest tag exists is skipped. BASE_IMAGE: as for
# every image here (scripts/setup.sh ensure_base_image).
set -euo pipefail
source "$(dirname "$0")/setup.sh"

EE_CONTEXT="$PROSAAS_ROOT/ee"
EE_BUILD="$EE_CONTEXT/.build"
EE_WHEELS="$EE_BUILD/wheels"
EE_REPOSITORY=prosaas-deploy/ee
# The image's Python (Debian 12's 3.11, glibc 2.36): wheels built for any manylinux up to
# glibc 2.36 run there, on the architecture of the engine that builds the image.
EE_PYTHON_VERSION=3.11
EE_GLIBC_MINOR=36

usage() { die "usage: scripts/ee.sh wheels|build"; }

wheel_choice() {
    local arch minor
    arch=$(docker info --format '{{.Architecture}}' 2>/dev/null) \
        || die "the Docker engine does not answer: the wheels are chosen for its architecture"
    printf '%s\n' --only-binary=:all: --implementation=cp "--python-version=$EE_PYTHON_VERSION"
    printf -- '--platform=manylinux2014_%s\n' "$arch"
    for minor in $(seq 17 "$EE_GLIBC_MINOR"); do printf -- '--platform=manylinux_2_%s_%s\n' "$minor" "$arch"; done
}

# What the wheel folder is downloaded from: the pins and the platform chosen. (The pins are
# requirements.txt's: tests/unit/test_ee_files.py holds them equal.)
wheels_fingerprint() {
    { cat "$EE_CONTEXT/requirements.txt"; wheel_choice; } | sha256sum | cut -d' ' -f1
}

stage_wheels() {
    local want choice
    want=$(wheels_fingerprint)
    [ "$(cat "$EE_WHEELS/.fingerprint" 2>/dev/null)" = "$want" ] && return 0
    say "downloading the execution environment's wheels (ee/.build/wheels)"
    mapfile -t choice < <(wheel_choice)
    rm -rf "$EE_WHEELS"
    # requirements.txt constrains whatever ee/requirements.txt would leave unpinned.
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --dest "$EE_WHEELS" \
        "${choice[@]}" -r "$EE_CONTEXT/requirements.txt" -c "$PROSAAS_ROOT/requirements.txt" \
        >"$PROSAAS_STATE/ee-wheels.log" 2>&1 \
        || die "pip download of the execution environment's wheels failed; see $PROSAAS_STATE/ee-wheels.log"
    echo "$want" >"$EE_WHEELS/.fingerprint"
}

require_wheels() {
    [ "$(cat "$EE_WHEELS/.fingerprint" 2>/dev/null)" = "$(wheels_fingerprint)" ] \
        || die "the execution environment's wheels are missing or stale in ee/.build/wheels: run scripts/ee.sh wheels"
}

# The collection's tarball, built by scripts/collection.py in a folder of this run (the
# checkout's .build/ is that tool's own), alone in the context's folder.
stage_collection() {
    local scratch tarball
    scratch=$(mktemp -d)
    tarball=$("$VENV/bin/python" "$PROSAAS_ROOT/scripts/collection.py" build --dest "$scratch/collection" | tail -n 1) \
        || { rm -rf "$scratch"; die "scripts/collection.py build failed (above)"; }
    rm -rf "$EE_BUILD/collections"
    install -D -m 0644 "$tarball" "$EE_BUILD/collections/$(basename "$tarball")"
    rm -rf "$scratch"
}

# A digest of everything the image is made from. The collection counts by its MANIFEST.json
# (which holds the checksum of every file), as its tarball's bytes change with each build.
image_digest() {
    {
        sha256sum "$EE_CONTEXT/Dockerfile" "$EE_CONTEXT/entrypoint.sh" "$EE_CONTEXT/requirements.txt"
        cat "$EE_WHEELS/.fingerprint"
        tar -xOzf "$EE_BUILD"/collections/*.tar.gz MANIFEST.json
        docker image inspect --format '{{.Id}}' "$BASE_IMAGE"
    } | sha256sum | cut -c1-12
}

build() {
    ensure_venv
    require_wheels
    ensure_base_image
    stage_collection
    local tag
    tag="$EE_REPOSITORY:$(image_digest)"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        say "$tag is up to date" >&2
    else
        say "building $tag (base: $BASE_IMAGE; log: .state/ee-build.log)" >&2
        DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$EE_CONTEXT" \
            >"$PROSAAS_STATE/ee-build.log" 2>&1 \
            || die "docker build of $tag failed; see $PROSAAS_STATE/ee-build.log"
    fi
    docker tag "$tag" "$EE_REPOSITORY:latest"
    echo "$tag"
}

case "${1:-}" in
    wheels) ensure_venv; stage_wheels ;;
    build) build ;;
    *) usage ;;
esac
