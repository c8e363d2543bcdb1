# dcmon sensors probe: temperatures and fans the kernel exposes in /sys/class/hwmon,
# for hosts without a BMC. Normal user; no tools needed.
section() { printf '\n==dcmon== %s\n' "$1"; }
found=
for h in /sys/class/hwmon/hwmon*; do
  [ -d "$h" ] || continue
  found=1
  section "hwmon ${h##*/}"
  # The device link names the chip stably (coretemp.0, 0000:01:00.0); hwmonN can change.
  printf 'device=%s\n' "$(basename "$(readlink -f "$h/device" 2>/dev/null)" 2>/dev/null)"
  for f in "$h"/name "$h"/temp*_input "$h"/temp*_label "$h"/fan*_input "$h"/fan*_label; do
    [ -r "$f" ] && printf '%s=%s\n' "${f##*/}" "$(cat "$f" 2>/dev/null)"
  done
done
if [ -z "$found" ]; then section absent; echo "no hwmon sensors in /sys/class/hwmon"; fi
section end
