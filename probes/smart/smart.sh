# dcmon smart probe: SMART health of every disk smartctl finds (needs root).
# -n standby: a sleeping disk is reported as sleeping, never spun up.
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v smartctl >/dev/null 2>&1; then
  section absent; echo "smartctl (smartmontools) is not installed"; section end; exit 0
fi
section scan; smartctl --scan --json 2>&1
# Plain --scan prints "DEVICE -d TYPE # comment", one device a line.
smartctl --scan 2>/dev/null | while read -r dev flag type rest; do
  [ "$flag" = "-d" ] || type=auto
  section "device $dev $type"
  smartctl --json --info --health --attributes --log=error --tolerance=verypermissive --nocheck=standby -d "$type" "$dev" 2>&1
done
section end
