# dcmon nvidia_details probe: the full XML report (slow: seconds on multi-GPU hosts).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v nvidia-smi >/dev/null 2>&1; then
  section absent; echo "nvidia-smi is not installed"; section end; exit 0
fi
section xml; nvidia-smi -q -x 2>&1
# Link state and speed per GPU (a link that drops reads <inactive>).
section nvlink; nvidia-smi nvlink -s 2>&1
# Per-link replay, recovery and CRC error counters: a link accumulating them fails days later.
section nvlink_errors; nvidia-smi nvlink -e 2>&1
# NVSwitch systems: NVLink (and CUDA) need the fabric manager running. Asked only where
# its unit is installed (the tests are builtins: no process on other hosts).
for unit in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
  if [ -e "$unit/nvidia-fabricmanager.service" ]; then
    section fabricmanager
    systemctl show -p LoadState,ActiveState,SubState,NRestarts,Result nvidia-fabricmanager 2>&1
    break
  fi
done
section end
