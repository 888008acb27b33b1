#!/usr/bin/env bash
# The e2e label's cluster (a ctest fixture): hack/dev-cluster under the build tree, and the checks
# that `up` is idempotent and that `down` leaves the host as it found it.
#   cluster.sh up|down NAME DIR
# up: hack/dev-cluster up (the images come from the e2e_images fixture; a cluster an interrupted
#     run left is taken down first), then up again, which must find it up and change nothing.
# down: hack/dev-cluster down, then: no process names DIR, the namespace and the cgroups are gone,
#     and, when no other kubefit cluster runs, the sysctls the kubelet changed are back and the host
#     paths it made are gone.
# Not root: fails (KUBEFIT_ALLOW_SKIP=1 makes it a skip, 77).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:?usage: cluster.sh up|down NAME DIR} name=${2:?NAME} dir=${3:?DIR}
dc=("$root/hack/dev-cluster" --name "$name" --dir "$dir")
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  [ "${KUBEFIT_ALLOW_SKIP:-0}" = 1 ] && { echo "skip: the dev cluster needs root" >&2; exit 77; }
  fail "the dev cluster needs root (a network namespace, cgroups, containerd, a kubelet)"
fi
state=/run/kubefit-dev-cluster

case "$cmd" in
  up)
    # A cluster left by an interrupted run would run old images: start from scratch.
    [ ! -f "$dir/env" ] || "${dc[@]}" down
    KUBEFIT_CLUSTER_SKIP_IMAGES=1 "${dc[@]}" up
    start=$SECONDS
    out=$(KUBEFIT_CLUSTER_SKIP_IMAGES=1 "${dc[@]}" up 2>&1)
    echo "$out"
    grep -q "is up already" <<<"$out" || fail "a second up did not find the cluster up"
    [ $((SECONDS - start)) -lt 20 ] || fail "a second up took $((SECONDS - start))s"
    "${dc[@]}" status
    echo "ok: cluster $name up in $dir; a second up found it up"
    ;;
  down)
    saved=""
    others=$(ls "$state/clusters" 2>/dev/null | grep -vx "$name" || true)
    [ -z "$others" ] && [ -f "$state/sysctl.saved" ] && saved=$(cat "$state/sysctl.saved")
    "${dc[@]}" down
    left=$(pgrep -af "$dir/" || true)
    [ -z "$left" ] || fail "processes left after down: $left"
    [ ! -e "/run/netns/kubefit-$name" ] || fail "network namespace kubefit-$name left after down"
    for d in /sys/fs/cgroup/*/"kubefit-$name"; do
      [ ! -e "$d" ] || fail "cgroup $d left after down"
    done
    if [ -n "$others" ]; then
      echo "ok: down (other clusters still up: $others; host settings stay theirs)"
      exit 0
    fi
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      now=$(sysctl -n "${line%%=*}")
      [ "$now" = "${line#*=}" ] || fail "sysctl ${line%%=*} is $now after down, was ${line#*=}"
    done <<<"$saved"
    [ ! -e "$state" ] || fail "$state left after the last cluster went down"
    echo "ok: down: no process, namespace or cgroup left; sysctls restored (${saved//$'\n'/ })"
    ;;
  *) fail "usage: cluster.sh up|down NAME DIR" ;;
esac
