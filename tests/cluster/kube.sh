# Sourced by apiserver-* and etcd-compact: etcd + kube-apiserver under one DIR.
#   DIR/pki/       CA, serving cert (127.0.0.1, localhost), service-account key pair
#   DIR/etcd/      etcd data;  DIR/etcd.log, DIR/etcd.pid
#   DIR/kube-apiserver.log, DIR/kube-apiserver.pid, DIR/token.csv, DIR/kubeconfig, DIR/env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICE_CIDR=10.0.0.0/24

# kube_pki DIR: certificates and keys, made once (kept for restarts).
kube_pki() {
  local d=$1/pki
  [ -f "$d/sa.pub" ] && return 0
  mkdir -p "$d"
  (
    cd "$d"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 -subj /CN=kubefit-test-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req "${ec[@]}" -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
  ) >/dev/null 2>&1 || cl_die "openssl failed making certificates in $d"
}

# kube_write_config DIR: pick ports and a token, write token.csv, kubeconfig and env.
kube_write_config() {
  local dir=$1 etcd_port= peer_port= api_port= token ca_data
  { read -r etcd_port; read -r peer_port; read -r api_port; } < <(cl_free_ports 3) || true
  [ -n "$api_port" ] || cl_die "could not pick free ports (python3 needed)"
  token=$(openssl rand -hex 24)
  printf '%s,admin,admin-uid,"system:masters"\n' "$token" >"$dir/token.csv"
  ca_data=$(base64 -w0 <"$dir/pki/ca.crt")
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubefit
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $token
contexts:
- name: kubefit
  context:
    cluster: kubefit
    user: admin
    namespace: default
current-context: kubefit
EOF
  cat >"$dir/env" <<EOF
export KUBE_CLUSTER_DIR=$dir
export KUBECONFIG=$dir/kubeconfig
# kubectl caches discovery per host:port for hours; ports get reused across clusters, so each
# cluster gets its own cache (a stale one hides CRDs and categories).
export KUBECACHEDIR=$dir/kube-cache
export KUBE_APISERVER_URL=https://127.0.0.1:$api_port
export KUBE_TOKEN=$token
export KUBE_CA_FILE=$dir/pki/ca.crt
export KUBE_APISERVER_PID_FILE=$dir/kube-apiserver.pid
export KUBE_APISERVER_LOG=$dir/kube-apiserver.log
export ETCD_ENDPOINT=http://127.0.0.1:$etcd_port
export ETCDCTL_ENDPOINTS=http://127.0.0.1:$etcd_port
export ETCD_PID_FILE=$dir/etcd.pid
export ETCD_LOG=$dir/etcd.log
export ETCD_PEER_URL=http://127.0.0.1:$peer_port
EOF
}

etcd_healthy() { curl -sf --max-time 2 "$ETCD_ENDPOINT/health" | grep -q '"health":"true"'; }

kube_start_etcd() {
  local dir=$1
  cl_start "$ETCD_PID_FILE" "$ETCD_LOG" "$CLUSTER_BIN/etcd" --name kubefit --data-dir "$dir/etcd" \
    --listen-client-urls "$ETCD_ENDPOINT" --advertise-client-urls "$ETCD_ENDPOINT" \
    --listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
    --initial-cluster "kubefit=$ETCD_PEER_URL" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  cl_wait_ready etcd "$ETCD_PID_FILE" "$ETCD_LOG" etcd_healthy
}

kube_curl() {
  curl -sS --max-time 5 --cacert "$KUBE_CA_FILE" -H "Authorization: Bearer $KUBE_TOKEN" "$@"
}
apiserver_ready() { [ "$(kube_curl "$KUBE_APISERVER_URL/readyz")" = ok ]; }

# kube_start_apiserver DIR: start kube-apiserver from DIR/env and wait for /readyz.
kube_start_apiserver() {
  local dir=$1 extra=()
  cl_alive "$KUBE_APISERVER_PID_FILE" && cl_die "kube-apiserver of $dir is already running"
  cl_alive "$ETCD_PID_FILE" || cl_die "etcd of $dir is not running (apiserver-up starts it)"
  # shellcheck disable=SC2206 # word splitting of the extra flags is intended
  [ -n "${KUBE_APISERVER_EXTRA_ARGS:-}" ] && extra=($KUBE_APISERVER_EXTRA_ARGS)
  cl_start "$KUBE_APISERVER_PID_FILE" "$KUBE_APISERVER_LOG" "$CLUSTER_BIN/kube-apiserver" \
    --etcd-servers "$ETCD_ENDPOINT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${KUBE_APISERVER_URL##*:}" \
    --cert-dir "$dir/pki" --tls-cert-file "$dir/pki/apiserver.crt" \
    --tls-private-key-file "$dir/pki/apiserver.key" --client-ca-file "$dir/pki/ca.crt" \
    --token-auth-file "$dir/token.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none \
    --allow-privileged=true --profiling=false --v=1 "${extra[@]}"
  cl_wait_ready kube-apiserver "$KUBE_APISERVER_PID_FILE" "$KUBE_APISERVER_LOG" apiserver_ready
}

# kube_ensure_default_ns: the bootstrap controller makes it; create it if it is not there yet.
kube_ensure_default_ns() {
  local code i
  for ((i = 0; i < 50; i++)); do
    code=$(kube_curl -o /dev/null -w '%{http_code}' "$KUBE_APISERVER_URL/api/v1/namespaces/default")
    [ "$code" = 200 ] && return 0
    if [ "$code" = 404 ]; then
      code=$(kube_curl -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}' \
        "$KUBE_APISERVER_URL/api/v1/namespaces")
      [ "$code" = 201 ] || [ "$code" = 409 ] && return 0
    fi
    sleep 0.2
  done
  cl_die "namespace default: last HTTP status $code"
}

kube_load_env() {
  [ -f "$1/env" ] || cl_die "$1/env not found: run apiserver-up $1 first"
  # shellcheck disable=SC1091
  source "$1/env"
}

kube_up() {
  local dir try
  dir=$(cl_dir "${1:-}") || exit 1
  cl_need_bin etcd kube-apiserver
  command -v openssl >/dev/null || cl_die "openssl CLI not found"
  if [ -f "$dir/env" ]; then
    (kube_load_env "$dir" && ! cl_alive "$ETCD_PID_FILE" && ! cl_alive "$KUBE_APISERVER_PID_FILE") ||
      cl_die "etcd/kube-apiserver of $dir already up (apiserver-down it first)"
  fi
  kube_pki "$dir"
  # A port picked free can be taken before we bind it (tests run in parallel): retry with new ones.
  for try in 1 2 3; do
    kube_write_config "$dir"
    kube_load_env "$dir"
    if kube_start_etcd "$dir" && kube_start_apiserver "$dir"; then
      kube_ensure_default_ns
      cl_say "up: $KUBE_APISERVER_URL (etcd $ETCD_ENDPOINT); source $dir/env"
      return 0
    fi
    cl_stop "$KUBE_APISERVER_PID_FILE" kube-apiserver
    cl_stop "$ETCD_PID_FILE" etcd
    grep -qi "address already in use" "$ETCD_LOG" "$KUBE_APISERVER_LOG" 2>/dev/null || break
    cl_say "a port was taken; retrying ($try)"
    rm -rf "$dir/etcd"
  done
  cl_die "could not start etcd + kube-apiserver in $dir (logs: $ETCD_LOG, $KUBE_APISERVER_LOG)"
}

kube_down() {
  local dir
  dir=$(cl_dir "${1:-}") || exit 1
  [ -f "$dir/env" ] || return 0
  kube_load_env "$dir"
  cl_stop "$KUBE_APISERVER_PID_FILE" kube-apiserver
  cl_stop "$ETCD_PID_FILE" etcd
}

# etcd_compact: compact etcd (physically) to its current revision; prints the revision.
etcd_compact() {
  local rev
  rev=$(curl -sf --max-time 5 -X POST "$ETCD_ENDPOINT/v3/kv/range" -d '{"key":"AA=="}' |
        sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
  [ -n "$rev" ] || cl_die "could not read the revision from etcd at $ETCD_ENDPOINT"
  curl -sf --max-time 30 -X POST "$ETCD_ENDPOINT/v3/kv/compaction" \
    -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null ||
    cl_die "compaction to revision $rev failed at $ETCD_ENDPOINT"
  echo "$rev"
}
