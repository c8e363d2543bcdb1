# dcmon nvidia probe: per-GPU readings from nvidia-smi's CSV query (fast: no -q).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v nvidia-smi >/dev/null 2>&1; then
  section absent; echo "nvidia-smi is not installed"; section end; exit 0
fi
common=index,uuid,name,serial,driver_version,vbios_version,pci.bus_id,temperature.gpu,power.draw,power.limit,utilization.gpu,utilization.memory,fan.speed,clocks.sm,clocks.mem,memory.used,memory.total,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total,pcie.link.gen.current,pcie.link.width.current,persistence_mode,pstate,pcie.link.gen.max,pcie.link.width.max,clocks.max.sm,enforced.power.limit
section csv
# An unknown field fails the whole query (at once, before NVML starts), so newer fields
# come first and older drivers fall back: R535+ reports the average and instant power
# apart; before R530 clock event reasons were "throttle reasons" and there was no
# memory temperature.
newer=temperature.memory,clocks_event_reasons.active
r535=power.draw.average,power.draw.instant,driver_model.current,mig.mode.current,remapped_rows.correctable,remapped_rows.uncorrectable,remapped_rows.pending,remapped_rows.failure,retired_pages.single_bit_ecc.count,retired_pages.double_bit.count,retired_pages.pending
# Not the remapped_rows.histogram fields: on vGPU guests they flood the kernel log.
nvidia-smi --query-gpu=$common,$newer,$r535,gpu_recovery_action,fabric.state,fabric.status --format=csv,nounits 2>/dev/null ||
  nvidia-smi --query-gpu=$common,$newer,$r535 --format=csv,nounits 2>/dev/null ||
  nvidia-smi --query-gpu=$common,$newer --format=csv,nounits 2>&1 ||
  nvidia-smi --query-gpu=$common,clocks_throttle_reasons.active --format=csv,nounits 2>&1
# Who uses each GPU: its compute processes, each with its user and container, read from
# /proc by the one awk (no process per pid).
section apps
nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_gpu_memory --format=csv,nounits 2>&1 |
  awk -F', ' '
    BEGIN { while ((getline l < "/etc/passwd") > 0) { split(l, pw, ":"); name[pw[3]] = pw[1] } }
    NR == 1 && /gpu_uuid/ { for (i = 1; i <= NF; i++) if ($i == "pid") p = i; print $0 ", user, container"; next }
    !p || $p !~ /^[0-9]+$/ { print; next }
    { uid = ""; cid = ""
      f = "/proc/" $p "/status"
      while ((getline l < f) > 0) if (l ~ /^Uid:/) { split(l, u, /[ \t]+/); uid = u[2]; break }
      close(f)
      f = "/proc/" $p "/cgroup"
      while (cid == "" && (getline l < f) > 0) {
        n = split(l, part, /[-\/.:]/)
        for (i = 1; i <= n; i++) if (length(part[i]) == 64 && part[i] !~ /[^0-9a-f]/) { cid = substr(part[i], 1, 12); break }
      }
      close(f)
      print $0 ", " ((uid in name) ? name[uid] : uid) ", " cid }'
# What the PCIe bus holds, whatever the driver sees (a GPU fallen off the bus is here
# and not in the query above).
if command -v lspci >/dev/null 2>&1; then
  section pci; lspci -Dnn -d 10de: 2>&1
fi
if [ -n "${DCMON_EXPECTED_GPUS:-}" ]; then
  section expected; echo "$DCMON_EXPECTED_GPUS"
fi
section end
