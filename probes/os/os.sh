# dcmon os probe: prints one "==dcmon== NAME" section per source, for probes/os/parse.rs.
# POSIX sh, runs as a normal user, reads only /proc, /sys, /etc/os-release and df.
# Two processes per run, chosen by measurement (see probes/os/README.md): small files
# and the first lines of /proc/cpuinfo through shell builtins (sh's `read` costs a system
# call per byte, cheap for a few dozen bytes), the larger files through one `grep -H`
# (a block read each), and `df`, which nothing in /proc replaces. The leading newline
# of each marker keeps a section whose file lacks a final newline from running into the
# next marker.
section() { printf '\n==dcmon== %s\n' "$1"; }
put() { while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done <"$1"; }
section loadavg; put /proc/loadavg
section uptime; put /proc/uptime
section hostname; put /proc/sys/kernel/hostname
section uname
if read -r s </proc/sys/kernel/ostype && read -r r </proc/sys/kernel/osrelease &&
  read -r m </proc/sys/kernel/arch; then
  printf '%s %s %s\n' "$s" "$r" "$m"
else
  uname -srm
fi 2>/dev/null
section cpu_online; put /sys/devices/system/cpu/online 2>/dev/null
section cpu_model
n=0
while [ "$n" -lt 32 ] && IFS= read -r l; do
  n=$((n + 1))
  case $l in 'model name'* | Hardware* | 'cpu model'*) printf '%s\n' "$l"; break ;; esac
done </proc/cpuinfo 2>/dev/null
section files
grep -H '' /proc/stat /proc/meminfo /proc/diskstats /proc/net/dev /etc/os-release 2>/dev/null
section df; df -P -k 2>/dev/null
section end
