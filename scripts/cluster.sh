#!/usr/bin/env bash
# Polyhead on several hosts, on one Linux machine: one PostgreSQL, N replicas and Debian's nginx in front.
# As root every replica is a host of its own: a network namespace with its own address on a private bridge
# and its own data folder. Where namespaces are not allowed (a container without CAP_NET_ADMIN, or not root)
# or with --loopback, every host gets its own 127.213.x.y address on loopback instead, and the output says so.
#
#   scripts/cluster.sh [--dir DIR] start [--replicas N] [--port PORT] [--loopback] [--no-wait] [--timeout S]
#   scripts/cluster.sh [--dir DIR] stop [--keep]            everything down (works after a crash); --keep: the folder stays
#   scripts/cluster.sh [--dir DIR] status                   one line per host; exit 1 when something is down
#   scripts/cluster.sh [--dir DIR] urls                     KEY=value lines (the same as DIR/cluster.env)
#   scripts/cluster.sh [--dir DIR] wait [SECONDS]           until every replica is ready and nginx sends to it
#   scripts/cluster.sh [--dir DIR] replica N stop|kill|start|restart [--no-wait]
#   scripts/cluster.sh [--dir DIR] postgres stop|kill|start|restart
#
# DIR (default $POLYHEAD_CLUSTER_DIR, else $TMPDIR/polyhead-cluster) holds all of it: cluster.env and
# cluster.json (URLs, addresses, pids), api-key, postgres/ (data and log), replica-N/ (data folder, log, pid),
# nginx/ (config, upstream.conf as the health checker writes it, logs) and health.log. Replicas run the
# checkout's dist/src/main.js (built first if missing); POLYHEAD_* settings in the environment reach them.
# Open-source nginx has no active health checks: a loop of this script polls each replica's /readyz every
# second and marks the unready ones `down` in upstream.conf, then reloads nginx (docs/scaling.md says why).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$root/scripts/cluster.sh"
dir=${POLYHEAD_CLUSTER_DIR:-${TMPDIR:-/tmp}/polyhead-cluster}

say() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }
usage() { sed -n '7,13p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || usage
command=$1; shift
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")

# ---- what a cluster is made of -------------------------------------------------------------------------

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
is_root() { [ "$(id -u)" = 0 ]; }
as_postgres() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Cluster numbers are claimed in one folder per machine (mkdir is atomic), so that clusters started at the same
# time (tests) get different addresses and interface names. A claim whose folder is gone is reclaimed.
claims_dir() { if is_root; then echo /run/polyhead-clusters; else echo "${TMPDIR:-/tmp}/polyhead-clusters-$(id -u)"; fi; }

# State written at start, read by every other command.
load_state() {
  [ -f "$dir/cluster.env" ] || die "no cluster in $dir (scripts/cluster.sh start)"
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
  id=$POLYHEAD_CLUSTER_ID network=$POLYHEAD_CLUSTER_NETWORK replicas=$POLYHEAD_CLUSTER_REPLICAS
}

netns_of() { echo "polyhead-$id-$1"; }      # $1: r1, r2, ...
replica_address() { if [ "$network" = netns ]; then echo "10.213.$id.$((10 + $1))"; else echo "127.213.$id.$((10 + $1))"; fi; }
# Inside its own namespace every replica has port 4000 to itself; on shared loopback a wildcard listener
# elsewhere on the machine could hold 4000, so each replica takes a port of its own there.
replica_port() { if [ "$network" = netns ]; then echo 4000; else echo $((40000 + id * 20 + $1)); fi; }
pg_address() { if [ "$network" = netns ]; then echo "10.213.$id.1"; else echo "127.213.$id.1"; fi; }
pg_port() { echo $((55400 + id)); }
pg_options() { echo "-p $(pg_port) -k $dir/postgres -c listen_addresses=$(pg_address) -c fsync=off -c max_connections=300"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# A pid file may outlive its process and the pid be reused: a process is ours when its environment names our
# replica's data folder (replicas) or its command line names our folder (nginx, the health loop).
replica_pid() {
  local pid; pid=$(cat "$dir/replica-$1/pid" 2>/dev/null) || return 1
  pid_alive "$pid" && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "POLYHEAD_DATA_DIR=$dir/replica-$1/data" && echo "$pid"
}
owned_pid() { # pid-file pattern
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" && echo "$pid"
}
nginx_pid() { owned_pid "$dir/nginx/nginx.pid" "$dir/nginx"; }
# Workers whose master died (killed outright) keep serving and holding the port; they are known by the log
# files of this cluster that they hold open (nginx gives workers no other trace of the configuration).
orphan_nginx_workers() {
  local proc
  for proc in /proc/[0-9]*; do
    [[ "$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null)" == "nginx: "* ]] || continue
    ls -l "$proc/fd" 2>/dev/null | grep -q -- "$dir/nginx/" && echo "${proc#/proc/}"
  done
  return 0
}
health_pid() { owned_pid "$dir/health.pid" "_health"; }

# The HTTP status of GET path, or 000 when nothing answers in time. Plain bash (/dev/tcp): curl is not on every
# machine, and the health loop runs this every second for every replica.
http_status() { # host port path timeout-seconds
  timeout "$4" bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3 && read -r _ code _ <&3 && echo "$code"' \
    "$1" "$2" "$3" 2>/dev/null || echo 000
}

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# ---- network -------------------------------------------------------------------------------------------

# A bridge ph<id>br on the host (10.213.<id>.1, where PostgreSQL listens) and one namespace per replica, joined
# to it by a veth pair. PostgreSQL and nginx stay in the host's namespace: traffic from a replica to them is
# host input, not bridged forwarding, so a host firewall that drops forwarded traffic (Docker's) does not matter.
create_network() {
  local br="ph${id}br" n ns host_end
  ip link add "$br" type bridge
  ip addr add "10.213.$id.1/24" dev "$br"
  ip link set "$br" up
  for n in $(seq 1 "$replicas"); do
    ns=$(netns_of "r$n") host_end="ph${id}r${n}h"
    ip netns add "$ns"
    ip link add "$host_end" type veth peer name "ph${id}r${n}n"
    ip link set "ph${id}r${n}n" netns "$ns"
    ip link set "$host_end" master "$br" up
    ip -n "$ns" link set "ph${id}r${n}n" name eth0
    ip -n "$ns" addr add "$(replica_address "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# Removes every namespace and link of cluster $1, whatever state a crash left them in. Processes still inside
# one of its namespaces are ours (we put them there): they are killed first.
remove_network() {
  local cid=$1 ns link pids
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^polyhead-$cid-" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^ph${cid}(br|r[0-9]+[hn])$" || true); do
    ip link delete "$link" 2>/dev/null || true
  done
}

# ---- PostgreSQL ----------------------------------------------------------------------------------------

pg_start() { as_postgres "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" -l "$dir/postgres/log" -w -o "$(pg_options)" start >/dev/null; }
pg_stop() { as_postgres "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" -m "${1:-fast}" -w stop >/dev/null; }
pg_running() { [ -d "$dir/postgres/data" ] && as_postgres "$(pg_bin)/pg_ctl" -D "$dir/postgres/data" status >/dev/null 2>&1; }

create_postgres() {
  mkdir -p "$dir/postgres"
  is_root && chown postgres: "$dir/postgres"
  as_postgres "$(pg_bin)/initdb" -D "$dir/postgres/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  # The replicas connect from their own addresses; trust, as the test clusters do (nothing here leaves the machine).
  if [ "$network" = netns ]; then
    echo "host all all 10.213.$id.0/24 trust" | as_postgres tee -a "$dir/postgres/data/pg_hba.conf" >/dev/null
  else
    echo "host all all 127.0.0.0/8 trust" | as_postgres tee -a "$dir/postgres/data/pg_hba.conf" >/dev/null
  fi
  pg_start
  as_postgres "$(pg_bin)/createdb" -h "$(pg_address)" -p "$(pg_port)" -U postgres polyhead
}

# ---- replicas ------------------------------------------------------------------------------------------

start_replica() {
  local n=$1 folder="$dir/replica-$1"
  mkdir -p "$folder/data"
  local run=()
  [ "$network" = netns ] && run=(ip netns exec "$(netns_of "r$n")")
  echo "---- started $(date -u +%FT%TZ)" >>"$folder/log"
  # setsid: a replica outlives this script and a Ctrl-C in its terminal. Without job control a background job
  # leads no process group, so setsid and `ip netns exec` both exec in place and $! is the server's own pid.
  # The node flag is npm start's (src/server/node-flags.ts).
  # POLYHEAD_SHUTDOWN_DELAY_MS: on SIGTERM a replica first says "draining" on /readyz while still serving, long
  # enough for the health loop (two misses a second apart) to take it out of nginx: a rolling restart loses nothing.
  DATABASE_URL=$POLYHEAD_CLUSTER_DATABASE_URL HOST=$(replica_address "$n") PORT=$(replica_port "$n") \
    POLYHEAD_SHUTDOWN_DELAY_MS=${POLYHEAD_SHUTDOWN_DELAY_MS:-4000} \
    POLYHEAD_DATA_DIR="$folder/data" POLYHEAD_API_KEY=$(cat "$dir/api-key") \
    setsid "${run[@]}" node --max-semi-space-size=64 "$root/dist/src/main.js" </dev/null >>"$folder/log" 2>&1 &
  echo $! >"$folder/pid"
}

stop_replica() { # n signal
  local pid; pid=$(replica_pid "$1") || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  # SIGTERM drains for up to POLYHEAD_SHUTDOWN_TIMEOUT_MS (10 s); then it is killed.
  local limit=$(( (${POLYHEAD_SHUTDOWN_DELAY_MS:-4000} + ${POLYHEAD_SHUTDOWN_TIMEOUT_MS:-10000}) / 1000 + 5 )) waited=0
  while pid_alive "$pid"; do
    sleep 0.2; waited=$((waited + 1))
    if [ $waited -ge $((limit * 5)) ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

replica_ready() { [ "$(http_status "$(replica_address "$1")" "$(replica_port "$1")" /readyz 3)" = 200 ]; }

# ---- nginx ---------------------------------------------------------------------------------------------

write_nginx_config() {
  local conf="$dir/nginx"
  mkdir -p "$conf/temp"
  cat >"$conf/nginx.conf" <<EOF
# Written by scripts/cluster.sh. upstream.conf is rewritten by its health loop (replicas not ready: down).
worker_processes auto;
pid $conf/nginx.pid;
error_log $conf/error.log warn;
events { worker_connections 4096; }
http {
  log_format upstream '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent \$request_time '
                      'upstream=\$upstream_addr status=\$upstream_status time=\$upstream_response_time';
  access_log $conf/access.log upstream buffer=64k flush=1s;
  client_body_temp_path $conf/temp/body;
  proxy_temp_path $conf/temp/proxy;
  fastcgi_temp_path $conf/temp/fastcgi;
  uwsgi_temp_path $conf/temp/uwsgi;
  scgi_temp_path $conf/temp/scgi;
  # Above the server's POLYHEAD_MAX_BODY_BYTES (4 MiB): a replica answers too large a body with its own typed 413.
  client_max_body_size 16m;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  include $conf/upstream.conf;
  server {
    listen 127.0.0.1:$POLYHEAD_CLUSTER_PORT;
    # No keep-alive towards clients. The health loop reloads nginx whenever a replica goes out or comes back, and
    # a reload's old workers close their idle client connections: a client that sends on one at that moment gets
    # a reset (HTTP/1.1's keep-alive race), which the fault tests saw as ~25 failed requests per reload at 64
    # clients. With a connection per request nothing is idle; on loopback that costs one handshake per request.
    # Keep-alive towards the replicas stays on (upstream keepalive below).
    keepalive_timeout 0;
    location / {
      proxy_pass http://polyhead;
      proxy_http_version 1.1;
      # Keep-alive to the replicas, and WebSocket upgrades (subscriptions) passed through.
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_connect_timeout 1s;
      # Longer than a replica's POLYHEAD_REQUEST_TIMEOUT_MS (30 s): the replica answers DEADLINE_EXCEEDED itself.
      proxy_read_timeout 60s;
      proxy_send_timeout 60s;
      # Another replica is tried when a connection fails or times out. Without non_idempotent, nginx never
      # re-sends a POST once any of it reached a replica: a GraphQL mutation is sent at most once. Queries by
      # GET (GraphQL over GET carries no mutations) are retried also after a timeout. A 5xx is not retried:
      # a replica's own error (503 OVERLOADED at the edge) must not be multiplied over the others.
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_next_upstream_timeout 10s;
      # Which replica answered (the address nginx used; several when it tried more than one).
      add_header X-Polyhead-Replica \$upstream_addr always;
      # A replica that went away mid-request (killed): the client gets a typed GraphQL error, not nginx's page.
      error_page 502 504 = @replica_lost;
    }
    location @replica_lost {
      default_type application/json;
      add_header X-Polyhead-Replica \$upstream_addr always;
      return 502 '{"errors":[{"message":"the replica serving this request went away before answering; a query may be sent again, a mutation may or may not have been applied","extensions":{"code":"REPLICA_UNAVAILABLE"}}]}';
    }
  }
}
EOF
}

# The upstream block for the given ready replicas ("1 3"). With none ready, every replica stays in: nginx's
# passive checks still route around dead ones, and a replica that says "not ready" only because PostgreSQL is
# away still answers inference (the fail-open choice, as Envoy's panic threshold; docs/scaling.md).
upstream_config() {
  local ready=" $1 " n address
  echo "upstream polyhead {"
  echo "  least_conn;"
  # Idle keep-alive connections close before the replicas' own 5 s keep-alive timeout, so nginx never
  # writes a request onto a connection that the replica is closing at that moment.
  echo "  keepalive 64;"
  echo "  keepalive_timeout 4s;"
  for n in $(seq 1 "$replicas"); do
    address="$(replica_address "$n"):$(replica_port "$n")"
    if [ "$1" = "" ] || [[ "$ready" == *" $n "* ]]; then
      echo "  server $address max_fails=1 fail_timeout=3s;"
    else
      echo "  server $address down;"
    fi
  done
  echo "}"
}

# The active checker: every second, /readyz of each replica (in parallel); upstream.conf rewritten and nginx
# reloaded (SIGHUP: new workers, in-flight requests finish on the old ones) only when the set changes. A replica
# goes in at its first 200 and out after two misses in a row: one slow answer on a loaded machine is not a reason
# to move its traffic, and a replica that is really gone is routed around by the passive checks meanwhile.
health_loop() {
  set +e # the loop must outlive any one failed check or write
  load_state
  local state="$dir/health" n ready members text previous="" previous_ready="-"
  local -a misses in_nginx
  mkdir -p "$state"
  while [ -f "$dir/cluster.env" ]; do
    for n in $(seq 1 "$replicas"); do
      ( http_status "$(replica_address "$n")" "$(replica_port "$n")" /readyz 3 >"$state/r$n.tmp" && mv "$state/r$n.tmp" "$state/r$n" ) &
    done
    wait
    ready=""
    for n in $(seq 1 "$replicas"); do
      if [ "$(cat "$state/r$n" 2>/dev/null)" = 200 ]; then
        misses[n]=0 in_nginx[n]=1
      else
        misses[n]=$((${misses[n]:-0} + 1))
        [ "${misses[n]}" -ge 2 ] && in_nginx[n]=0
      fi
      [ "${in_nginx[n]:-0}" = 1 ] && ready="$ready $n"
    done
    ready=${ready# }
    members=${ready:-$(seq -s ' ' 1 "$replicas")}
    text=$(upstream_config "$ready")
    if [ "$text" != "$previous" ]; then
      printf '%s\n' "$text" >"$dir/nginx/upstream.conf.tmp" && mv "$dir/nginx/upstream.conf.tmp" "$dir/nginx/upstream.conf"
      local pid; pid=$(nginx_pid) && kill -HUP "$pid"
      previous=$text
    fi
    if [ "$ready" != "$previous_ready" ]; then
      echo "$members" >"$state/in-nginx"
      echo "$(date -u +%FT%T.%3NZ) ready: ${ready:-none}; in nginx: $members$([ -z "$ready" ] && echo ' (none ready: all kept, passive checks only)')"
      previous_ready=$ready
    fi
    sleep 1
  done
}

# ---- the commands --------------------------------------------------------------------------------------

write_state() {
  local front="http://127.0.0.1:$POLYHEAD_CLUSTER_PORT" n json_replicas=""
  {
    echo "POLYHEAD_CLUSTER_DIR=$dir"
    echo "POLYHEAD_CLUSTER_ID=$id"
    echo "POLYHEAD_CLUSTER_NETWORK=$network"
    echo "POLYHEAD_CLUSTER_REPLICAS=$replicas"
    echo "POLYHEAD_CLUSTER_PORT=$POLYHEAD_CLUSTER_PORT"
    echo "POLYHEAD_CLUSTER_URL=$front/graphql"
    echo "POLYHEAD_CLUSTER_DATABASE_URL=$POLYHEAD_CLUSTER_DATABASE_URL"
    echo "POLYHEAD_CLUSTER_API_KEY_FILE=$dir/api-key"
    for n in $(seq 1 "$replicas"); do
      echo "POLYHEAD_CLUSTER_REPLICA_$n=http://$(replica_address "$n"):$(replica_port "$n")/graphql"
      json_replicas="$json_replicas${json_replicas:+,}{\"number\":$n,\"address\":\"$(replica_address "$n")\",\"port\":$(replica_port "$n"),\"url\":\"http://$(replica_address "$n"):$(replica_port "$n")/graphql\",\"netns\":$([ "$network" = netns ] && echo "\"$(netns_of "r$n")\"" || echo null),\"dataDir\":\"$dir/replica-$n/data\",\"log\":\"$dir/replica-$n/log\",\"pidFile\":\"$dir/replica-$n/pid\"}"
    done
  } >"$dir/cluster.env.tmp"
  mv "$dir/cluster.env.tmp" "$dir/cluster.env"
  cat >"$dir/cluster.json" <<EOF
{"dir":"$dir","id":$id,"network":"$network","url":"$front/graphql","front":"$front","databaseUrl":"$POLYHEAD_CLUSTER_DATABASE_URL","apiKeyFile":"$dir/api-key","nginx":{"config":"$dir/nginx/nginx.conf","upstream":"$dir/nginx/upstream.conf","pidFile":"$dir/nginx/nginx.pid"},"replicas":[$json_replicas]}
EOF
}

claim_id() {
  local claims; claims=$(claims_dir)
  mkdir -p "$claims"
  local candidate owner
  for candidate in $(seq 1 250); do
    if mkdir "$claims/$candidate" 2>/dev/null; then
      echo "$dir" >"$claims/$candidate/dir"; id=$candidate; return
    fi
    owner=$(cat "$claims/$candidate/dir" 2>/dev/null || true)
    # A claim left by a cluster that crashed and whose folder is gone (or holds another cluster): take it over,
    # clearing what that cluster may have left in the network.
    if [ -n "$owner" ] && ! grep -qx "POLYHEAD_CLUSTER_ID=$candidate" "$owner/cluster.env" 2>/dev/null && [ ! -f "$owner/starting" ]; then
      is_root && remove_network "$candidate"
      echo "$dir" >"$claims/$candidate/dir"; id=$candidate; return
    fi
  done
  die "no free cluster number in $claims (250 clusters?)"
}

release_id() {
  local claims; claims=$(claims_dir)
  [ "$(cat "$claims/$id/dir" 2>/dev/null)" = "$dir" ] && rm -rf "${claims:?}/$id"
  return 0
}

teardown() { # keep-folder (0|1)
  local keep=$1 pid n
  pid=$(health_pid) && kill "$pid" 2>/dev/null
  for n in $(seq 1 "$replicas"); do stop_replica "$n" TERM & done
  wait
  if pid=$(nginx_pid); then
    # A master killed outright leaves its workers serving: they are its children, listed before it goes.
    local workers; workers=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true # fast shutdown: the replicas are gone already
    for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then kill -KILL "$pid" $workers 2>/dev/null || true; fi
  fi
  for pid in $(orphan_nginx_workers); do kill -KILL "$pid" 2>/dev/null || true; done
  if pg_running; then pg_stop fast || pg_stop immediate || true; fi
  [ "$network" = netns ] && remove_network "$id"
  release_id
  if [ "$keep" = 0 ]; then rm -rf "$dir"; else rm -f "$dir/cluster.env"; fi
}

wait_ready() { # seconds
  local limit=$1 start=$SECONDS n missing
  while :; do
    missing=""
    for n in $(seq 1 "$replicas"); do
      replica_ready "$n" && grep -qw "$n" "$dir/health/in-nginx" 2>/dev/null || missing="$missing $n"
    done
    if [ -z "$missing" ] && [ "$(http_status 127.0.0.1 "$POLYHEAD_CLUSTER_PORT" /readyz 3)" = 200 ]; then return 0; fi
    local dead=""
    for n in $missing; do replica_pid "$n" >/dev/null || dead="$dead $n"; done
    if [ -n "$dead" ]; then
      say "replica(s)$dead exited instead of becoming ready (logs: $dir/replica-N/log)"
      for n in $dead; do tail -n 5 "$dir/replica-$n/log" 2>/dev/null | sed "s/^/  replica $n: /" >&2; done
      return 1
    fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      say "not ready after ${limit}s: replica(s)$missing (logs: $dir/replica-N/log)"
      for n in $missing; do tail -n 5 "$dir/replica-$n/log" 2>/dev/null | sed "s/^/  replica $n: /" >&2; done
      return 1
    fi
    sleep 0.5
  done
}

cmd_start() {
  replicas=3 POLYHEAD_CLUSTER_PORT=4080 network=netns
  local wait=1 timeout=300
  while [ $# -gt 0 ]; do
    case "$1" in
      --replicas) replicas=$2; shift 2 ;;
      --port) POLYHEAD_CLUSTER_PORT=$2; shift 2 ;;
      --loopback) network=loopback; shift ;;
      --no-wait) wait=0; shift ;;
      --timeout) timeout=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ "$replicas" =~ ^[1-9][0-9]?$ ]] || die "--replicas must be 1..99"
  [ -n "$(pg_bin)" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  [ -n "$(nginx_bin)" ] || die "nginx is not installed (apt-get install nginx)"
  PATH="$PATH:$(dirname "$(nginx_bin)")"
  if [ -f "$dir/cluster.env" ]; then
    ( load_state; for n in $(seq 1 "$replicas"); do replica_pid "$n" >/dev/null && exit 0; done; exit 1 ) &&
      die "a cluster is running in $dir (scripts/cluster.sh --dir $dir stop)"
    say "clearing what a stopped or crashed cluster left in $dir"
    ( load_state; teardown 0 )
  fi
  (cd "$root" && node scripts/build.mjs --if-missing) >&2 || die "the build failed"
  [ "$POLYHEAD_CLUSTER_PORT" = 0 ] && POLYHEAD_CLUSTER_PORT=$(free_port)

  mkdir -p "$dir"
  chmod 755 "$dir" # the postgres user reads its folder below it
  touch "$dir/starting" # (before the claim: a claim whose folder has neither this nor cluster.env is stale)
  claim_id
  # From here on a failure takes down whatever was started, and keeps the folder (logs) to look at.
  up=0
  trap 'if [ $up = 0 ]; then set +e; say "start failed; logs kept in $dir"; rm -f "$dir/starting"; teardown 1; fi' EXIT
  if [ "$network" = netns ]; then
    if ! is_root; then
      network=loopback; say "not root: no network namespaces; every host gets a 127.213.$id.x address on loopback instead"
    elif ! ip netns add "polyhead-$id-probe" 2>/dev/null; then
      network=loopback; say "network namespaces are not allowed here (no CAP_NET_ADMIN?): every host gets a 127.213.$id.x address on loopback instead"
    else
      ip netns delete "polyhead-$id-probe"
    fi
  fi
  [ "$network" = netns ] && create_network
  say "hosts: PostgreSQL $(pg_address):$(pg_port), replicas $(for n in $(seq 1 "$replicas"); do printf '%s ' "$(replica_address "$n"):$(replica_port "$n")"; done)($network)"

  create_postgres
  POLYHEAD_CLUSTER_DATABASE_URL="postgres://postgres@$(pg_address):$(pg_port)/polyhead"
  if [ -n "${POLYHEAD_API_KEY:-}" ]; then echo "$POLYHEAD_API_KEY" >"$dir/api-key"; else echo "ph-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/api-key"; fi
  chmod 600 "$dir/api-key"
  write_state
  write_nginx_config
  upstream_config "" >"$dir/nginx/upstream.conf"
  "$(nginx_bin)" -q -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" </dev/null >/dev/null 2>>"$dir/nginx/error.log" || die "nginx did not start (port $POLYHEAD_CLUSTER_PORT taken?): $dir/nginx/error.log"
  for n in $(seq 1 "$replicas"); do start_replica "$n"; done
  setsid "$self" --dir "$dir" _health </dev/null >>"$dir/health.log" 2>&1 &
  echo $! >"$dir/health.pid"
  rm -f "$dir/starting"
  if [ "$wait" = 1 ]; then
    say "waiting for $replicas replicas to be ready (first start builds each one's bundles)..."
    wait_ready "$timeout" # on failure the EXIT trap stops it all and keeps the logs
  fi
  up=1
  say "up: $replicas replicas ($network) behind nginx; everything is in $dir"
  cat "$dir/cluster.env"
}

cmd_status() {
  load_state
  local n pid bad=0 in_nginx
  in_nginx=$(cat "$dir/health/in-nginx" 2>/dev/null || echo unknown)
  echo "cluster $id in $dir ($network), nginx sends to replicas: $in_nginx"
  if pid=$(nginx_pid); then echo "nginx       pid $pid  $POLYHEAD_CLUSTER_URL  /readyz $(http_status 127.0.0.1 "$POLYHEAD_CLUSTER_PORT" /readyz 3)"; else echo "nginx       down"; bad=1; fi
  if pg_running; then echo "postgres    up   $POLYHEAD_CLUSTER_DATABASE_URL"; else echo "postgres    down"; bad=1; fi
  if pid=$(health_pid); then echo "health      pid $pid"; else echo "health      down"; bad=1; fi
  for n in $(seq 1 "$replicas"); do
    if pid=$(replica_pid "$n"); then
      echo "replica $n   pid $pid  http://$(replica_address "$n"):$(replica_port "$n")/graphql  /readyz $(http_status "$(replica_address "$n")" "$(replica_port "$n")" /readyz 3)"
    else
      echo "replica $n   down"; bad=1
    fi
  done
  return $bad
}

cmd_replica() {
  load_state
  local n=${1:-} action=${2:-} wait=1
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$replicas" ] || die "replica number 1..$replicas expected"
  [ "${3:-}" = --no-wait ] && wait=0
  case "$action" in
    stop) stop_replica "$n" TERM ;;
    kill) stop_replica "$n" KILL ;;
    start|restart)
      [ "$action" = restart ] && stop_replica "$n" TERM
      replica_pid "$n" >/dev/null && die "replica $n is running"
      start_replica "$n"
      if [ "$wait" = 1 ]; then
        local start=$SECONDS
        until replica_ready "$n" && grep -qw "$n" "$dir/health/in-nginx" 2>/dev/null; do
          pid_alive "$(cat "$dir/replica-$n/pid")" || die "replica $n exited: $(tail -n 5 "$dir/replica-$n/log")"
          [ $((SECONDS - start)) -lt 300 ] || die "replica $n not ready after 300 s"
          sleep 0.3
        done
      fi ;;
    *) usage ;;
  esac
}

cmd_postgres() {
  load_state
  case "${1:-}" in
    stop) pg_stop fast ;;
    kill) pg_stop immediate ;; # SIGQUIT to every backend, no shutdown checkpoint: a crash, recovered at the next start
    start) pg_start ;;
    restart) pg_stop fast; pg_start ;;
    *) usage ;;
  esac
}

case "$command" in
  start) cmd_start "$@" ;;
  stop)
    if [ ! -f "$dir/cluster.env" ] && [ ! -d "$dir" ]; then say "nothing in $dir"; exit 0; fi
    if [ -f "$dir/cluster.env" ]; then load_state; else
      # A start that died before writing its state: what it claimed is found by the folder it named.
      id=$(grep -lx "$dir" "$(claims_dir)"/*/dir 2>/dev/null | head -1 | xargs -r dirname | xargs -r basename || true)
      network=netns replicas=0
      if pg_running; then pg_stop immediate || true; fi
      [ -z "$id" ] || { is_root && remove_network "$id"; release_id; }
      [ "${1:-}" = --keep ] || rm -rf "$dir"
      exit 0
    fi
    teardown "$([ "${1:-}" = --keep ] && echo 1 || echo 0)"
    say "stopped"
    ;;
  status) cmd_status ;;
  urls|env) load_state; cat "$dir/cluster.env" ;;
  wait) load_state; wait_ready "${1:-300}" ;;
  replica) cmd_replica "$@" ;;
  postgres) cmd_postgres "$@" ;;
  _health) health_loop ;;
  *) usage ;;
esac
