#!/usr/bin/env bash
# End-to-end benchmark: tweed's dataplane against the kernel's own path. A thin
# wrapper: it builds the release binaries (as the invoking user under sudo) and
# runs `tweed bench` with the arguments given, e.g.
#
#   sudo benches/e2e.sh --quick
#   sudo benches/e2e.sh --topology two --lines tcp1,tcp4 -o json
#
# See `tweed bench --help` and the README's "Performance" section.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $EUID -eq 0 ]] || { echo "e2e: needs root: run it as sudo $0" >&2; exit 1; }
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    (cd "$ROOT" && sudo -u "$SUDO_USER" -H bash -lc "cargo build --release")
elif command -v cargo >/dev/null; then
    (cd "$ROOT" && cargo build --release)
fi
exec "$ROOT/target/release/tweed" bench "$@"
