# dcmon os probe: prints one "==dcmon== NAME" section per source, for probes/os/parse.rs.
# POSIX sh, runs as a normal user, reads only /proc, /sys and /etc/os-release
# (filesystems are the fs probe's: `df` is a process).
# It runs inside the persistent shell itself (`in_shell`), with no subshell around it,
# so it defines no function, changes no option, directory, trap or umask, never exits,
# and unsets every variable it sets (all named dcmon_os_*).
# Chosen by measurement (see probes/os/README.md): small files through builtin `read`
# (dash's costs a system call per byte, cheap for a few dozen bytes); where the shell is
# bash, /proc/cpuinfo's head and the larger files through `mapfile` (a block read each,
# no process), else dash's `read` and one `grep -H ''`. So a round forks nothing under
# bash and one `grep` under dash. Both ways print the larger files as `FILE:LINE`. The leading newline of each
# marker keeps a section whose file lacks a final newline from running into the next.
for dcmon_os_f in loadavg:/proc/loadavg uptime:/proc/uptime hostname:/proc/sys/kernel/hostname; do
  printf '\n==dcmon== %s\n' "${dcmon_os_f%%:*}"
  while IFS= read -r dcmon_os_l || [ -n "$dcmon_os_l" ]; do
    printf '%s\n' "$dcmon_os_l"
  done <"${dcmon_os_f#*:}"
done
printf '\n==dcmon== uname\n'
if read -r dcmon_os_s </proc/sys/kernel/ostype && read -r dcmon_os_r </proc/sys/kernel/osrelease &&
  read -r dcmon_os_m </proc/sys/kernel/arch; then
  printf '%s %s %s\n' "$dcmon_os_s" "$dcmon_os_r" "$dcmon_os_m"
else
  uname -srm
fi 2>/dev/null
printf '\n==dcmon== cpu_online\n'
{ read -r dcmon_os_l && printf '%s\n' "$dcmon_os_l"; } </sys/devices/system/cpu/online 2>/dev/null
if [ -n "${BASH_VERSION-}" ]; then
  # In eval so that sh parses nothing of bash's syntax.
  eval 'printf "\n==dcmon== cpu_model\n"
  mapfile -t -n 32 dcmon_os_a </proc/cpuinfo
  for dcmon_os_l in "${dcmon_os_a[@]}"; do
    case $dcmon_os_l in "model name"* | Hardware* | "cpu model"*) printf "%s\n" "$dcmon_os_l"; break ;; esac
  done
  printf "\n==dcmon== files\n"
  for dcmon_os_f in /proc/stat /proc/meminfo /proc/diskstats /proc/net/dev /etc/os-release; do
    mapfile -t dcmon_os_a <"$dcmon_os_f" && [ "${#dcmon_os_a[@]}" -gt 0 ] &&
      printf "%s\n" "${dcmon_os_a[@]/#/$dcmon_os_f:}"
  done' 2>/dev/null
else
  printf '\n==dcmon== cpu_model\n'
  dcmon_os_n=0
  while [ "$dcmon_os_n" -lt 32 ] && IFS= read -r dcmon_os_l; do
    dcmon_os_n=$((dcmon_os_n + 1))
    case $dcmon_os_l in 'model name'* | Hardware* | 'cpu model'*) printf '%s\n' "$dcmon_os_l"; break ;; esac
  done </proc/cpuinfo 2>/dev/null
  printf '\n==dcmon== files\n'
  # LC_ALL=C: grep in a UTF-8 locale loads locale data and decodes every byte (0.3 ms
  # more a round, measured); the bytes it prints are the same.
  LC_ALL=C grep -H '' /proc/stat /proc/meminfo /proc/diskstats /proc/net/dev /etc/os-release 2>/dev/null
fi
printf '\n==dcmon== end\n'
unset dcmon_os_f dcmon_os_l dcmon_os_s dcmon_os_r dcmon_os_m dcmon_os_n dcmon_os_a
