# dcmon apt probe: pending upgrades (security ones counted apart) and reboot-required,
# from the package lists as of the last `apt update` (this probe never updates them).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v apt-get >/dev/null 2>&1; then
  section absent; echo "apt-get is not installed (not a Debian/Ubuntu host)"; section end; exit 0
fi
section upgrade; LC_ALL=C apt-get -s -o Debug::NoLocking=true dist-upgrade 2>&1
section reboot
if [ -f /var/run/reboot-required ]; then echo required; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo not-required; fi
section lists; stat -c %Y /var/lib/apt/lists 2>/dev/null
section end
