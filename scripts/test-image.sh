#!/usr/bin/env bash
# CI's image phase: the Dockerfile's CPU image and the worker template's image, built for real and
# run. No Docker daemon is needed: podman builds with --isolation chroot, on a debian:bookworm-slim
# equivalent made by debootstrap from this machine's own Debian mirror (read from its apt sources).
#   1. base: debootstrap --variant=minbase bookworm, trimmed like the official slim image, imported
#      as docker.io/library/debian:bookworm-slim (what the Dockerfiles' FROM resolves to);
#   2. podworker: --target build-cpu (tagged podworker-build) and --target cpu (podworker-runtime);
#   3. the template (templates/worker), FROM those two, its CMake tests run in its build stage;
#   4. each image's worker answers a --test-input job with the expected JSON, run by `podman run`
#      or, where containers cannot start (no CAP_SYS_RESOURCE for crun's rlimits, say), by
#      `podman image mount` + chroot with the image's user, environment, directory and entrypoint.
#
#   scripts/test-image.sh [--work-dir DIR] [--keep]
#
# DIR (default build-image/) holds the base's tarball, reused by later runs, and podman's storage
# and build cache, which are removed at the end unless --keep. `rm -rf DIR` makes the next run
# cold. PODMAN_STORAGE_DRIVER=vfs forces the vfs driver (the default is overlay where the kernel
# allows it). The images are built without the model (MODEL empty): an echo job proves the worker
# runs, textgen is tested outside images.
set -euo pipefail
# All in one function: bash parses it whole before running it, so editing this file during a run
# cannot change the run.
main() {
cd "$(dirname "$0")/.."
source_dir=$(pwd)

work=build-image
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --work-dir) work=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "test-image: unknown argument: $1" >&2; exit 2 ;;
  esac
done
die() { echo "test-image: $*" >&2; exit 1; }
step() { echo "== [$((SECONDS - started)) s] $*"; }
started=$SECONDS

for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || die "needs root: debootstrap, and podman's chroot isolation without user namespaces"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# ---- 1. the base image ----
# The first Debian mirror serving bookworm in this machine's apt sources (one-line .list files or
# deb822 .sources), and the bookworm-updates / bookworm-security entries to give the image.
apt_entries() {  # prints "URI SUITE" for every enabled deb entry
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\).*/\2 \3/p' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          split($i, kv, ":[[:space:]]*")
          key = tolower(kv[1]); value = substr($i, length(kv[1]) + 2); sub(/^[[:space:]]+/, "", value)
          if (key == "types") types = value; else if (key == "uris") uris = value
          else if (key == "suites") suites = value; else if (key == "enabled") enabled = tolower(value)
        }
        if (enabled == "no" || types !~ /(^|[[:space:]])deb([[:space:]]|$)/) next
        nu = split(uris, u, /[[:space:]]+/); ns = split(suites, s, /[[:space:]]+/)
        for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) if (u[a] != "" && s[b] != "") print u[a], s[b]
      }' "$f"
  done
}
# remove_rootfs DIR: debootstrap mounts /proc (and, in some containers, binds /dev) under its
# target; a run cut short leaves them mounted, and rm -rf must not reach through them.
remove_rootfs() {
  local mounts
  mounts=$(awk -v dir="$1/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r)
  for m in $mounts; do umount -l "$m"; done
  rm -rf --one-file-system "$1"
}
base_tar="$work/debian-bookworm-slim.tar"
if [ -f "$base_tar" ]; then
  step "base: reusing $base_tar"
else
  entries=$(apt_entries | grep -E ' bookworm(-updates|-security)?$' || true)
  mirror=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$entries")
  [ -n "$mirror" ] || die "no apt source on this machine serves bookworm; cannot make the base image"
  step "base: debootstrap --variant=minbase bookworm from $mirror"
  rootfs="$work/rootfs"
  remove_rootfs "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }
  # As the official slim image: no documentation or translations installed later, apt's caches
  # cleaned after each install, the same suites as the machine.
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
  printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
    >"$rootfs/etc/apt/apt.conf.d/slim-clean"
  awk '{ print "deb " $1 " " $2 " main" }' <<<"$entries" >"$rootfs/etc/apt/sources.list"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/log/* "$rootfs/debootstrap"
  tar -C "$rootfs" --numeric-owner -cf "$base_tar.part" .
  mv "$base_tar.part" "$base_tar"
  remove_rootfs "$rootfs"
fi

# ---- podman, on storage of its own ----
driver=${PODMAN_STORAGE_DRIVER:-overlay}
# TMPDIR: buildah keeps RUN --mount=type=cache directories (the build's ccache) under it.
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"
pm() { podman --root "$work/storage" --runroot "$work/run" --storage-driver "$driver" --events-backend file "$@"; }
if ! pm info >/dev/null 2>&1; then
  [ "$driver" = vfs ] && die "podman cannot start: $(pm info 2>&1 | tail -3)"
  driver=vfs
fi
cleanup() {
  if [ "$keep" -eq 0 ]; then
    pm image unmount --all >/dev/null 2>&1 || true
    rm -rf "$work/storage" "$work/run" "$TMPDIR"
  fi
}
trap cleanup EXIT
# MODEL= (no model) said explicitly, which also keeps buildah from warning that it is unset.
build() { pm build --isolation chroot --pull=never --layers --build-arg MODEL= "$@"; }

step "base: podman import (storage driver $driver)"
pm import "$base_tar" docker.io/library/debian:bookworm-slim >/dev/null

# ---- 2. podworker's build stage and CPU image ----
step "podworker: build stage (--target build-cpu)"
build --target build-cpu -t localhost/podworker-build "$source_dir"
step "podworker: CPU image (--target cpu)"
build --target cpu -t localhost/podworker-runtime "$source_dir"

# ---- 3. the template's image ----
step "template: image FROM podworker-build and podworker-runtime"
build -t localhost/my-worker "$source_dir/templates/worker"

# ---- 4. the worker in each image ----
run_mode=podman
if ! pm run --rm --network none --entrypoint /bin/true localhost/podworker-runtime >/dev/null 2>"$work/run-probe.log"; then
  run_mode=chroot
  echo "podman run cannot start containers here ($(tail -1 "$work/run-probe.log")); running the images by podman image mount + chroot"
fi
# run_image IMAGE ARGS...: the image's entrypoint with ARGS, as its config says (user, env, workdir).
run_image() {
  local image=$1
  shift
  if [ "$run_mode" = podman ]; then
    pm run --rm --network none "$image" "$@"
    return
  fi
  local mnt config user workdir
  mnt=$(pm image mount "$image")
  config=$(pm image inspect --format '{{json .Config}}' "$image")
  mapfile -t entrypoint < <(python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin).get("Entrypoint") or []))' <<<"$config")
  mapfile -t environment < <(python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin).get("Env") or []))' <<<"$config")
  user=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("User") or "0:0")' <<<"$config")
  workdir=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("WorkingDir") or "/")' <<<"$config")
  [ ${#entrypoint[@]} -gt 0 ] || die "$image has no entrypoint"
  local status=0
  env -i "${environment[@]}" chroot --userspec="$user" "$mnt" /usr/bin/env --chdir="$workdir" \
    "${entrypoint[@]}" "$@" || status=$?
  pm image unmount "$image" >/dev/null
  return $status
}
failures=0
# expect_output IMAGE STATUS EXPECTED ARGS...: the run exits with STATUS, and the last line of its
# standard output (the job's result; logs go before it) is EXPECTED.
expect_output() {
  local image=$1 expected_status=$2 expected=$3 output status=0
  shift 3
  output=$(run_image "$image" "$@") || status=$?
  if [ "$status" -ne "$expected_status" ] || [ "$(tail -n 1 <<<"$output")" != "$expected" ]; then
    echo "FAILED: $image $*: exit status $status, printed:"; echo "$output"
    echo "expected exit status $expected_status and the last line $expected"
    failures=$((failures + 1))
  else
    echo "ok: $image ($run_mode) $* -> $output"
  fi
}
step "run: the worker in each image ($run_mode)"
expect_output localhost/podworker-runtime 0 '{"output":{"image":"smoke test"}}' \
  --test-input '{"input": {"image": "smoke test"}}'
expect_output localhost/my-worker 0 '{"output":{"words":["hello","podworker","template"],"count":3}}' \
  --test-input "$(cat "$source_dir/templates/worker/test_input.json")"
# A bad input fails the job (exit status 1) with a message naming the field.
expect_output localhost/my-worker 1 '{"error":"input.max_words must be an integer ≥ 1"}' \
  --test-input '{"input": {"text": "a b", "max_words": 0}}'

pm images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'podworker|my-worker' || true
step "done: $failures failure(s)"
[ "$failures" -eq 0 ] || exit 1
}
main "$@"
