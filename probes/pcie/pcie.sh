# dcmon pcie probe: PCIe link speed and width against their maximum, and AER error
# totals, for GPUs, NICs (Ethernet, InfiniBand) and NVMe drives, from sysfs (no root,
# two processes). DCMON_SYSFS stands for /sys (the tests' fake tree).
section() { printf '\n==dcmon== %s\n' "$1"; }
devices=${DCMON_SYSFS:-/sys}/bus/pci/devices
# Classes: 0300/0302 display (GPUs), 0200 Ethernet, 0207 InfiniBand, 0108 NVMe.
classes=$(grep -l -E '^0x(030[02]|020[07]|0108)' "$devices"/*/class 2>/dev/null)
if [ -z "$classes" ]; then
  section absent; echo "no GPU, NIC or NVMe device in $devices"; section end; exit 0
fi
files=
for class in $classes; do
  d=${class%/class}
  files="$files $d/class $d/current_link_speed $d/max_link_speed $d/current_link_width $d/max_link_width $d/aer_dev_correctable $d/aer_dev_nonfatal $d/aer_dev_fatal"
done
section devices
# Of the AER files only their TOTAL_ lines; the one-line files whole.
# shellcheck disable=SC2086 # PCI addresses hold no spaces: split on purpose
grep -H -E '^(TOTAL_ERR|[0-9]|0x)' $files 2>/dev/null
section end
