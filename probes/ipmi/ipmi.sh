# dcmon ipmi probe: in-band IPMI through ipmitool (needs root: become = true).
# Sections: sdr (sensor readings), dcmi (system power), chassis, sel (event log).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v ipmitool >/dev/null 2>&1; then
  section absent; echo "ipmitool is not installed"; section end; exit 0
fi
section sdr; ipmitool sdr elist 2>&1
section dcmi; ipmitool dcmi power reading 2>&1
section chassis; ipmitool chassis status 2>&1
# The newest 200 entries; the poller keeps only those after its saved cursor.
section sel; TZ=UTC ipmitool sel elist last 200 2>&1
section end
