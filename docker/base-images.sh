#!/usr/bin/env bash
# Makes the two base images the Dockerfile starts from, for a machine that
# cannot pull from a container registry (CI here). Where the images exist,
# pulled or made earlier, it does nothing.
#
#   bash docker/base-images.sh
#
# - debian:bookworm-slim: a Debian bookworm root made with
#   `debootstrap --variant=minbase` from Debian's mirror, trimmed the way the
#   official slim image is (no docs, man pages or locales), and imported.
# - rust:<version>-slim-bookworm: that image plus gcc, libc6-dev and
#   ca-certificates (what the official slim Rust image adds), and this
#   machine's active Rust toolchain copied in under the official image's
#   RUSTUP_HOME, CARGO_HOME and PATH. The toolchain's version must be the one
#   the tag names. The image also trusts what this machine trusts (its CA
#   bundle), so cargo inside a build reaches crates.io the way it does here.
#
# Both keep the names a user's machine pulls, so the Dockerfile and the
# compose file are the same everywhere. Needs root (debootstrap), the Docker
# engine, and Debian's mirror; installs debootstrap with apt-get if missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEBIAN_IMAGE=debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "base-images: $*"; }
die() {
    echo "base-images: $*" >&2
    exit 1
}

# The Rust image is the one the Dockerfile names: one source of truth.
RUST_IMAGE=$(sed -n 's/^FROM \(rust:[^ ]*\).*/\1/p' Dockerfile | head -n 1)
[[ $RUST_IMAGE =~ ^rust:([0-9]+\.[0-9]+)(\.[0-9]+)?-slim-bookworm$ ]] ||
    die "the Dockerfile's build stage should start FROM rust:X.Y-slim-bookworm (found '${RUST_IMAGE:-nothing}')"
RUST_VERSION_WANTED=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
grep -q "^FROM $DEBIAN_IMAGE" Dockerfile || die "the Dockerfile's runtime stage should start FROM $DEBIAN_IMAGE"

docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed)"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

WORK=
cleanup() {
    if [[ -n $WORK && -d $WORK ]]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

make_debian() {
    if have_image "$DEBIAN_IMAGE"; then
        log "$DEBIAN_IMAGE exists, nothing to do"
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "making $DEBIAN_IMAGE with debootstrap needs root"
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    local root=$WORK/debian
    log "debootstrap --variant=minbase bookworm from $MIRROR (a few minutes)"
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log" >&2
        die "debootstrap failed"
    }
    # What the official slim image does: keep later apt-get installs slim,
    # clean apt's caches, and list the updates and security suites.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/* \
        "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    # The host's name and resolver do not belong in an image.
    : >"$root/etc/resolv.conf"
    rm -f "$root/etc/hostname"
    tar -C "$root" --numeric-owner -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -c "LABEL org.opencontainers.image.description=\"Debian bookworm minbase from $MIRROR, made by docker/base-images.sh\"" \
        - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$root"
    log "made $DEBIAN_IMAGE ($(docker image inspect -f '{{.Size}}' "$DEBIAN_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

make_rust() {
    if have_image "$RUST_IMAGE"; then
        log "$RUST_IMAGE exists, nothing to do"
        return
    fi
    if ! command -v rustup >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/rustup ]]; then
        export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    command -v rustup >/dev/null || die "making $RUST_IMAGE needs this machine's Rust toolchain, installed with rustup"
    local rustc toolchain version triple
    rustc=$(rustup which rustc)
    toolchain=$(cd "$(dirname "$rustc")/.." && pwd -P)
    version=$("$rustc" --version | awk '{print $2}')
    triple=$("$rustc" -vV | sed -n 's/^host: //p')
    [[ $version == "$RUST_VERSION_WANTED" || $version == "$RUST_VERSION_WANTED".* ]] ||
        die "$RUST_IMAGE needs Rust $RUST_VERSION_WANTED but this machine's active toolchain is $version"
    local name=$version-$triple
    local ctx=$WORK/rust
    log "copying the active toolchain ($version, $toolchain) without its docs"
    mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo/bin"
    # Only the active toolchain, without the HTML docs (most of its size).
    tar -C "$toolchain" --exclude=./share/doc -c . | (mkdir -p "$ctx/rustup/toolchains/$name" &&
        tar -C "$ctx/rustup/toolchains/$name" -x)
    sed -i '/^rust-docs-/d' "$ctx/rustup/toolchains/$name/lib/rustlib/components"
    cat >"$ctx/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$name"
profile = "minimal"
auto_self_update = "disable"

[overrides]
EOF
    cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
    local proxy
    for proxy in cargo rustc rustdoc rust-gdb rust-gdbgui rust-lldb cargo-clippy clippy-driver cargo-fmt rustfmt; do
        ln -s rustup "$ctx/cargo/bin/$proxy"
    done
    # Writable by all, as in the official image; set here rather than in a
    # RUN, which would store every file a second time.
    chmod -R a+w "$ctx/rustup" "$ctx/cargo"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
# This machine's trust store, so that cargo reaches crates.io as it does here.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$version
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustup --version && cargo --version && rustc --version
LABEL org.opencontainers.image.description="Rust $version on $DEBIAN_IMAGE, made by docker/base-images.sh from this machine's toolchain"
EOF
    log "building $RUST_IMAGE (apt-get inside the build, then the toolchain)"
    DOCKER_BUILDKIT=0 docker build -q -t "$RUST_IMAGE" "$ctx" >/dev/null 2>"$WORK/rust-build.log" || {
        cat "$WORK/rust-build.log" >&2
        die "building $RUST_IMAGE failed"
    }
    log "made $RUST_IMAGE ($(docker image inspect -f '{{.Size}}' "$RUST_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/base-images.XXXXXX")
make_debian
make_rust
