#!/usr/bin/env bash
# test/interop/up.sh [DIR] - start a real Postfix (SMTP, submission, implicit TLS) and a
# real Dovecot (LMTP, and SASL for Postfix) on 127.0.0.1, for smtp-wire's interop tests.
#
#   out=$(bash test/interop/up.sh "$dir") || exit 1   # not eval "$(...)": that drops the exit code
#   eval "$out"
#
# Needs root (both servers start as root and drop privileges) and Debian's apt-get.
# Installs the packages when missing, writes every config file under DIR (default
# ${TMPDIR:-/tmp}/smtp-wire-interop), starts both servers without an init system, waits
# until every port greets, then prints `export INTEROP_...=...` lines on stdout (also kept
# in DIR/env.sh). Progress and errors go to stderr. Stop with test/interop/down.sh DIR.
#
# Idempotent: on a DIR whose servers already run it rewrites only the config files whose
# content changed and reloads only the server concerned. Mail already delivered is kept.
# The Dovecot config uses 2.3 syntax (Debian 12); Dovecot 2.4 would need a port.
set -euo pipefail

log() { printf 'interop-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "run as root (postfix and dovecot start as root and drop privileges)"

# ---------------------------------------------------------------- settings (INTEROP_* overrides)
DIR=${1:-${INTEROP_DIR:-${TMPDIR:-/tmp}/smtp-wire-interop}}
DOMAIN=${INTEROP_DOMAIN:-example.test}
MX=mx.$DOMAIN
SMTP_PORT=${INTEROP_SMTP_PORT:-2525}             # like port 25: STARTTLS optional, AUTH allowed
SUBMISSION_PORT=${INTEROP_SUBMISSION_PORT:-2587} # like 587: STARTTLS required before AUTH/MAIL
SMTPS_PORT=${INTEROP_SMTPS_PORT:-2465}           # like 465: TLS from the first byte
SMALL_PORT=${INTEROP_SMALL_PORT:-2526}           # like SMTP_PORT, with a small size limit
NOPIPE_PORT=${INTEROP_NOPIPE_PORT:-2527}         # like SMTP_PORT, without PIPELINING
XCLIENT_PORT=${INTEROP_XCLIENT_PORT:-2528}       # like SMTP_PORT, trusting XCLIENT and XFORWARD from loopback
LMTP_PORT=${INTEROP_LMTP_PORT:-2424}             # Dovecot LMTP, plain TCP
# Postfix counts its own Received header and the envelope against message_size_limit, so
# the limit sits well above the 64 MiB test message.
SIZE_LIMIT=${INTEROP_MESSAGE_SIZE_LIMIT:-104857600}
# SMALL_PORT's limit: lets a test overrun the limit without pushing 100 MiB through.
SMALL_LIMIT=${INTEROP_SMALL_SIZE_LIMIT:-1048576}
BARE_LF=${INTEROP_BARE_LF:-reject}  # Postfix smtpd_forbid_bare_newline: reject|normalize|no
# user:password pairs in $DOMAIN: SASL logins and mailboxes of both servers. "full" is over
# quota (LMTP refuses its mail after DATA), "sink" gets all mail for other domains and
# postmaster's, "dave" has a non-ASCII password.
USERS=${INTEROP_USERS:-"alice:alice-pass bob:bob-pass carol:carol-pass dave:dävé-pässwörd full:full-pass sink:sink-pass"}
UTF8_LOCAL=${INTEROP_UTF8_LOCAL:-δοκιμή}  # an SMTPUTF8 address; its mail goes to mailbox "utf8"

# ---------------------------------------------------------------- install (once)
t0=$(now)
missing=()
[ -x /usr/sbin/postfix ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  # "No configuration": the postfix package then writes no system-wide main.cf.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Without an init system the packages' scripts would start system-wide daemons through
  # invoke-rc.d; a policy-rc.d that answers 101 ("action forbidden") stops that.
  made_policy=''
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  aptlog=${TMPDIR:-/tmp}/smtp-wire-interop-apt.log rc=0
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    >"$aptlog" 2>&1 || rc=$?
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { tail -n 30 "$aptlog" >&2; die "apt-get failed ($rc), see $aptlog"; }
  log "installed in $(secs "$t0")s"
fi

# Owner of the mail store: Dovecot refuses to deliver as root or as its own users.
getent group vmail >/dev/null || groupadd --system vmail
getent passwd vmail >/dev/null ||
  useradd --system --gid vmail --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
VUID=$(id -u vmail) VGID=$(getent group vmail | cut -d: -f3)

# ---------------------------------------------------------------- layout
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
# Unix socket paths (DIR/dovecot/run/<name>) must stay under 108 bytes.
[ ${#DIR} -le 64 ] || die "DIR path too long for unix sockets (${#DIR} > 64 chars): $DIR"
chmod 755 "$DIR"
# `postfix check` wants a config directory of root-owned files only, so the queue and data
# directories sit beside it, not inside it.
PFX=$DIR/postfix SPOOL=$DIR/postfix-spool PDATA=$DIR/postfix-data
DOV=$DIR/dovecot MAIL=$DIR/mail LOGS=$DIR/log TLS=$DIR/tls
# Dovecot titles its processes "dovecot-<instance>/<service>": a name per DIR lets down.sh
# find this instance's leftovers.
INSTANCE=interop-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
mkdir -p "$PFX" "$SPOOL" "$PDATA" "$DOV/run" "$DOV/state" "$MAIL" "$LOGS" "$TLS"
chown root:root "$PFX" "$SPOOL"   # queue_directory itself must belong to root
chown postfix:postfix "$PDATA"
chown vmail:vmail "$MAIL"
chmod 755 "$PFX" "$SPOOL" "$DOV" "$LOGS" "$TLS"
for u in postfix vmail; do
  runuser -u "$u" -- test -x "$DIR" ||
    die "user $u cannot reach $DIR: pick a DIR whose parents are world-searchable (e.g. under /tmp)"
done

changed_postfix='' changed_dovecot=''
put() { # put FILE postfix|dovecot <CONTENT - replace FILE only when its content differs
  cat >"$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; return 0; fi
  mv "$1.new" "$1"
  # Postfix re-reads a config file or table until it is over 1 s old, which costs ~2 s per
  # postfix command right after writing it. Backdating the file avoids that wait.
  touch -d "@$(($(date +%s) - 10))" "$1"
  eval "changed_$2=1"
}

# ---------------------------------------------------------------- TLS, made here, never committed
# A throw-away CA signs the server certificate, so tests verify a real chain with
# `tls: { ca }` (INTEROP_TLS_CA) and never turn verification off.
if [ ! -s "$TLS/ca.pem" ] || [ ! -s "$TLS/cert.pem" ] || [ ! -s "$TLS/key.pem" ]; then
  (
    set -e
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=smtp-wire interop test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca-key.pem -out ca.pem
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$MX" -keyout key.pem -out server.csr
    printf '%s\n' "subjectAltName=DNS:$MX,DNS:localhost,IP:127.0.0.1" \
      "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
      -extfile server.ext -out cert.pem
    rm -f ca-key.pem server.csr server.ext ca.srl   # the CA signs nothing else
    chmod 600 key.pem; chmod 644 cert.pem ca.pem
  ) >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; die "openssl failed"; }
  changed_postfix=1
fi

# ---------------------------------------------------------------- users and Maildirs
mkmaildir() { # made up front, so tests can list new/ and cur/ before the first delivery
  install -d -o vmail -g vmail -m 700 "$MAIL/$DOMAIN" "$MAIL/$DOMAIN/$1" "$MAIL/$DOMAIN/$1/Maildir" \
    "$MAIL/$DOMAIN/$1/Maildir/new" "$MAIL/$DOMAIN/$1/Maildir/cur" "$MAIL/$DOMAIN/$1/Maildir/tmp"
}
users='' vmailbox=''
for pair in $USERS; do
  u=${pair%%:*} p=${pair#*:} extra=''
  [ "$u" = full ] && extra='userdb_quota_rule=*:storage=1k'
  # Dovecot passwd-file: user:password:uid:gid:gecos:home:shell:extra_fields. Plain-text
  # passwords, so CRAM-MD5 works too.
  users+=$(printf '%s@%s:{PLAIN}%s::::::%s' "$u" "$DOMAIN" "$p" "$extra")$'\n'
  # Postfix virtual(8): address -> Maildir below virtual_mailbox_base (trailing / = Maildir)
  vmailbox+="$u@$DOMAIN $DOMAIN/$u/Maildir/"$'\n'
  mkmaildir "$u"
done
vmailbox+="$UTF8_LOCAL@$DOMAIN $DOMAIN/utf8/Maildir/"$'\n'
mkmaildir utf8
printf '%s' "$users" | put "$DOV/users" dovecot
chown root:dovecot "$DOV/users"; chmod 640 "$DOV/users"
printf '%s' "$vmailbox" | put "$PFX/vmailbox" postfix
# "full" has a 1 KiB quota and starts over it, so Dovecot LMTP refuses every message for it
# after DATA. The filler lives in a folder of its own so that emptying INBOX keeps it.
fdir=$MAIL/$DOMAIN/full/Maildir/.Filler
if [ -d "$MAIL/$DOMAIN/full" ] && [ ! -e "$fdir/cur/1000000000.filler.interop:2,S" ]; then
  install -d -o vmail -g vmail -m 700 "$fdir" "$fdir/new" "$fdir/cur" "$fdir/tmp"
  : >"$fdir/maildirfolder"
  { printf 'Subject: quota filler\n\n'; head -c 3000 /dev/zero | tr '\0' 'x'; printf '\n'; } \
    >"$fdir/cur/1000000000.filler.interop:2,S"
  chown vmail:vmail "$fdir/maildirfolder" "$fdir/cur/1000000000.filler.interop:2,S"
  rm -f "$MAIL/$DOMAIN/full/Maildir/maildirsize"
fi

# ---------------------------------------------------------------- Dovecot: LMTP + SASL
put "$DOV/dovecot.conf" dovecot <<EOF
# Written by smtp-wire's test/interop/up.sh; standalone (includes nothing system-wide).
protocols = lmtp
listen = 127.0.0.1
base_dir = $DOV/run
state_dir = $DOV/state
instance_name = $INSTANCE
log_path = $LOGS/dovecot.log
hostname = $MX
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_default_realm = $DOMAIN
# No 2 s delay after a failed login: wrong-password tests stay fast.
auth_failure_delay = 0
recipient_delimiter = +
postmaster_address = postmaster@$DOMAIN
first_valid_uid = $VUID
first_valid_gid = $VGID
# Maildir files get LF line ends (mail_save_crlf = no), as Postfix's virtual(8) writes them.
mail_location = maildir:~/Maildir
mail_plugins = quota
# Quota is checked after DATA, so LMTP shows a per-recipient failure at the final reply.
lmtp_rcpt_check_quota = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DOV/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DOV/users
  default_fields = uid=vmail gid=vmail home=$MAIL/%d/%n
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=0
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
# No per-IP penalty after failed logins either (2, 4, 8, 15 s; loopback included).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF

# ---------------------------------------------------------------- Postfix
dom_re=$(printf '%s' "$DOMAIN" | sed 's/[.]/\\./g')
put "$PFX/virtual_alias" postfix <<EOF
# Postmaster and every address outside $DOMAIN go to the sink mailbox: nothing ever
# leaves the host, and relayed mail can still be inspected.
/^postmaster@$dom_re\$/ sink@$DOMAIN
!/@$dom_re\$/ sink@$DOMAIN
EOF

put "$PFX/main.cf" postfix <<EOF
# Written by smtp-wire's test/interop/up.sh. A private instance: postfix -c $PFX start|stop
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $PDATA
mail_owner = postfix
setgid_group = postdrop
# No syslog here: log to a file (needs the postlog service, and a prefix that allows it).
maillog_file = $LOGS/postfix.log
maillog_file_prefixes = $LOGS/
# Set explicitly: a dot-less host name would make Postfix call itself <name>.localdomain.
myhostname = $MX
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery is disabled
default_transport = error:5.7.1 outbound delivery is disabled
relay_transport = error:5.7.1 outbound delivery is disabled
recipient_delimiter = +
# Postfix delivers $DOMAIN itself (virtual(8)) into the Maildirs that Dovecot LMTP uses.
# Handing it to Dovecot LMTP would bounce SMTPUTF8 mail: Dovecot 2.3 LMTP lacks SMTPUTF8.
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $MAIL
virtual_mailbox_maps = texthash:$PFX/vmailbox
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
virtual_minimum_uid = 1
virtual_transport = virtual
virtual_alias_maps = regexp:$PFX/virtual_alias
# Must be empty: its default (\$virtual_alias_maps) would make the catch-all regexp claim
# every domain (an open relay, and "User unknown in virtual alias table" for local users).
virtual_alias_domains =
message_size_limit = $SIZE_LIMIT
mailbox_size_limit = 0
virtual_mailbox_limit = 0
smtputf8_enable = yes
# A UTF-8 envelope address only in a transaction that declared SMTPUTF8.
strict_smtputf8 = yes
# A bare LF in a command or in message content is an error (SMTP smuggling guard); the
# default exclusions (\$mynetworks) would exempt every loopback client.
smtpd_forbid_bare_newline = $BARE_LF
smtpd_forbid_bare_newline_exclusions =
# Delivered bytes must equal sent bytes: add no missing headers, rewrite none, drop none
# (the default drops Bcc, Return-Path, Content-Length), no 8bit to 7bit conversion.
local_header_rewrite_clients =
message_drop_headers =
disable_mime_output_conversion = yes
smtpd_tls_cert_file = $TLS/cert.pem
smtpd_tls_key_file = $TLS/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DOV/run/auth-postfix
smtpd_sasl_auth_enable = yes
smtpd_tls_auth_only = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
# Test-friendly: no penalty sleeps after errors, no arrival throttling, fast retries.
smtpd_error_sleep_time = 0
smtpd_junk_command_limit = 1000
in_flow_delay = 0
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 15s
delay_warning_time = 0
EOF

put "$PFX/master.cf" postfix <<EOF
# Written by smtp-wire's test/interop/up.sh. Nothing is chrooted.
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtp
127.0.0.1:$SMALL_PORT inet n - n - - smtpd
  -o syslog_name=postfix/small
  -o message_size_limit=$SMALL_LIMIT
# No PIPELINING in EHLO. Input sent ahead where Postfix can tell (before the greeting,
# after EHLO, message bytes before the 354) is logged as "improper command pipelining" and
# refused at DATA (503 5.5.0), so tests can prove that the client waits for replies.
127.0.0.1:$NOPIPE_PORT inet n - n - - smtpd
  -o syslog_name=postfix/nopipe
  -o smtpd_discard_ehlo_keywords=pipelining
  -o smtpd_data_restrictions=reject_unauth_pipelining
# A relay in front of Postfix passes the original client on (XCLIENT: the Received header
# and access rules; XFORWARD: the log). Only clients listed here may, so only this port.
127.0.0.1:$XCLIENT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/xclient
  -o smtpd_authorized_xclient_hosts=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# ---------------------------------------------------------------- start, or reload if changed
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
greeting() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; IFS= read -r l <&3; printf '%s' \"\$l\"" 2>/dev/null || true; }
wait_ports() { # wait_ports SECONDS PORT...
  local deadline=$(($(date +%s) + $1)) p; shift
  for p in "$@"; do
    until port_open "$p"; do
      [ "$(date +%s)" -lt "$deadline" ] || return 1
      sleep 0.1
    done
  done
}
show_logs() { local f; for f in "$LOGS"/*.log; do [ -f "$f" ] && { log "--- $f"; tail -n 20 "$f" >&2; }; done; }
dovecot_pid() { # pid of this DIR's Dovecot master, if it runs (a stale pid file is ignored)
  local pid; pid=$(head -n1 "$DOV/run/master.pid" 2>/dev/null | tr -d ' ') || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $DOV/dovecot.conf" &&
    echo "$pid"
}

t1=$(now)
doveconf -c "$DOV/dovecot.conf" -n >/dev/null || die "dovecot config check failed"
if pid=$(dovecot_pid); then
  if [ -n "$changed_dovecot" ]; then
    log "dovecot runs (pid $pid): config changed, reloading"
    dovecot -c "$DOV/dovecot.conf" reload </dev/null >>"$LOGS/dovecot-start.log" 2>&1
  fi
else
  port_open "$LMTP_PORT" && die "port $LMTP_PORT is already in use by something else"
  rm -f "$DOV/run/master.pid"   # stale: that pid may belong to another process by now
  # Dovecot's master and log processes keep the stdout/stderr they start with: handed the
  # caller's pipe, they would keep `$(up.sh)` waiting forever.
  dovecot -c "$DOV/dovecot.conf" </dev/null >>"$LOGS/dovecot-start.log" 2>&1 ||
    { show_logs; die "dovecot failed to start"; }
fi
wait_ports 20 "$LMTP_PORT" || { show_logs; die "dovecot LMTP port $LMTP_PORT did not open"; }
# Postfix's SASL needs Dovecot's auth socket before the first AUTH.
for _ in $(seq 1 100); do [ -S "$DOV/run/auth-postfix" ] && break; sleep 0.1; done

if postfix -c "$PFX" status >/dev/null 2>&1; then
  if [ -n "$changed_postfix" ]; then
    log "postfix runs: config changed, reloading"
    postfix -c "$PFX" reload </dev/null >/dev/null 2>&1 || { show_logs; die "postfix reload failed"; }
  fi
else
  for p in "$SMTP_PORT" "$SMALL_PORT" "$NOPIPE_PORT" "$XCLIENT_PORT" "$SUBMISSION_PORT" "$SMTPS_PORT"; do
    port_open "$p" && die "port $p is already in use by something else"
  done
  postfix -c "$PFX" start </dev/null >/dev/null 2>&1 || { show_logs; die "postfix failed to start"; }
fi
wait_ports 20 "$SMTP_PORT" "$SMALL_PORT" "$NOPIPE_PORT" "$XCLIENT_PORT" "$SUBMISSION_PORT" "$SMTPS_PORT" ||
  { show_logs; die "postfix ports did not open"; }
# An open port is not enough: wait for the 220 greeting (the TLS port is only probed open,
# which logs a harmless "lost connection" in postfix.log).
for p in "$SMTP_PORT" "$SMALL_PORT" "$NOPIPE_PORT" "$XCLIENT_PORT" "$SUBMISSION_PORT" "$LMTP_PORT"; do
  g=$(greeting "$p"); case $g in 220*) ;; *) show_logs; die "port $p: unexpected greeting '$g'" ;; esac
done
log "servers up in $(secs "$t1")s (whole script $(secs "$t0")s)"

# ---------------------------------------------------------------- report
{
  emit() { printf 'export %s=%q\n' "$1" "$2"; }
  emit INTEROP_DIR "$DIR"
  emit INTEROP_HOST 127.0.0.1
  emit INTEROP_DOMAIN "$DOMAIN"
  emit INTEROP_HOSTNAME "$MX"
  emit INTEROP_SMTP_PORT "$SMTP_PORT"
  emit INTEROP_SMALL_PORT "$SMALL_PORT"
  emit INTEROP_NOPIPE_PORT "$NOPIPE_PORT"
  emit INTEROP_XCLIENT_PORT "$XCLIENT_PORT"
  emit INTEROP_SUBMISSION_PORT "$SUBMISSION_PORT"
  emit INTEROP_SMTPS_PORT "$SMTPS_PORT"
  emit INTEROP_LMTP_PORT "$LMTP_PORT"
  emit INTEROP_MESSAGE_SIZE_LIMIT "$SIZE_LIMIT"
  emit INTEROP_SMALL_SIZE_LIMIT "$SMALL_LIMIT"
  emit INTEROP_TLS_CA "$TLS/ca.pem"
  emit INTEROP_TLS_CERT "$TLS/cert.pem"
  emit INTEROP_USERS "$USERS"
  emit INTEROP_MAIL_ROOT "$MAIL/$DOMAIN"
  for pair in $USERS; do
    u=${pair%%:*}
    emit "INTEROP_MAILDIR_$(printf '%s' "$u" | tr 'a-z.-' 'A-Z__')" "$MAIL/$DOMAIN/$u/Maildir"
  done
  emit INTEROP_UTF8_ADDRESS "$UTF8_LOCAL@$DOMAIN"
  emit INTEROP_MAILDIR_UTF8 "$MAIL/$DOMAIN/utf8/Maildir"
  emit INTEROP_POSTFIX_LOG "$LOGS/postfix.log"
  emit INTEROP_DOVECOT_LOG "$LOGS/dovecot.log"
  emit INTEROP_POSTFIX_VERSION "$(postconf -c "$PFX" -h mail_version 2>/dev/null || echo unknown)"
  emit INTEROP_DOVECOT_VERSION "$(dovecot --version 2>/dev/null | cut -d' ' -f1 || echo unknown)"
} >"$DIR/env.sh"
cat "$DIR/env.sh"
