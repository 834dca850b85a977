#!/usr/bin/env bash
# test/interop/down.sh [DIR] [--purge] - stop the Postfix and Dovecot that up.sh started
# for DIR (default ${TMPDIR:-/tmp}/smtp-wire-interop); --purge then deletes DIR.
#
# Safe to run on failure paths: it succeeds when nothing runs or DIR is half set up. It
# uses the servers' own stop commands, waits for their master processes to exit, and ends
# only processes it can prove belong to this DIR (by pid, never by a broad name).
set -euo pipefail

log() { printf 'interop-down: %s\n' "$*" >&2; }

DIR=${INTEROP_DIR:-${TMPDIR:-/tmp}/smtp-wire-interop} purge=''
for a in "$@"; do
  case $a in
    --purge) purge=1 ;;
    *) DIR=$a ;;
  esac
done
[ -d "$DIR" ] || { log "nothing at $DIR"; exit 0; }
DIR=$(cd "$DIR" && pwd -P)

pid_of() { if [ -s "$1" ]; then head -n1 "$1" | tr -d ' '; fi; }
wait_gone() { # wait_gone PID SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# Postfix first: while its smtpd processes hold connections to Dovecot's auth socket,
# Dovecot's auth, log and stats processes would outlive `dovecot stop`.
if [ -f "$DIR/postfix/main.cf" ] && command -v postfix >/dev/null; then
  pid=$(pid_of "$DIR/postfix-spool/pid/master.pid")
  if postfix -c "$DIR/postfix" status >/dev/null 2>&1; then
    postfix -c "$DIR/postfix" stop >/dev/null 2>&1 || true   # waits up to 5 s, then kills
    if [ -n "$pid" ] && ! wait_gone "$pid" 10 && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = master ]; then
      log "postfix master $pid still running: killing it"; kill -9 "$pid" 2>/dev/null || true
    fi
    log "postfix stopped"
  fi
fi

if [ -f "$DIR/dovecot/dovecot.conf" ] && command -v dovecot >/dev/null; then
  pid=$(pid_of "$DIR/dovecot/run/master.pid")
  # Trust the pid only if it is this DIR's Dovecot master: pid files outlive reboots.
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
       grep -qF -- "-c $DIR/dovecot/dovecot.conf"; then
    dovecot -c "$DIR/dovecot/dovecot.conf" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
      log "dovecot master $pid still running: killing it"; kill -9 "$pid" 2>/dev/null || true
    fi
    log "dovecot stopped"
  fi
  # Children can outlive the master for a moment; those still titled with this DIR's
  # instance name ("dovecot-<instance>/<service>", see up.sh) are ended by pid.
  instance=interop-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
  leftovers() { # argv[0] of every process, read by the shell itself (no fork per process)
    local p a
    for p in /proc/[0-9]*; do
      a=''
      { IFS= read -r -d '' a <"$p/cmdline"; } 2>/dev/null || true
      [[ $a == "dovecot-$instance/"* ]] && echo "${p#/proc/}"
    done
    return 0
  }
  for _ in $(seq 1 30); do [ -z "$(leftovers)" ] && break; sleep 0.1; done
  read -r -a left <<<"$(leftovers | tr '\n' ' ')"
  if [ ${#left[@]} -gt 0 ]; then
    log "ending leftover dovecot processes: ${left[*]}"
    kill "${left[@]}" 2>/dev/null || true
  fi
fi

if [ -n "$purge" ]; then
  rm -rf "$DIR"
  log "removed $DIR"
fi
