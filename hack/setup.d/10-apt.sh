#!/usr/bin/env bash
# Debian packages the build and the tests need.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
pkgs=(build-essential cmake ninja-build pkg-config git curl ca-certificates lz4 python3-venv
      libcurl4-openssl-dev libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libopenblas-dev
      openssl)
# make demo (KUBEFIT_APT_MINIMAL=1) needs the build's packages only; make test the rest too.
[ "${KUBEFIT_APT_MINIMAL:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev
      # hack/images and hack/dev-cluster (docs/dev-cluster.md): image builds, the node's runtime,
      # Pod networking, the local registry
      buildah podman mmdebstrap containerd runc containernetworking-plugins docker-registry
      iproute2 iptables util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # Packages such as docker-registry start their service when installed; hack/dev-cluster runs
  # its own, inside a network namespace. Without a policy-rc.d, one that refuses is put in place
  # for the install.
  policy=/usr/sbin/policy-rc.d; made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null && $sudo_cmd chmod 755 "$policy" && made_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  [ $made_policy = 0 ] || $sudo_cmd rm -f "$policy"
  [ $rc = 0 ] || exit $rc
fi
