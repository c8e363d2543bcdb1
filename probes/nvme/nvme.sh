# dcmon nvme probe: drive list and SMART / health log per NVMe drive (needs root).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v nvme >/dev/null 2>&1; then
  section absent; echo "nvme-cli is not installed"; section end; exit 0
fi
list=$(nvme list -o json 2>&1)
section list; printf '%s\n' "$list"
# Devices as nvme list names them: "DevicePath" (flat list) or "NameSpace" names
# (nested list of newer nvme-cli).
printf '%s\n' "$list" | sed -n -e 's/.*"DevicePath" *: *"\([^"]*\)".*/\1/p' -e 's/.*"NameSpace" *: *"\(nvme[0-9a-z]*\)".*/\/dev\/\1/p' |
  while read -r dev; do
    section "smart-log $dev"; nvme smart-log "$dev" -o json 2>&1
  done
section end
