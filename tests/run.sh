#!/usr/bin/env bash
# Runs every dcmon test. Installs what the tests need when it is missing (apt, as root):
# the tests start their own private OpenSSH sshd on loopback and OpenIPMI's ipmi_sim,
# and drive the dashboard with curl and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v ipmitool >/dev/null 2>&1 || missing+=(ipmitool)
command -v ipmi_sim >/dev/null 2>&1 || missing+=(openipmi)
command -v sudo >/dev/null 2>&1 || missing+=(sudo) # become = true is tested against it
[ -x /usr/bin/prometheus ] || missing+=(prometheus) # scrapes /metrics; PromQL conformance
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager) # receives alerts
[ -x /usr/bin/victoria-metrics ] || missing+=(victoria-metrics) # receives remote write
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd) # receives alert mail
[ -x /usr/bin/chromium ] || missing+=(chromium) # headless, against the dashboard
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # a test certificate for HTTPS
command -v curl >/dev/null 2>&1 || missing+=(curl) # HTTPS client in a test
command -v strace >/dev/null 2>&1 || missing+=(strace) # counts what a probe round forks on the host
command -v ip >/dev/null 2>&1 || missing+=(iproute2) # the jump host tests' private network
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "tests/run.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The tests run their own sshd and Prometheus; the system ones are not needed
  # (no-op where services do not start).
  systemctl disable --now ssh prometheus prometheus-alertmanager victoria-metrics >/dev/null 2>&1 || true
fi

cargo test --workspace --locked
# The store's tests again with every write sealed into chunks at once, so every read
# path is tested on chunks too (store/src/sealing.rs).
DCMON_TEST_SEAL_EVERYTHING=1 cargo test --locked -p dcmon-store --lib
