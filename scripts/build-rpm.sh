#!/usr/bin/env bash
# Builds the RPM of monitor_service and prints its path:
#
#   scripts/build-rpm.sh [--glibc VERSION] [ARGS...]
#
#   --glibc 2.28   link against that glibc with cargo-zigbuild instead of this machine's, so that
#                  the package runs on older systems (2.28: RHEL 8); needs zig (pip install
#                  ziglang) and installs cargo-zigbuild when missing
#   ARGS           go to `cargo generate-rpm` (-o FILE, --payload-compress TYPE, -s 'release = "2"')
#
# Release build, then cargo-generate-rpm (installed with `cargo install` when missing; it needs no
# rpmbuild and no spec file) packages what [package.metadata.generate-rpm] in Cargo.toml lists.
# The binary needs the glibc it was linked against, or newer: the line printed before the path
# says which, and so which RHEL releases the package installs on (README.md).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'build-rpm.sh: error: %s\n' "$*" >&2
    exit 1
}

glibc=""
generate_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --glibc) glibc=${2:?--glibc needs a version, such as 2.28}; shift ;;
    --glibc=*) glibc=${1#*=} ;;
    *) generate_args+=("$1") ;;
    esac
    shift
done

if [ -d "$HOME/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

target_dir=${CARGO_TARGET_DIR:-target}
if [ -n "$glibc" ]; then
    triple=$(uname -m)-unknown-linux-gnu
    if ! command -v cargo-zigbuild >/dev/null 2>&1; then
        step "cargo install cargo-zigbuild --locked"
        cargo install cargo-zigbuild --locked --quiet
    fi
    step "cargo zigbuild --release --target $triple.$glibc"
    cargo zigbuild --release --quiet --target "$triple.$glibc"
    # cargo-zigbuild writes to target/TRIPLE/release (without the glibc suffix), which is where
    # cargo generate-rpm --target looks for target/release/ assets.
    binary=$target_dir/$triple/release/monitor_service
    generate_args+=(--target "$triple")
else
    step "cargo build --release"
    cargo build --release --quiet
    binary=$target_dir/release/monitor_service
fi

if ! command -v cargo-generate-rpm >/dev/null 2>&1; then
    step "cargo install cargo-generate-rpm --locked"
    cargo install cargo-generate-rpm --locked --quiet
fi

# Where cargo generate-rpm writes: target/generate-rpm/ (target/TRIPLE/generate-rpm/ with
# --target) unless -o names a file or a directory.
output=""
previous=""
for arg in "${generate_args[@]}"; do
    case $previous in -o | --output) output=$arg ;; esac
    case $arg in --output=*) output=${arg#*=} ;; esac
    previous=$arg
done
# A marker older than the package, so that the package this run wrote is found whatever its
# name (version, release and architecture come from Cargo.toml and the machine).
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
step "cargo generate-rpm ${generate_args[*]}"
cargo generate-rpm "${generate_args[@]}"
rpm_file=$(find "${output:-$target_dir}" -maxdepth 3 -name '*.rpm' -newer "$marker" | head -n 1)
[ -n "$rpm_file" ] || die "cargo generate-rpm wrote no package under ${output:-$target_dir}"

if command -v objdump >/dev/null 2>&1; then
    needed=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1)
    step "the binary needs glibc ${needed#GLIBC_} or newer (2.28: RHEL 8 and later; 2.34: RHEL 9 and later)"
fi
realpath "$rpm_file"
