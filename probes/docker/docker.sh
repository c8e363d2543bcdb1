# dcmon docker probe: containers and their resource use (needs the docker group or root).
section() { printf '\n==dcmon== %s\n' "$1"; }
if ! command -v docker >/dev/null 2>&1; then
  section absent; echo "docker is not installed"; section end; exit 0
fi
section ps; docker ps -a --no-trunc --format '{{json .}}' 2>&1
section stats; docker stats --no-stream --no-trunc --format '{{json .}}' 2>&1
section end
