#!/usr/bin/env bash
# Side-by-side HTTPS serving benchmark: nginx, Caddy and tlspilot on
# loopback, same ECDSA P-256 certificate, same files, same upstream.
#
#   bash bench/peer-serve.sh              # full run, about 6 minutes on 2 cores
#   QUICK=1 bash bench/peer-serve.sh      # about a minute: checks the script works
#   PROFILE=1 bash bench/peer-serve.sh    # also CPU profiles of tlspilot (admin /debug/pprof/)
#
# Needs (checked at start, with what to run when missing):
#   Debian packages nginx wrk nghttp2-client (h2load) openssl curl iproute2 (ss) procps (ps):
#     installed with apt-get when run as root and INSTALL is not 0;
#   Go, to build tlspilot from this clone (go on PATH or /usr/local/go/bin/go);
#   Caddy v2.11.9: caddy on PATH or in Go's bin directory, else installed with
#     go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9 (when INSTALL is not 0).
# Nothing outside the clone is read; everything it writes goes to a temporary
# directory, removed at the end unless KEEP=1 or PROFILE=1. Every server listens
# on 127.0.0.1 only and is stopped when the script exits, however it exits.
#
# Metrics, one load generator at a time, servers alternating within each repetition,
# best repetition counts; ratios are to nginx:
#   hs     server CPU per full TLS 1.3 handshake: HS_CONNS parallel
#          `openssl s_time -new` clients (new TCP connection and full handshake,
#          no session offered, GET /small.txt, close); server CPU time (utime +
#          stime of all its processes) over the connections the clients made.
#   h1     HTTP/1.1 keep-alive req/s, 1 KiB file (wrk, CONNS connections)
#   h2     HTTP/2 keep-alive req/s, 1 KiB file (h2load, CONNS connections x H2_STREAMS streams)
#   proxy  HTTP/1.1 keep-alive req/s through /proxy/ to a local nginx answering "ok" (wrk)
#   big    HTTP/1.1 keep-alive MB/s (10^6 bytes), 100 KiB file (wrk)
#   rss    peak RSS at the end: sum of VmHWM over the server's processes
# The load generators share the machine's cores with the server, so the
# server CPU per request (printed for every metric) is the steadier figure.
#
# Knobs (defaults): DUR=10 (s per run) REPS=2 CONNS=32 HS_CONNS=16 H2_STREAMS=10
#   BASE_PORT=18440 (ports BASE..BASE+9) KEEP=0 PROFILE=0 INSTALL=1 QUICK=0 (DUR=2 REPS=1)
#   METRICS="hs h1 h2 proxy big" (a subset runs only those)
#   NGINX CADDY WRK H2LOAD OPENSSL GO: paths of the tools.
set -u -o pipefail
PATH=$PATH:/usr/sbin:/usr/local/go/bin

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then DUR=${DUR:-2}; REPS=${REPS:-1}; else DUR=${DUR:-10}; REPS=${REPS:-2}; fi
CONNS=${CONNS:-32}; HS_CONNS=${HS_CONNS:-16}; H2_STREAMS=${H2_STREAMS:-10}
BASE_PORT=${BASE_PORT:-18440}; KEEP=${KEEP:-0}; PROFILE=${PROFILE:-0}; INSTALL=${INSTALL:-1}
HOST=bench.example.test
CLK_TCK=$(getconf CLK_TCK)
REPO=$(cd "$(dirname "$0")/.." && pwd)

P_NGINX=$BASE_PORT; P_CADDY=$((BASE_PORT + 1)); P_TLSPILOT=$((BASE_PORT + 2))
P_TP_HTTP=$((BASE_PORT + 3)); P_TP_ADMIN=$((BASE_PORT + 4)); P_UP=$((BASE_PORT + 9))
SERVERS=(nginx caddy tlspilot)
declare -A PORT=([nginx]=$P_NGINX [caddy]=$P_CADDY [tlspilot]=$P_TLSPILOT)
declare -A PID=() VAL=() CPU=() RSS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "peer-serve: $*"; exit 1; }

# ------------------------------------------------------------ processes we own
OWNED=()   # "pid:starttime" of every server started here; nothing else is ever signalled
CLIENTS=() # load generators running now
WORK=""

starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
is_ours() { [ "$(starttime "${1%%:*}")" = "${1#*:}" ]; }
own() { OWNED+=("$1:$(starttime "$1")"); }
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }
tree() { local p; echo "$1"; for p in $(children "$1"); do tree "$p"; done; }

stop_all() {
  local e i left
  [ ${#CLIENTS[@]} -gt 0 ] && kill "${CLIENTS[@]}" 2>/dev/null
  for e in "${OWNED[@]}"; do is_ours "$e" && kill -TERM "${e%%:*}" 2>/dev/null; done
  for i in $(seq 50); do
    left=0
    for e in "${OWNED[@]}"; do is_ours "$e" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for e in "${OWNED[@]}"; do
    if is_ours "$e"; then log "peer-serve: pid ${e%%:*} ignored SIGTERM; SIGKILL"; kill -KILL "${e%%:*}" 2>/dev/null; fi
  done
  wait 2>/dev/null
}
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  # shellcheck disable=SC2046 # one pid per word
  [ -n "${WATCHDOG:-}" ] && kill $(tree "$WATCHDOG") 2>/dev/null
  stop_all
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$KEEP" = 1 ] || [ "$PROFILE" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ tools
GO=${GO:-$(command -v go)}
[ -n "$GO" ] || die "Go is needed to build tlspilot: install it (https://go.dev/dl/) or set GO=/path/to/go"

need_debian() { # command=package...
  local missing=() c pkg
  for c in "$@"; do
    pkg=${c#*=}; c=${c%%=*}
    command -v "$c" >/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$INSTALL" != 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "peer-serve: installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  else
    die "missing ${missing[*]}: run apt-get install ${missing[*]} (Debian), or set INSTALL=1 and run as root"
  fi
}
need_debian nginx=nginx wrk=wrk h2load=nghttp2-client openssl=openssl curl=curl ss=iproute2 ps=procps
NGINX=${NGINX:-$(command -v nginx)}
WRK=${WRK:-$(command -v wrk)}; H2LOAD=${H2LOAD:-$(command -v h2load)}; OPENSSL=${OPENSSL:-$(command -v openssl)}

CADDY_VERSION=v2.11.9
if [ -z "${CADDY:-}" ]; then
  gobin=$("$GO" env GOBIN); [ -n "$gobin" ] || gobin=$("$GO" env GOPATH)/bin
  CADDY=$(command -v caddy || echo "$gobin/caddy")
  if [ ! -x "$CADDY" ]; then
    [ "$INSTALL" != 0 ] || die "Caddy not found: go install github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION, or set CADDY"
    log "peer-serve: installing Caddy $CADDY_VERSION (go install)"
    "$GO" install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION" || die "go install of Caddy failed"
  fi
fi
[ -x "$CADDY" ] || die "Caddy not found at $CADDY"
caddy_v=$("$CADDY" build-info 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/caddyserver/caddy/v2" {print $3}')
[ "$caddy_v" = "$CADDY_VERSION" ] || log "peer-serve: WARNING: Caddy is ${caddy_v:-of unknown version}, the recorded figures used $CADDY_VERSION"

for p in $(seq "$BASE_PORT" $((BASE_PORT + 9))); do
  [ -z "$(ss -Htln "sport = :$p")" ] || die "port $p is in use; set BASE_PORT to a free range of 10 ports"
done

# ------------------------------------------------------------ work dir, certificate, content
WORK=$(mktemp -d /tmp/peer-serve.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
mkdir -p "$WORK"/{root,raw,prof,nginx/tmp,up/tmp,caddy,tlspilot}
CERT=$WORK/cert.pem KEY=$WORK/key.pem ROOT=$WORK/root
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" -out "$CERT" \
  -days 7 -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" >"$WORK/req.log" 2>&1 \
  || die "openssl could not make the certificate: $(cat "$WORK/req.log")"
chmod 644 "$KEY" "$CERT"
head -c 768 /dev/urandom | base64 -w 0 >"$ROOT/small.txt"   # 1024 bytes
head -c 102400 /dev/urandom >"$ROOT/big.bin"

# Every client prefers TLS_AES_128_GCM_SHA256 (h2load's own first choice):
# nginx follows the client's order in TLS 1.3 and Go servers pick
# AES-128-GCM themselves, so all three encrypt with the same cipher.
cat >"$WORK/client-openssl.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
EOF
client() { OPENSSL_CONF=$WORK/client-openssl.cnf "$@"; }

cat >"$WORK/wrk-report.lua" <<'EOF'
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d errors=%d\n",
    s.requests, s.duration, s.bytes, e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

# ------------------------------------------------------------ server configs
user_root=""; [ "$(id -u)" = 0 ] && user_root="user root;"
nginx_head() { # dir workers
  cat <<EOF
$user_root
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_temps() { local t; for t in client_body proxy fastcgi uwsgi scgi; do printf '%s_temp_path %s/tmp/%s; ' "$t" "$1" "$t"; done; }

{ nginx_head "$WORK/up" 1; cat <<EOF
http {
  access_log off; $(nginx_temps "$WORK/up")
  keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$P_UP backlog=4096; location / { return 200 "ok"; } }
}
EOF
} >"$WORK/up/nginx.conf"

{ nginx_head "$WORK/nginx" auto; cat <<EOF
http {
  access_log off; $(nginx_temps "$WORK/nginx")
  types { text/plain txt; application/octet-stream bin; }
  sendfile on;
  keepalive_requests 1000000; keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; keepalive_requests 1000000; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:$P_NGINX ssl http2 backlog=4096;
    server_name $HOST;
    ssl_certificate $CERT; ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $ROOT;
    location /proxy/ { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
} >"$WORK/nginx/nginx.conf"

# Caddy writes no access log without a `log` directive; HTTP/3 is off as the clients use TCP.
cat >"$WORK/caddy/Caddyfile" <<EOF
{
	admin off
	persist_config off
	auto_https off
	default_sni $HOST
	servers {
		protocols h1 h2
	}
}
https://:$P_CADDY {
	bind 127.0.0.1
	tls $CERT $KEY
	root * $ROOT
	file_server
	reverse_proxy /proxy/* 127.0.0.1:$P_UP
}
EOF

# tlspilot as an operator would run it: defaults but for the ports, the
# access log (off, as for the other two) and the log level. No certificate
# is ordered (the site has cert_file), so no terms need agreeing to.
cat >"$WORK/tlspilot/tlspilot.toml" <<EOF
storage = "$WORK/tlspilot/storage"
http_listen = "127.0.0.1:$P_TP_HTTP"
https_listen = "127.0.0.1:$P_TLSPILOT"
admin_listen = "127.0.0.1:$P_TP_ADMIN"
access_log = "off"
log_level = "warn"

[[site]]
names = ["$HOST"]
default = true
root = "$ROOT"
cert_file = "$CERT"
key_file = "$KEY"

[[site.route]]
path = "/proxy/"
proxy = "http://127.0.0.1:$P_UP"
EOF

log "peer-serve: building tlspilot from $REPO"
(cd "$REPO" && "$GO" build -o "$WORK/tlspilot/tlspilot" ./cmd/tlspilot) || die "go build ./cmd/tlspilot failed"

# ------------------------------------------------------------ start
# From here on the run is bounded in time whatever happens (a full run takes ~6 min).
( sleep $((120 + 40 * DUR * REPS)); log "peer-serve: time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
wait_ready() { # name url logfile
  local i
  for i in $(seq 100); do
    kill -0 "${PID[$1]}" 2>/dev/null || die "$1 exited at start: $(tail -n 20 "$3")"
    [ "$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "$2")" = 200 ] && return
    sleep 0.2
  done
  die "$1 did not answer $2 within 20 s: $(tail -n 20 "$3")"
}
start() { # name logfile command...
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  PID[$name]=$!; own "${PID[$name]}"
}
for d in up nginx; do
  "$NGINX" -t -q -p "$WORK/$d/" -e "$WORK/$d/error.log" -c "$WORK/$d/nginx.conf" 2>"$WORK/$d/t.log" \
    || die "nginx rejects $WORK/$d/nginx.conf: $(cat "$WORK/$d/t.log")"
done
start up "$WORK/up/out.log" "$NGINX" -p "$WORK/up/" -e "$WORK/up/error.log" -c "$WORK/up/nginx.conf" -g 'daemon off;'
wait_ready up "http://127.0.0.1:$P_UP/" "$WORK/up/error.log"
start nginx "$WORK/nginx/out.log" "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
start caddy "$WORK/caddy/out.log" env HOME="$WORK/caddy" XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
  "$CADDY" run --config "$WORK/caddy/Caddyfile" --adapter caddyfile
start tlspilot "$WORK/tlspilot/out.log" "$WORK/tlspilot/tlspilot" serve --config "$WORK/tlspilot/tlspilot.toml"
for s in "${SERVERS[@]}"; do wait_ready "$s" "https://127.0.0.1:${PORT[$s]}/small.txt" "$WORK/$s/out.log"; done

# Loopback only: every listening TCP and UDP socket of every process we started.
all_pids=" "; for s in up "${SERVERS[@]}"; do all_pids+="$(tree "${PID[$s]}" | tr '\n' ' ')"; done
while read -r line; do
  for p in $(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2); do
    case "$all_pids" in *" $p "*)
      case $(awk '{print $5}' <<<"$line") in 127.0.0.1:*) ;; *) die "a started server listens beyond loopback: $line" ;; esac
    esac
  done
done < <(ss -Htulnp)

# Each server serves the same bytes, over HTTP/2 and HTTP/1.1, proxies, and
# presents the certificate to clients without SNI (s_time sends none).
for s in "${SERVERS[@]}"; do
  get=(curl -sS --max-time 10 --cacert "$CERT" --resolve "$HOST:${PORT[$s]}:127.0.0.1")
  base=https://$HOST:${PORT[$s]}
  [ "$("${get[@]}" -o "$WORK/got" -w '%{http_version}' "$base/small.txt")" = 2 ] && cmp -s "$WORK/got" "$ROOT/small.txt" \
    || die "$s: /small.txt over HTTP/2 is not the file"
  [ "$("${get[@]}" --http1.1 -o "$WORK/got" -w '%{http_version}' "$base/big.bin")" = 1.1 ] && cmp -s "$WORK/got" "$ROOT/big.bin" \
    || die "$s: /big.bin over HTTP/1.1 is not the file"
  [ "$("${get[@]}" --http1.1 "$base/proxy/")" = ok ] || die "$s: /proxy/ does not reach the upstream"
  hello=$(client "$OPENSSL" s_client -connect "127.0.0.1:${PORT[$s]}" -noservername </dev/null 2>/dev/null | tr -d '\0')
  [[ $hello == *"CN = $HOST"* ]] || die "$s: no certificate for a client without SNI"
done

# ------------------------------------------------------------ what each server negotiates
log "== $(date -u '+%F %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "   nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), Caddy ${caddy_v:-?} ($("$CADDY" build-info | awk '$1 == "go" {print $2}')), tlspilot $(cd "$REPO" && git describe --always --dirty 2>/dev/null) ($("$GO" env GOVERSION)), $("$OPENSSL" version | cut -d' ' -f1-2) clients"
for s in "${SERVERS[@]}"; do
  hello=$(client "$OPENSSL" s_client -connect "127.0.0.1:${PORT[$s]}" -alpn h2,http/1.1 </dev/null 2>&1 | tr -d '\0')
  log "   $s: $(grep -m1 -o 'TLSv1\.[23], Cipher is [A-Z0-9_]*' <<<"$hello"), key exchange $(grep -m1 '^Server Temp Key' <<<"$hello" | cut -d' ' -f4- | tr -d ,), ALPN $(grep -m1 '^ALPN protocol' <<<"$hello" | cut -d' ' -f3)"
done

# ------------------------------------------------------------ measuring
usage() { # server -> "utime stime minflt" of its process tree (clock ticks, page faults)
  local u=0 k=0 f=0 p s
  for p in $(tree "${PID[$1]}"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }; set -- $s
    f=$((f + $8)); u=$((u + ${12})); k=$((k + ${13}))
  done
  echo "$u $k $f"
}
used() { # server "usage before" -> "ticks, of them system, minor faults" since then
  local u0 k0 f0 u1 k1 f1
  read -r u0 k0 f0 <<<"$2"; read -r u1 k1 f1 <<<"$(usage "$1")"
  echo "$((u1 - u0 + k1 - k0)) $((k1 - k0)) $((f1 - f0))"
}
now() { echo "${EPOCHREALTIME/,/.}"; }
ratio100() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "-" }'; }
per_req_us() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }'; }

profile_start() { # metric: a CPU profile of tlspilot over most of the run
  [ "$PROFILE" = 1 ] || return 0
  curl -s --max-time $((DUR + 10)) -o "$WORK/prof/$1.pprof" \
    "http://127.0.0.1:$P_TP_ADMIN/debug/pprof/profile?seconds=$((DUR > 2 ? DUR - 1 : 1))" &
  PROF_PID=$!
}

# Each run_* sets RES to "value requests" and USED to what the server used
# (see used); it runs in this shell,
# so the exit trap sees (and stops) the load generator it started.
clients() { # run the command line in the background as the current load generator
  client timeout $((DUR + 30)) "$@" &
  CLIENTS+=($!)
}
run_hs() { # server rep
  local out=$WORK/raw/hs-$1-$2 i c0 t0 t1 n
  c0=$(usage "$1"); t0=$(now)
  for i in $(seq "$HS_CONNS"); do
    clients "$OPENSSL" s_time -new -connect "127.0.0.1:${PORT[$1]}" -www /small.txt -time "$DUR" >"$out.$i" 2>&1
  done
  wait "${CLIENTS[@]}"; CLIENTS=()
  USED=$(used "$1" "$c0"); t1=$(now)
  n=$(cat "$out".* | awk '/connections in [0-9.]+s;/ {n += $1} END {print n + 0}')
  [ "$n" -gt 0 ] || log "   WARNING: s_time made no connections (see $out.*)"
  RES=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f %d", n / (b - a), n }')
}
run_wrk() { # server rep path [mb]: req/s, or MB/s with "mb"
  local out=$WORK/raw/wrk-$1-$2-${3//\//_} c0
  c0=$(usage "$1")
  clients "$WRK" -t2 -c"$CONNS" -d"${DUR}s" --timeout 5s -s "$WORK/wrk-report.lua" "https://127.0.0.1:${PORT[$1]}$3" >"$out" 2>&1
  wait "${CLIENTS[@]}"; CLIENTS=()
  USED=$(used "$1" "$c0")
  RES=$(awk -v mb="${4:-}" '/^RESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      d = v["duration_us"] / 1e6; r = mb ? v["bytes"] / d / 1e6 : v["requests"] / d
      if (v["errors"] > 0) print "   WARNING: " v["errors"] " errors" > "/dev/stderr"
      printf "%.0f %d", r, v["requests"]; found = 1 }
    END { if (!found) print "0 0" }' "$out")
}
run_h2() { # server rep
  local out=$WORK/raw/h2-$1-$2 c0
  c0=$(usage "$1")
  clients "$H2LOAD" -t1 -c"$CONNS" -m"$H2_STREAMS" -D "$DUR" "https://$HOST:${PORT[$1]}/small.txt" \
    --connect-to="127.0.0.1:${PORT[$1]}" >"$out" 2>&1
  wait "${CLIENTS[@]}"; CLIENTS=()
  USED=$(used "$1" "$c0")
  grep -q '^Application protocol: h2' "$out" || log "   WARNING: $1 did not negotiate h2 (see $out)"
  RES=$(awk '/^finished in/ { r = $4 } /^requests:/ { n = $8; e = $10 + $12 }
    END { if (e > 0) print "   WARNING: " e " failed/errored requests" > "/dev/stderr"; printf "%.0f %d", r, n }' "$out")
}

run() { # metric server rep: records VAL and CPU
  local m=$1 s=$2 r=$3 v n c sys flt
  PROF_PID=""
  [ "$s" = tlspilot ] && [ "$r" = 1 ] && profile_start "$m"
  case $m in
    hs) run_hs "$s" "$r" ;;
    h1) run_wrk "$s" "$r" /small.txt ;;
    proxy) run_wrk "$s" "$r" /proxy/ ;;
    big) run_wrk "$s" "$r" /big.bin mb ;;
    h2) run_h2 "$s" "$r" ;;
  esac
  read -r v n <<<"$RES"; read -r c sys flt <<<"$USED"
  [ -n "$PROF_PID" ] && wait "$PROF_PID"
  VAL[$m,$s,$r]=$v; CPU[$m,$s,$r]=$(per_req_us "$c" "$n")
  log "   $(printf '%-5s %-8s rep %d: %9s %-5s %7s requests | server CPU %5s µs/request (%s%% system), %s page faults/request | load %s' \
    "$m" "$s" "$r" "$v" "${UNIT[$m]}" "$n" "${CPU[$m,$s,$r]}" "$(ratio100 "$sys" "$c")" "$(awk -v f="$flt" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? f / n : 0) }')" \
    "$(cut -d' ' -f1 /proc/loadavg)")"
  kill -0 "${PID[$s]}" 2>/dev/null || die "$s stopped (see $WORK/$s/out.log)"
}

declare -A LABEL=([hs]="server CPU per full TLS 1.3 handshake" [h1]="HTTP/1.1 keep-alive, 1 KiB" [h2]="HTTP/2 keep-alive, 1 KiB"
  [proxy]="proxy, HTTP/1.1 keep-alive" [big]="100 KiB file")
declare -A UNIT=([hs]="conn/s" [h1]="req/s" [h2]="req/s" [proxy]="req/s" [big]="MB/s")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== warm-up"
for s in "${SERVERS[@]}"; do
  for path in /small.txt /proxy/; do
    client timeout 20 "$WRK" -t2 -c"$CONNS" -d2s "https://127.0.0.1:${PORT[$s]}$path" >/dev/null 2>&1
  done
done
read -r -a METRICS <<<"${METRICS:-hs h1 h2 proxy big}"
log "== runs: ${DUR}s each, best of $REPS, servers alternating"
for m in "${METRICS[@]}"; do
  for r in $(seq "$REPS"); do
    for s in "${SERVERS[@]}"; do run "$m" "$s" "$r"; sleep 1; done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for s in "${SERVERS[@]}"; do
  kb=0; for p in $(tree "${PID[$s]}"); do kb=$((kb + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
  RSS[$s]=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
done

# ------------------------------------------------------------ table
best() { # metric server -> rep with the best value (highest rate; lowest CPU for hs)
  local r b=1
  for r in $(seq 2 "$REPS"); do
    if [ "$1" = hs ]; then
      awk -v a="${CPU[$1,$2,$r]}" -v b="${CPU[$1,$2,$b]}" 'BEGIN { exit !(a + 0 < b + 0) }' && b=$r
    else
      awk -v a="${VAL[$1,$2,$r]}" -v b="${VAL[$1,$2,$b]}" 'BEGIN { exit !(a + 0 > b + 0) }' && b=$r
    fi
  done
  echo "$b"
}
fig() { # metric server -> the table's figure
  local b; b=$(best "$1" "$2")
  if [ "$1" = hs ]; then echo "${CPU[$1,$2,$b]}"; else echo "${VAL[$1,$2,$b]}"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
row() { # label unit nginx caddy tlspilot
  printf '| %s | %s %s | %s | %s | %s | %s |\n' "$1" "$3" "$2" "$4" "$5" "$(ratio "$4" "$3")" "$(ratio "$5" "$3")"
}

echo
echo "Serving benchmark, $(date -u '+%F %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"
echo "load average $LOAD_START at the start, $LOAD_END at the end; ${DUR}s runs, best of $REPS."
echo "CPU and RSS: lower is better; rates: higher is better. Ratios are to nginx."
echo
echo "| metric | nginx | Caddy | tlspilot | Caddy/nginx | tlspilot/nginx |"
echo "|---|---|---|---|---|---|"
for m in "${METRICS[@]}"; do row "${LABEL[$m]}" "$([ "$m" = hs ] && echo µs || echo "${UNIT[$m]}")" "$(fig "$m" nginx)" "$(fig "$m" caddy)" "$(fig "$m" tlspilot)"; done
row "peak RSS" MiB "${RSS[nginx]}" "${RSS[caddy]}" "${RSS[tlspilot]}"
echo
echo "Server CPU per request (µs), best run of each:"
echo
echo "| metric | nginx | Caddy | tlspilot |"
echo "|---|---|---|---|"
for m in "${METRICS[@]}"; do
  [ "$m" = hs ] && continue
  printf '| %s | %s | %s | %s |\n' "$m" "${CPU[$m,nginx,$(best "$m" nginx)]}" "${CPU[$m,caddy,$(best "$m" caddy)]}" "${CPU[$m,tlspilot,$(best "$m" tlspilot)]}"
done

if [ "$PROFILE" = 1 ] && [ -s "$WORK/prof/hs.pprof" ]; then
  echo
  echo "tlspilot CPU profiles (first repetition of each metric): $WORK/prof/*.pprof"
  echo "Handshake phase, top functions by cumulative time:"
  echo '```'
  "$GO" tool pprof -top -cum -nodecount=30 "$WORK/tlspilot/tlspilot" "$WORK/prof/hs.pprof" 2>/dev/null | sed -n '4,40p'
  echo '```'
fi
