#!/usr/bin/env bash
# Builds the release tarballs: static musl binaries for x86_64 and aarch64 with cargo-zigbuild
# (Zig from PyPI, so no Docker and no system cross toolchain), checks they are static, smoke-tests
# each one (the aarch64 binary under qemu-aarch64), and packs
#   dist/vwed-<version>-<target>.tar.gz
# holding the binary, schema.sql, systemd/vwed.service, README.md and assets/vwed.example.toml.
#
# Usage: scripts/release.sh [VERSION]  (both targets; VERSION must match Cargo.toml)
#        TARGETS="aarch64-unknown-linux-musl" scripts/release.sh
#
# Missing tools are installed when possible (rustup targets, `pip install ziglang`,
# `cargo install --locked cargo-zigbuild`, `apt-get install qemu-user-static`); when one cannot be
# installed the script stops and names it. Not run by .ci/run: a release build takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS="${TARGETS:-x86_64-unknown-linux-musl aarch64-unknown-linux-musl}"
DIST=dist
started=$(date +%s)

die() {
    echo "release.sh: $*" >&2
    exit 1
}
step() { echo "==> $*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "cannot read the package version from Cargo.toml"
# `scripts/release.sh VERSION`: the version to release must be the one Cargo.toml builds.
if [ $# -gt 0 ] && [ "$1" != "$version" ]; then
    die "VERSION $1 is not the version in Cargo.toml ($version): bump Cargo.toml first"
fi

# ---- tools --------------------------------------------------------------------------------------

command -v cargo >/dev/null || die "cargo is missing (install Rust with rustup)"
command -v file >/dev/null || die "the 'file' command is missing (apt-get install file)"
command -v python3 >/dev/null || die "python3 is missing: it is needed to run Zig from PyPI"

installed_targets=$(rustup target list --installed 2>/dev/null || true)
for target in $TARGETS; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        step "rustup target add $target"
        rustup target add "$target" ||
            die "missing Rust standard library for $target: 'rustup target add $target' failed" \
                "(it downloads from static.rust-lang.org)"
    fi
done

if ! python3 -m ziglang version >/dev/null 2>&1 && ! command -v zig >/dev/null; then
    step "pip install ziglang"
    python3 -m pip install --quiet ziglang ||
        die "missing Zig: 'python3 -m pip install ziglang' failed (needs PyPI)"
fi
zig_version=$(python3 -m ziglang version 2>/dev/null || zig version)

if ! cargo zigbuild --help >/dev/null 2>&1; then
    step "cargo install --locked cargo-zigbuild"
    cargo install --locked cargo-zigbuild ||
        die "missing cargo-zigbuild: 'cargo install --locked cargo-zigbuild' failed (needs crates.io)"
fi

qemu=""
if [[ " $TARGETS " == *" aarch64-unknown-linux-musl "* ]]; then
    qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
    if [ -z "$qemu" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            step "apt-get install qemu-user-static"
            apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                    qemu-user-static >/dev/null ||
                die "missing qemu-aarch64: 'apt-get install qemu-user-static' failed"
        else
            die "missing qemu-aarch64 for the ARM smoke test:" \
                "install Debian's qemu-user-static (or qemu-user) as root"
        fi
        qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
        [ -n "$qemu" ] || die "qemu-user-static installed but no qemu-aarch64 binary found"
    fi
fi

# ---- build, check, pack -------------------------------------------------------------------------

# Reproducible tarballs: file times from the last commit, numeric root ownership, sorted names.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

mkdir -p "$DIST"
summary=()
for target in $TARGETS; do
    step "cargo zigbuild --release --locked --target $target (zig $zig_version)"
    t0=$(date +%s)
    cargo zigbuild --release --locked --target "$target"
    built=$(($(date +%s) - t0))
    bin="target/$target/release/vwed"
    [ -x "$bin" ] || die "build for $target produced no $bin"

    kind=$(file -b "$bin")
    echo "$bin: $kind" >&2
    case "$kind" in
    *"dynamically linked"* | *interpreter*) die "$bin is not static: $kind" ;;
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "cannot tell whether $bin is static: $kind" ;;
    esac

    # Smoke test: the version, and `check` on the demo definitions (all must be clean).
    case "$target" in
    x86_64-*) run=() ;;
    aarch64-*) run=("$qemu") ;;
    *) die "no smoke-test runner for $target" ;;
    esac
    step "smoke test $target ${run[*]:-(native)}"
    "${run[@]}" "$bin" --version | grep -qx "vwed $version" ||
        die "$bin --version does not print 'vwed $version'"
    "${run[@]}" "$bin" check assets/demo/*.json ||
        die "$bin check assets/demo/*.json failed"

    name="vwed-$version-$target"
    stage="$DIST/$name"
    rm -rf "$stage"
    mkdir -p "$stage/systemd" "$stage/assets"
    install -m 0755 "$bin" "$stage/vwed"
    install -m 0644 schema.sql README.md "$stage/"
    install -m 0644 systemd/vwed.service "$stage/systemd/"
    install -m 0644 assets/vwed.example.toml "$stage/assets/"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
        -C "$DIST" -czf "$DIST/$name.tar.gz" "$name"
    rm -rf "$stage"

    size=$(stat -c %s "$bin")
    tarsize=$(stat -c %s "$DIST/$name.tar.gz")
    summary+=("$name: binary $size bytes ($((size / 1024)) KiB), tarball $tarsize bytes, built in ${built}s")
done

(cd "$DIST" && sha256sum vwed-"$version"-*.tar.gz >"SHA256SUMS-$version")
echo
printf '%s\n' "${summary[@]}"
echo "checksums: $DIST/SHA256SUMS-$version"
echo "total: $(($(date +%s) - started))s"
