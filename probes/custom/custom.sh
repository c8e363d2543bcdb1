# dcmon custom probe: runs the host's own scripts named in the inventory (custom_scripts)
# and reads their stdout as Prometheus text exposition format, like node_exporter's
# textfile collector. Input: DCMON_CUSTOM_SCRIPTS, one path per line.
section() { printf '\n==dcmon== %s\n' "$1"; }
if [ -z "$DCMON_CUSTOM_SCRIPTS" ]; then
  section absent; echo "no custom_scripts in the inventory for this host"; section end; exit 0
fi
printf '%s\n' "$DCMON_CUSTOM_SCRIPTS" | while IFS= read -r script; do
  [ -n "$script" ] || continue
  if [ ! -x "$script" ]; then section "missing $script"; continue; fi
  out=$("$script" 2>&1); status=$?
  # Each line behind a `|`: nothing a script prints can pass for a section marker.
  section "script $status $script"; printf '%s\n' "$out" | sed 's/^/|/'
done
section end
