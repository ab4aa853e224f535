#!/bin/sh
# Postfix + Dovecot from Debian, on loopback, as a reference mail server for Kith's load
# generator (bench/) and for client tests against a standard SMTP/IMAP server.
#
# Usage (as root, Debian 12):  setup.sh [DOMAIN [ACCOUNTS]]
#   DOMAIN    mail domain of the virtual users            (default: bench.test)
#   ACCOUNTS  how many accounts the domain must have      (default: 100)
# Environment: SUBMISSIONS_PORT (11465), IMAPS_PORT (11993), KITH_BENCH_DIR (/etc/kith-bench),
#   DOVECOT_HIBERNATE_SECS (unset: off, Debian's default) moves IMAP connections that sit in
#   IDLE that long into Dovecot's shared imap-hibernate process (its answer to many idle
#   connections; one imap process per connection otherwise).
#
# Result:
#   submissions (SMTP, implicit TLS, AUTH PLAIN)  127.0.0.1:$SUBMISSIONS_PORT   (Postfix)
#   IMAPS (implicit TLS, IDLE)                     127.0.0.1:$IMAPS_PORT         (Dovecot)
#   $KITH_BENCH_DIR/accounts.txt    address:password, one per line (kith-loadgen --accounts)
#   $KITH_BENCH_DIR/cert.pem        the self-signed certificate (CN and SAN: DOMAIN, 127.0.0.1)
# Postfix delivers to Dovecot over LMTP. Dovecot runs as its own instance with its own config
# ($KITH_BENCH_DIR/dovecot.conf, base_dir /run/dovecot-kith), so Debian's default Dovecot
# configuration is left alone; Postfix's main.cf/master.cf are edited with postconf.
#
# Idempotent: running it again keeps existing accounts (adding more if ACCOUNTS grew),
# rewrites the configuration and restarts/reloads both servers.
set -eu

DOMAIN=${1:-bench.test}
COUNT=${2:-100}
SUBMISSIONS_PORT=${SUBMISSIONS_PORT:-11465}
IMAPS_PORT=${IMAPS_PORT:-11993}
HIBERNATE=${DOVECOT_HIBERNATE_SECS:-}
DIR=${KITH_BENCH_DIR:-/etc/kith-bench}
VMAIL=/var/vmail
RUN_DIR=/run/dovecot-kith
MAX_CONNECTIONS=20000

[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }
case $COUNT in ''|*[!0-9]*) echo "setup.sh: ACCOUNTS must be a number" >&2; exit 1;; esac

install_packages() {
    missing=""
    for p in postfix dovecot-imapd dovecot-lmtpd openssl python3; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        echo "postfix postfix/mailname string $DOMAIN" | debconf-set-selections
        apt-get update -q
        # shellcheck disable=SC2086
        apt-get install -y -q $missing
    fi
}

make_user_and_dirs() {
    getent group vmail >/dev/null || groupadd --system vmail
    getent passwd vmail >/dev/null || useradd --system --gid vmail --home-dir "$VMAIL" \
        --shell /usr/sbin/nologin vmail
    mkdir -p "$DIR" "$VMAIL"
    chown vmail:vmail "$VMAIL"
    chmod 0755 "$DIR"
}

make_certificate() {
    # An end-entity certificate (CA:FALSE): clients that pin it as their only trust anchor
    # (Kith's --ca-cert, rustls/webpki) refuse a CA certificate used as a server's own.
    if [ ! -s "$DIR/cert.pem" ] || ! openssl x509 -in "$DIR/cert.pem" -noout -subject \
        | grep -q "CN *= *$DOMAIN\$" || openssl x509 -in "$DIR/cert.pem" -noout -text \
        | grep -q "CA:TRUE"; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -days 3650 -subj "/CN=$DOMAIN" \
            -addext "subjectAltName=DNS:$DOMAIN,IP:127.0.0.1" \
            -addext "basicConstraints=critical,CA:FALSE" \
            -addext "keyUsage=critical,digitalSignature" \
            -addext "extendedKeyUsage=serverAuth" \
            -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
    fi
    chmod 0644 "$DIR/cert.pem"
    chmod 0600 "$DIR/key.pem"
}

# Adds random chatmail-style accounts (9 chars [a-z0-9] @ DOMAIN, 20-char password) until
# DOMAIN has COUNT; writes Dovecot's passwd-file (SHA512-CRYPT, as chatmail uses), Postfix's
# recipient table and the plain accounts file.
make_accounts() {
    touch "$DIR/accounts.txt"
    chmod 0600 "$DIR/accounts.txt"
    vmail_uid=$(id -u vmail)
    vmail_gid=$(id -g vmail)
    python3 -W ignore::DeprecationWarning - "$DIR" "$DOMAIN" "$COUNT" "$VMAIL" "$vmail_uid" "$vmail_gid" <<'EOF'
import os, secrets, string, subprocess, sys
d, domain, count, vmail, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
path = os.path.join(d, "accounts.txt")
accounts = [l.strip().split(":", 1) for l in open(path) if ":" in l]
mine = [a for a in accounts if a[0].endswith("@" + domain)]
local_chars = string.ascii_lowercase + string.digits
pw_chars = string.ascii_letters + string.digits
taken = {a[0] for a in accounts}
new = []
while len(mine) + len(new) < count:
    addr = "".join(secrets.choice(local_chars) for _ in range(9)) + "@" + domain
    if addr not in taken:
        taken.add(addr)
        new.append([addr, "".join(secrets.choice(pw_chars) for _ in range(20))])
with open(path, "a") as f:
    for a, p in new:
        f.write(f"{a}:{p}\n")
accounts += new
# passwd-file keeps the hashes of existing users; hash only the new ones.
users_path = os.path.join(d, "users")
hashes = {}
if os.path.exists(users_path):
    for l in open(users_path):
        parts = l.rstrip("\n").split(":")
        if len(parts) > 1:
            hashes[parts[0]] = parts[1]
# SHA512-crypt by `openssl passwd -6` in one batch (Python's crypt module is gone in 3.13).
todo = [p for a, p in accounts if a not in hashes]
if todo:
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input="\n".join(todo) + "\n",
                         capture_output=True, text=True, check=True).stdout.split()
    fresh = dict(zip(todo, out))
with open(users_path + ".new", "w") as f:
    for a, p in accounts:
        h = hashes.get(a) or "{SHA512-CRYPT}" + fresh[p]
        local, dom = a.split("@", 1)
        f.write(f"{a}:{h}:{uid}:{gid}::{vmail}/{dom}/{local}::\n")
os.replace(users_path + ".new", users_path)
with open(os.path.join(d, "vmailbox"), "w") as f:
    for a, _ in accounts:
        f.write(f"{a} OK\n")
print(f"accounts for {domain}: {len(mine) + len(new)} ({len(new)} new)")
EOF
    chown root:dovecot "$DIR/users"
    chmod 0640 "$DIR/users"
}

write_dovecot_config() {
    cat >"$DIR/dovecot.conf" <<EOF
# Written by bench/postfix-dovecot/setup.sh; a separate Dovecot instance for Kith benchmarks.
instance_name = dovecot-kith
base_dir = $RUN_DIR/
state_dir = /var/lib/dovecot-kith
protocols = imap lmtp
listen = 127.0.0.1
log_path = /var/log/dovecot-kith.log
ssl = required
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
mail_location = maildir:~/Maildir
mail_uid = vmail
mail_gid = vmail
first_valid_uid = 100
# One user may hold many connections from 127.0.0.1 (default 10).
mail_max_userip_connections = 1000
# Room for 10,000 concurrent IMAP connections (defaults: 100 imap processes, 1000 clients
# per process); Dovecot runs one imap process per connection.
default_client_limit = $MAX_CONNECTIONS
default_vsz_limit = 1G
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
  # Dovecot's documented high-performance mode: login processes serve many clients.
  service_count = 0
  process_min_avail = 2
  process_limit = 4
  client_limit = $MAX_CONNECTIONS
}
service imap {
  process_limit = $MAX_CONNECTIONS
}
service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
EOF
    if [ -n "$HIBERNATE" ]; then
        cat >>"$DIR/dovecot.conf" <<EOF
# IDLE connections hibernate after ${HIBERNATE}s (DOVECOT_HIBERNATE_SECS).
imap_hibernate_timeout = ${HIBERNATE}s
service imap {
  unix_listener imap-master {
    user = \$default_internal_user
  }
  extra_groups = \$default_internal_group
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = \$default_internal_group
  }
}
EOF
    fi
    mkdir -p /var/lib/dovecot-kith
}

configure_postfix() {
    # "No configuration" (above) leaves Debian's postfix without a main.cf on a machine
    # that never had one; start from Debian's own template, as its postinst suggests.
    [ -f /etc/postfix/main.cf ] || cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf
    postconf -e \
        "myhostname = $DOMAIN" \
        "maillog_file = /var/log/postfix-kith.log" \
        "inet_interfaces = loopback-only" \
        "inet_protocols = ipv4" \
        "mydestination = localhost" \
        "virtual_mailbox_domains = $DOMAIN" \
        "virtual_mailbox_maps = texthash:$DIR/vmailbox" \
        "virtual_transport = lmtp:unix:private/dovecot-lmtp" \
        "smtpd_sasl_type = dovecot" \
        "smtpd_sasl_path = private/auth" \
        "smtpd_tls_cert_file = $DIR/cert.pem" \
        "smtpd_tls_key_file = $DIR/key.pem" \
        "smtpd_recipient_limit = 2000" \
        "smtpd_client_connection_count_limit = 0" \
        "smtpd_client_connection_rate_limit = 0" \
        "smtpd_client_message_rate_limit = 0" \
        "smtpd_client_recipient_rate_limit = 0" \
        "in_flow_delay = 0" \
        "default_process_limit = 1000" \
        "content_filter =" \
        "smtpd_milters =" \
        "non_smtpd_milters ="
    svc="127.0.0.1:$SUBMISSIONS_PORT/inet"
    postconf -M "$svc=127.0.0.1:$SUBMISSIONS_PORT inet n - n - 500 smtpd"
    for p in \
        "syslog_name=postfix/submissions" \
        "smtpd_tls_wrappermode=yes" \
        "smtpd_tls_security_level=encrypt" \
        "smtpd_sasl_auth_enable=yes" \
        "smtpd_client_restrictions=permit_sasl_authenticated,reject" \
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject" \
        "smtpd_recipient_restrictions=permit_sasl_authenticated,reject"; do
        postconf -P "$svc/$p"
    done
    newaliases 2>/dev/null || true
}

# Dovecot watches every selected mailbox with inotify; past fs.inotify.max_user_instances
# (128 by default, per UID, and every mailbox here belongs to vmail) it silently falls back
# to polling every 30 s, which would wreck IDLE latency with more than ~100 connections.
raise_kernel_limits() {
    if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 65536 ]; then
        sysctl -q -w fs.inotify.max_user_instances=65536 \
            || echo "setup.sh: warning: cannot raise fs.inotify.max_user_instances" >&2
    fi
    if [ "$(cat /proc/sys/fs/inotify/max_user_watches)" -lt 524288 ]; then
        sysctl -q -w fs.inotify.max_user_watches=524288 \
            || echo "setup.sh: warning: cannot raise fs.inotify.max_user_watches" >&2
    fi
}

start_servers() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    if [ -s "$RUN_DIR/master.pid" ] && kill -0 "$(cat "$RUN_DIR/master.pid")" 2>/dev/null; then
        doveadm -c "$DIR/dovecot.conf" reload
    else
        # Daemons must not hold our stdout open (a caller piping us would wait forever).
        dovecot -c "$DIR/dovecot.conf" </dev/null >>/var/log/dovecot-kith.log 2>&1
    fi
    if postfix status >/dev/null 2>&1; then
        postfix reload </dev/null >>/var/log/postfix-kith.log 2>&1
    else
        postfix start </dev/null >>/var/log/postfix-kith.log 2>&1
    fi
    # Wait for both listeners.
    # (python3 rather than ss: a minimal Debian has no iproute2.)
    for _ in $(seq 50); do
        if python3 -c 'import socket, sys
for port in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(port)), 1).close()' \
            "$IMAPS_PORT" "$SUBMISSIONS_PORT" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "setup.sh: listeners did not come up; see /var/log/dovecot-kith.log and the mail log" >&2
    exit 1
}

install_packages
make_user_and_dirs
make_certificate
make_accounts
write_dovecot_config
configure_postfix
raise_kernel_limits
start_servers
echo "Postfix submissions 127.0.0.1:$SUBMISSIONS_PORT, Dovecot IMAPS 127.0.0.1:$IMAPS_PORT"
echo "accounts: $DIR/accounts.txt   certificate: $DIR/cert.pem   Dovecot master pid: $(cat "$RUN_DIR/master.pid")"
