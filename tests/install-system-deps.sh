#!/usr/bin/env bash
# Installs the Debian packages the test suite needs; safe to run repeatedly.
set -euo pipefail

if [[ "$(id -u)" -ne 0 ]]; then
    sudo_cmd=(sudo)
else
    sudo_cmd=()
fi

missing=()
if [[ ! -x /usr/sbin/dovecot ]]; then
    missing+=(dovecot-imapd)
fi
# postfix: the MTA tests run a private instance in front of the gateway.
if [[ ! -x /usr/sbin/postfix ]]; then
    missing+=(postfix)
fi
# libfaketime: runs the installed daemon through days of simulated time.
if ! command -v faketime >/dev/null 2>&1; then
    missing+=(faketime)
fi
# openssl: the STARTTLS tests make a self-signed certificate with it.
if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

# Containers have no init system; without this policy the postinst would try
# to start a system dovecot (ports 143/993) or postfix (port 25) that outlives
# the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [[ "$created_policy" -eq 1 ]]; then
        "${sudo_cmd[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT

# Without an answer the postfix postinst asks which kind of mail server this is;
# "No configuration" also leaves /etc/postfix/main.cf unwritten, which is fine
# because the tests bring their own config directories.
if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" \
        | "${sudo_cmd[@]}" debconf-set-selections
fi

"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

# Belt and braces: if a system instance got started anyway, stop it so the
# tests' private instances are the only dovecot and postfix processes around.
if [[ -S /run/dovecot/master ]] || pgrep -x dovecot >/dev/null 2>&1; then
    "${sudo_cmd[@]}" /usr/sbin/dovecot stop >/dev/null 2>&1 || true
fi
# The system instance's master holds the pid file in its queue directory; a
# private instance started by the tests has its own and is left alone.
if [[ -x /usr/sbin/postfix ]] && "${sudo_cmd[@]}" /usr/sbin/postfix status >/dev/null 2>&1; then
    "${sudo_cmd[@]}" /usr/sbin/postfix stop >/dev/null 2>&1 || true
fi
