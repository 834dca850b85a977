#!/usr/bin/env bash
# test/interop/run.sh [runner args...] - run the interop tests against real servers.
#
# Starts Postfix and Dovecot (up.sh) in a fresh temporary directory, runs the interop test
# files with the project's runner (`node dist/test/run.js test/interop`, or the fragments
# given as arguments), and always stops the servers and deletes the directory afterwards
# (down.sh, from an EXIT trap), also when the set-up or a test fails. The exit code is the
# runner's, or up.sh's when the servers could not start.
#
# Needs root. `npm run test:interop` builds first; this script builds only when dist/ lacks
# the compiled tests. Set INTEROP_KEEP=1 to keep the directory (mailboxes, logs) for a look.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
log() { printf 'interop: %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)

if [ ! -f dist/test/run.js ] || ! compgen -G "dist/test/interop/*.test.js" >/dev/null; then
  log "dist/ lacks the compiled tests: building"
  npx tsc -p tsconfig.json
fi

# mktemp under /tmp-like storage: the servers' users must be able to reach it, and unix
# socket paths below it must stay short.
dir=$(mktemp -d "${TMPDIR:-/tmp}/smtp-wire-interop.XXXXXX")
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${INTEROP_KEEP:-}" = 1 ]; then
    bash "$here/down.sh" "$dir" || true
    log "kept $dir"
  else
    bash "$here/down.sh" "$dir" --purge || true
  fi
  log "done in $(secs "$t0")s, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t1=$(now)
# Not eval "$(up.sh)": that would drop up.sh's exit code.
out=$(bash "$here/up.sh" "$dir")
eval "$out"
log "servers up in $(secs "$t1")s: Postfix $INTEROP_POSTFIX_VERSION, Dovecot $INTEROP_DOVECOT_VERSION"

t2=$(now)
rc=0
node dist/test/run.js "${@:-test/interop}" || rc=$?
log "tests took $(secs "$t2")s"
exit "$rc"
