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
# to start a system dovecot that grabs ports 143/993 and outlives the install.
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

"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

# Belt and braces: if a system instance got started anyway, stop it so the
# tests' private instances are the only dovecot processes around.
if [[ -S /run/dovecot/master ]] || pgrep -x dovecot >/dev/null 2>&1; then
    "${sudo_cmd[@]}" /usr/sbin/dovecot stop >/dev/null 2>&1 || true
fi
