# Sourced by the GPU-machine scripts (device-bench.sh, device-cuda.sh): phases run as separate processes, each with its
# own time limit inside one overall deadline, so a slow or failing phase costs only itself.
# Needs R (results folder), DEADLINE (seconds from sourcing) and PHASES (the names to run) set by the caller.
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$R/phases.txt"; }
# phase NAME MAX_S CMD...: runs CMD with at most MAX_S seconds, never past the deadline; its output goes to R/NAME.log
phase() {
  local name=$1 max=$2; shift 2
  [[ " $PHASES " == *" $name "* ]] || return 0
  local left=$(( DEADLINE - ($(date +%s) - start) ))
  (( left < 20 )) && { stamp "$name skipped: ${left} s left"; return; }
  (( max > left )) && max=$left
  stamp "$name start (limit ${max} s)"
  timeout --kill-after=5 "$max" "$@" > "$R/$name.log" 2>&1
  stamp "$name rc=$?"
}
