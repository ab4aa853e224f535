#!/bin/sh
# Stops the Postfix + Dovecot set up by setup.sh and removes what it created.
# Usage (as root): teardown.sh [--purge]
#   --purge  also removes the packages (postfix, dovecot-imapd, dovecot-lmtpd)
# Environment: KITH_BENCH_DIR (/etc/kith-bench), as for setup.sh.
set -eu
DIR=${KITH_BENCH_DIR:-/etc/kith-bench}
RUN_DIR=/run/dovecot-kith

[ "$(id -u)" = 0 ] || { echo "teardown.sh: run as root" >&2; exit 1; }

if [ -f "$DIR/dovecot.conf" ] && [ -s "$RUN_DIR/master.pid" ]; then
    doveadm -c "$DIR/dovecot.conf" stop 2>/dev/null || kill "$(cat "$RUN_DIR/master.pid")" 2>/dev/null || true
fi
if command -v postfix >/dev/null 2>&1; then
    postfix stop 2>/dev/null || true
    # Remove our submissions service(s) from master.cf.
    for svc in $(postconf -M 2>/dev/null | awk '$1 ~ /^127\.0\.0\.1:[0-9]+$/ && $2 == "inet" {print $1}'); do
        postconf -MX "$svc/inet"
    done
    postconf -X virtual_mailbox_domains virtual_mailbox_maps virtual_transport \
        smtpd_sasl_type smtpd_sasl_path maillog_file 2>/dev/null || true
fi
rm -rf "$DIR" /var/vmail /var/lib/dovecot-kith "$RUN_DIR"
rm -f /var/spool/postfix/private/dovecot-lmtp /var/spool/postfix/private/auth
if [ "${1:-}" = "--purge" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q postfix dovecot-imapd dovecot-lmtpd dovecot-core
fi
echo "Postfix + Dovecot benchmark setup removed"
