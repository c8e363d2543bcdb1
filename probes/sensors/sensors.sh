# dcmon sensors probe: temperatures and fans the kernel exposes in /sys/class/hwmon,
# for hosts without a BMC. Normal user; no tools needed, and no process forked.
section() { printf '\n==dcmon== %s\n' "$1"; }
found=
for h in /sys/class/hwmon/hwmon*; do
  [ -d "$h" ] || continue
  found=1
  section "hwmon ${h##*/}"
  # The device link names the chip stably (coretemp.0, 0000:01:00.0); hwmonN can change.
  # `cd -P` resolves it with builtins alone (the run's cwd is its own, see ARCHITECTURE.md).
  d=
  if cd -P "$h/device" 2>/dev/null; then d=${PWD##*/}; fi
  printf 'device=%s\n' "$d"
  # Each value is a few bytes: a builtin `read` costs less than forking `cat` per file.
  for f in "$h"/name "$h"/temp*_input "$h"/temp*_label "$h"/fan*_input "$h"/fan*_label; do
    [ -r "$f" ] || continue
    v=
    IFS= read -r v 2>/dev/null <"$f"
    printf '%s=%s\n' "${f##*/}" "$v"
  done
done
if [ -z "$found" ]; then section absent; echo "no hwmon sensors in /sys/class/hwmon"; fi
section end
