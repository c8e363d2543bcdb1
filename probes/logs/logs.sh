# dcmon logs probe: new lines of the journal, the kernel ring (dmesg) and log files
# since the cursors the poller saved, at most DCMON_MAX_LINES per source per round
# (the rest follows next round, except in the kernel ring, which keeps only the newest).
# Inputs, set before this script: DCMON_MAX_LINES, DCMON_JOURNAL_CURSOR,
# DCMON_DMESG_CURSOR ("BOOT_ID:SECONDS"), DCMON_LOG_FILES ("PATH<tab>INODE:OFFSET" lines).
section() { printf '\n==dcmon== %s\n' "$1"; }
max=${DCMON_MAX_LINES:-1000}

# A source the login user may not read is reported as unavailable, not as a failure:
# unprivileged journal and dmesg access are ordinary (Debian sets dmesg_restrict=1).
if command -v journalctl >/dev/null 2>&1; then
  section journal
  # stderr holds only hints ("you are not seeing messages from other users").
  if [ -n "$DCMON_JOURNAL_CURSOR" ]; then
    journalctl -o json --no-pager --after-cursor="$DCMON_JOURNAL_CURSOR" 2>/dev/null | head -n "$max"
  else
    journalctl -o json --no-pager -n 100 2>/dev/null # first run: recent lines, not all history
  fi
fi

if command -v dmesg >/dev/null 2>&1; then
  boot=
  read -r boot 2>/dev/null </proc/sys/kernel/random/boot_id # a builtin: no fork
  last=-1 # nothing read this boot yet: every line, those stamped 0.000000 too
  case "$DCMON_DMESG_CURSOR" in "$boot":*) last=${DCMON_DMESG_CURSOR#*:} ;; esac
  # One dmesg and one awk (the ring can be a megabyte: read it once). A refusal is
  # dmesg's only line ("dmesg: read kernel buffer failed: ..."), reported as such. awk
  # reads btime from /proc/stat and keeps the newest $max new lines. A line without a
  # stamp continues the message before it and goes with it: printed when that message
  # is new, never on its own (else it came back every round).
  dmesg -r 2>&1 | awk -v last="$last" -v max="$max" -v boot="$boot" '
    BEGIN { keep = (last < 0); if (max < 1) max = 1 }
    NR == 1 && /^dmesg: / { refused = $0; next }
    refused != "" { next }
    match($0, /\[ *[0-9]+\.[0-9]+\]/) { t = substr($0, RSTART + 1, RLENGTH - 2) + 0; keep = (t > last) }
    keep { n++; ring[n % max] = $0 }
    END {
      if (refused != "") { printf "\n==dcmon== unavailable dmesg\n%s\n", refused; exit }
      while ((getline l < "/proc/stat") > 0) if (l ~ /^btime /) { btime = substr(l, 7); break }
      printf "\n==dcmon== dmesg\nboot_id=%s\nbtime=%s\n", boot, btime
      for (i = (n > max ? n - max + 1 : 1); i <= n; i++) print ring[i % max]
    }'
fi

# Files: resume at INODE:OFFSET; after a rotation finish the old file (found by its
# inode as PATH.1 or PATH.0) before starting the new one; a file seen for the first
# time starts at its end, like tail -F. Each line of a file is printed behind a `|`, so
# nothing a log line says can pass for a section marker.
printf '%s\n' "$DCMON_LOG_FILES" | while IFS='	' read -r path cursor; do
  [ -n "$path" ] || continue
  if [ ! -e "$path" ]; then continue; fi
  if [ ! -r "$path" ]; then section "unavailable $path"; echo "not readable by $(id -un)"; continue; fi
  both=$(stat -c '%i %s' "$path"); inode=${both% *}; size=${both#* } # one stat, not two
  old_inode=${cursor%%:*}; offset=${cursor#*:}
  if [ -z "$cursor" ]; then
    section "file $inode $size $path"
  elif [ "$inode" != "$old_inode" ]; then
    for old in "$path.1" "$path.0"; do
      if [ "$(stat -c %i "$old" 2>/dev/null)" = "$old_inode" ]; then
        section "file $old_inode $offset $path"; tail -c +"$((offset + 1))" "$old" | head -n "$max" | sed 's/^/|/'; break
      fi
    done
    section "file $inode 0 $path"; head -n "$max" "$path" | sed 's/^/|/'
  else
    [ "$size" -lt "$offset" ] && offset=0 # truncated in place (copytruncate)
    section "file $inode $offset $path"; tail -c +"$((offset + 1))" "$path" | head -n "$max" | sed 's/^/|/'
  fi
done
section end
