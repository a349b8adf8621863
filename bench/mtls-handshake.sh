#!/usr/bin/env bash
# What a client certificate costs a full TLS 1.3 handshake, nginx and
# tlspilot side by side on loopback (issue 14's benchmark).
#
#   bash bench/mtls-handshake.sh              # about 3 minutes on 2 cores
#   QUICK=1 bash bench/mtls-handshake.sh      # about 30 s: checks the script works
#
# Both servers have the same ECDSA P-256 certificate and serve the same
# 1 KiB file; the metric is bench/peer-serve.sh's `hs`: HS_CONNS parallel
# `openssl s_time -new -tls1_3` clients (new TCP connection, full
# handshake, no session offered, GET /small.txt, close), and the server's
# CPU time (utime + stime of all its processes, from /proc) over the
# connections the clients made. Variants, each on its own port:
#   none     no client certificate asked for
#   require  a certificate from the benchmark's CA required (nginx:
#            ssl_verify_client on, ssl_client_certificate, ssl_verify_depth 1;
#            tlspilot: [site.client_auth] ca, mode "require", no revocation check);
#            the client's key is ECDSA P-256
#   ocsp     require, and the client certificate checked for revocation over
#            OCSP (the responder named in its AIA), the answer cached (nginx:
#            ssl_ocsp leaf + ssl_ocsp_cache; tlspilot: ocsp = true,
#            revocation_unknown = "deny"). The responder answers one request
#            per server before the runs and is then stopped, so a cache miss
#            would refuse the client: the run checks no client was refused.
#   rsa      require, with an RSA-2048 client key (same servers as require)
# Servers and variants alternate within each repetition; every run is
# printed, and the table has the median of the repetitions.
#
# Needs nginx >= 1.19 (ssl_ocsp), openssl, curl, Go (builds tlspilot from
# this clone; go on PATH or /usr/local/go/bin/go). Nothing outside the clone
# is read; everything it writes goes to a temporary directory, removed at
# the end unless KEEP=1. Every server listens on 127.0.0.1 only, runs as the
# current user, and is stopped when the script exits, however it exits.
#
# Knobs (defaults): DUR=5 (s per run) REPS=3 HS_CONNS=16 BASE_PORT=18540
#   (ports BASE..BASE+19) KEEP=0 QUICK=0 (DUR=2 REPS=1)
#   VARIANTS="none require ocsp rsa" SERVERS="nginx tlspilot"
#   NGINX_EXTRA="" (directives added to nginx's http block, e.g. "ssl_session_tickets off;")
#   NGINX OPENSSL GO: paths of the tools.
set -u -o pipefail
PATH=$PATH:/usr/sbin:/usr/local/go/bin

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then DUR=${DUR:-2}; REPS=${REPS:-1}; else DUR=${DUR:-5}; REPS=${REPS:-3}; fi
HS_CONNS=${HS_CONNS:-16}; BASE_PORT=${BASE_PORT:-18540}; KEEP=${KEEP:-0}
read -r -a VARIANTS <<<"${VARIANTS:-none require ocsp rsa}"
read -r -a SERVERS <<<"${SERVERS:-nginx tlspilot}"
HOST=bench.example.test
CLK_TCK=$(getconf CLK_TCK)
REPO=$(cd "$(dirname "$0")/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { log "mtls-handshake: $*"; exit 1; }

# Ports: nginx BASE+0..2 (none, require, ocsp); tlspilot instance i
# (none, require, ocsp) https BASE+10+3i, http +1, admin +2; OCSP BASE+19.
P_OCSP=$((BASE_PORT + 19))
declare -A NGINX_PORT=([none]=$BASE_PORT [require]=$((BASE_PORT + 1)) [ocsp]=$((BASE_PORT + 2)) [rsa]=$((BASE_PORT + 1)))
declare -A TP_INDEX=([none]=0 [require]=1 [ocsp]=2)
tp_port() { echo $((BASE_PORT + 10 + 3 * TP_INDEX[$1] + $2)); } # instance offset(0 https, 1 http, 2 admin)
inst() { [ "$1" = rsa ] && echo require || echo "$1"; }          # the server config a variant uses
port() { # server variant
  if [ "$1" = nginx ]; then echo "${NGINX_PORT[$2]}"; else tp_port "$(inst "$2")" 0; fi
}

# ------------------------------------------------------------ processes we own
OWNED=()   # "pid:starttime" of every process started here; nothing else is ever signalled
CLIENTS=()
WORK=""
declare -A PID=()
# shellcheck disable=SC2086 # the fields of /proc/PID/stat, one per word
starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
is_ours() { [ "$(starttime "${1%%:*}")" = "${1#*:}" ]; }
own() { OWNED+=("$1:$(starttime "$1")"); }
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }
tree() { local p; echo "$1"; for p in $(children "$1"); do tree "$p"; done; }
stop_one() { # pid:starttime
  local i
  is_ours "$1" || return 0
  kill -TERM "${1%%:*}" 2>/dev/null
  for i in $(seq 50); do is_ours "$1" || return 0; sleep 0.1; done
  log "mtls-handshake: pid ${1%%:*} ignored SIGTERM; SIGKILL"; kill -KILL "${1%%:*}" 2>/dev/null
}
on_exit() {
  local rc=$? e
  trap - EXIT INT TERM
  [ ${#CLIENTS[@]} -gt 0 ] && kill "${CLIENTS[@]}" 2>/dev/null
  # shellcheck disable=SC2046 # one pid per word
  [ -n "${WATCHDOG:-}" ] && kill $(tree "$WATCHDOG") 2>/dev/null
  for e in "${OWNED[@]}"; do stop_one "$e"; done
  wait 2>/dev/null
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$KEEP" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ tools
GO=${GO:-$(command -v go)}; NGINX=${NGINX:-$(command -v nginx)}; OPENSSL=${OPENSSL:-$(command -v openssl)}
[ -n "$GO" ] || die "Go is needed to build tlspilot: install it (https://go.dev/dl/) or set GO=/path/to/go"
[ -n "$NGINX" ] || die "nginx not found: apt-get install nginx (Debian), or set NGINX"
[ -n "$OPENSSL" ] || die "openssl not found: apt-get install openssl, or set OPENSSL"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
nginx_v=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
printf '%s\n1.19.0\n' "$nginx_v" | sort -V -C 2>/dev/null && [ "$nginx_v" != 1.19.0 ] \
  && die "nginx $nginx_v has no ssl_ocsp (1.19.0 or later needed)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtls-handshake.XXXXXX") || die "mktemp failed"
mkdir -p "$WORK"/{ca/new,raw,www,nginx/tmp} "$WORK"/tlspilot{0,1,2}
head -c 1024 /dev/zero | tr '\0' x >"$WORK/www/small.txt"

# ------------------------------------------------------------ CA and certificates
# One CA (ECDSA P-256) issues the server certificate and the client
# certificates, and signs the OCSP answers itself (RFC 6960 §4.2.2.2).
cat >"$WORK/ca/ca.cnf" <<EOF
[ ca ]
default_ca = bench
[ bench ]
dir = $WORK/ca
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
default_days = 30
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$HOST
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$P_OCSP
EOF
: >"$WORK/ca/index.txt"; echo 1000 >"$WORK/ca/serial"
ossl() { "$OPENSSL" "$@" >>"$WORK/ca/openssl.log" 2>&1 || die "openssl $1 failed: $(tail -n 5 "$WORK/ca/openssl.log")"; }
ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$WORK/ca/ca.key" \
  -out "$WORK/ca/ca.pem" -subj "/CN=mtls-handshake bench CA" -days 30 -config "$WORK/ca/ca.cnf" -extensions root
issue() { # name subject-cn extensions keyalg-args...
  local n=$1 cn=$2 ext=$3; shift 3
  ossl req -new -newkey "$@" -nodes -keyout "$WORK/ca/$n.key" -out "$WORK/ca/$n.csr" -subj "/CN=$cn"
  ossl ca -batch -config "$WORK/ca/ca.cnf" -cert "$WORK/ca/ca.pem" -keyfile "$WORK/ca/ca.key" \
    -in "$WORK/ca/$n.csr" -out "$WORK/ca/$n.pem" -extensions "$ext" -notext
}
issue server "$HOST" server ec -pkeyopt ec_paramgen_curve:prime256v1
issue alice alice client ec -pkeyopt ec_paramgen_curve:prime256v1
issue bob bob client rsa -pkeyopt rsa_keygen_bits:2048
issue carol carol client ec -pkeyopt ec_paramgen_curve:prime256v1 # revoked: the ocsp variants must refuse her
ossl ca -config "$WORK/ca/ca.cnf" -cert "$WORK/ca/ca.pem" -keyfile "$WORK/ca/ca.key" -revoke "$WORK/ca/carol.pem"
CA=$WORK/ca/ca.pem; CERT=$WORK/ca/server.pem; KEY=$WORK/ca/server.key
client_args() { # variant [option dash, - for openssl, -- for curl] -> certificate arguments
  local d=${2:--}
  case $1 in none) ;; rsa) echo "${d}cert $WORK/ca/bob.pem ${d}key $WORK/ca/bob.key" ;; *) echo "${d}cert $WORK/ca/alice.pem ${d}key $WORK/ca/alice.key" ;; esac
}
# Every client prefers TLS_AES_128_GCM_SHA256, as in bench/peer-serve.sh:
# nginx follows the client's order, Go servers pick AES-128-GCM themselves.
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

# ------------------------------------------------------------ server configs
# nginx logs only the requests not answered 200 (a refused client
# certificate is a 400 in nginx): the run fails if there is any.
nginx_temps() { local t; for t in client_body proxy fastcgi uwsgi scgi; do printf '%s_temp_path %s/tmp/%s; ' "$t" "$WORK/nginx" "$t"; done; }
nginx_server() { # port extra-directives
  cat <<EOF
  server {
    listen 127.0.0.1:$1 ssl backlog=4096;
    server_name $HOST;
    ssl_certificate $CERT; ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $WORK/www;
    $2
  }
EOF
}
user_root=""; [ "$(id -u)" = 0 ] && user_root="user root;"
verify="ssl_verify_client on; ssl_client_certificate $CA; ssl_verify_depth 1;"
cat >"$WORK/nginx/nginx.conf" <<EOF
$user_root
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  $(nginx_temps)
  types { text/plain txt; }
  map \$status \$not_ok { 200 0; default 1; }
  log_format refused '\$server_port \$status \$ssl_client_verify';
  access_log $WORK/nginx/refused.log refused if=\$not_ok;
  ssl_ocsp_cache shared:clientocsp:1m;
  ${NGINX_EXTRA:-}
$(nginx_server "${NGINX_PORT[none]}" "")
$(nginx_server "${NGINX_PORT[require]}" "$verify")
$(nginx_server "${NGINX_PORT[ocsp]}" "$verify ssl_ocsp leaf;")
}
EOF

tp_config() { # instance client_auth-table
  local i=${TP_INDEX[$1]}
  cat <<EOF
storage = "$WORK/tlspilot$i/storage"
https_listen = "127.0.0.1:$(tp_port "$1" 0)"
http_listen = "127.0.0.1:$(tp_port "$1" 1)"
admin_listen = "127.0.0.1:$(tp_port "$1" 2)"
access_log = "off"
log_level = "warn"

[[site]]
names = ["$HOST"]
default = true
root = "$WORK/www"
cert_file = "$CERT"
key_file = "$KEY"
$2
EOF
}
tp_config none "" >"$WORK/tlspilot0/tlspilot.toml"
tp_config require "[site.client_auth]
ca = \"$CA\"
mode = \"require\"" >"$WORK/tlspilot1/tlspilot.toml"
tp_config ocsp "[site.client_auth]
ca = \"$CA\"
mode = \"require\"
ocsp = true
revocation_unknown = \"deny\"" >"$WORK/tlspilot2/tlspilot.toml"

log "mtls-handshake: building tlspilot from $REPO"
(cd "$REPO" && "$GO" build -o "$WORK/tlspilot" ./cmd/tlspilot) || die "go build ./cmd/tlspilot failed"
"$NGINX" -t -q -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/t.log" \
  || die "nginx rejects $WORK/nginx/nginx.conf: $(cat "$WORK/nginx/t.log")"

# ------------------------------------------------------------ start
( sleep $((120 + 30 * DUR * REPS)); log "mtls-handshake: time limit reached"; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
start() { # name logfile command...
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  PID[$name]=$!; own "${PID[$name]}"
}
# openssl ocsp (3.0) takes a port only and listens on every address: it
# runs for the few seconds before the runs, and answers only for this CA.
start ocsp "$WORK/ca/ocsp.log" "$OPENSSL" ocsp -index "$WORK/ca/index.txt" -port "$P_OCSP" \
  -rsigner "$CA" -rkey "$WORK/ca/ca.key" -CA "$CA" -nmin 60 -ignore_err
start nginx "$WORK/nginx/out.log" "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
for v in none require ocsp; do
  start "tlspilot-$v" "$WORK/tlspilot${TP_INDEX[$v]}/out.log" "$WORK/tlspilot" serve --config "$WORK/tlspilot${TP_INDEX[$v]}/tlspilot.toml"
done
get() { # server variant [extra curl args] -> HTTP status of GET /small.txt
  local s=$1 v=$2; shift 2
  # shellcheck disable=SC2046 # client_args is words
  curl -s --max-time 10 -o /dev/null -w '%{http_code}' --cacert "$CA" --resolve "$HOST:$(port "$s" "$v"):127.0.0.1" \
    $(client_args "$v" --) "$@" "https://$HOST:$(port "$s" "$v")/small.txt"
}
for s in "${SERVERS[@]}"; do
  for v in none require ocsp; do
    p=${PID[nginx]}; [ "$s" = tlspilot ] && p=${PID[tlspilot-$v]}
    for i in $(seq 100); do
      kill -0 "$p" 2>/dev/null || die "$s ($v) exited at start: see $WORK (KEEP=1 keeps it)"
      [ "$(get "$s" "$v")" = 200 ] && break
      [ "$i" = 100 ] && die "$s ($v) does not answer 200 with the client certificate within 20 s"
      sleep 0.2
    done
  done
done
# The check is live: carol's certificate, revoked, is refused.
for s in "${SERVERS[@]}"; do
  [ "$(get "$s" ocsp --cert "$WORK/ca/carol.pem" --key "$WORK/ca/carol.key")" != 200 ] \
    || die "$s (ocsp) answered 200 to a revoked client certificate"
  [ "$(get "$s" require --cert "$WORK/ca/carol.pem" --key "$WORK/ca/carol.key")" = 200 ] \
    || die "$s (require, no revocation check) refused carol's certificate"
done
# The OCSP answers are now cached (each server asked once above); without
# the responder a cache miss refuses the client.
for e in "${OWNED[@]}"; do [ "${e%%:*}" = "${PID[ocsp]}" ] && stop_one "$e"; done
for s in "${SERVERS[@]}"; do
  [ "$(get "$s" ocsp)" = 200 ] || die "$s: no 200 with the OCSP answer cached and the responder stopped"
done
# Without a certificate, the require and ocsp variants refuse (curl gets no 200).
for s in "${SERVERS[@]}"; do
  for v in require ocsp; do
    st=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' --cacert "$CA" --resolve "$HOST:$(port "$s" "$v"):127.0.0.1" "https://$HOST:$(port "$s" "$v")/small.txt")
    [ "$st" != 200 ] || die "$s ($v) answered 200 without a client certificate"
  done
done
: >"$WORK/nginx/refused.log"
# Loopback only: every listening socket of the servers measured.
mine=" "; for e in "${OWNED[@]}"; do mine+="$(tree "${e%%:*}" | tr '\n' ' ')"; done
while read -r line; do
  for p in $(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2); do # shellcheck disable=SC2013
    case "$mine" in *" $p "*)
      case $(awk '{print $5}' <<<"$line") in 127.0.0.1:*) ;; *) die "a started server listens beyond loopback: $line" ;; esac
    esac
  done
done < <(ss -Htulnp 2>/dev/null)

# ------------------------------------------------------------ measuring
usage() { # pid -> utime+stime ticks of its process tree
  local t=0 p s
  for p in $(tree "$1"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    # shellcheck disable=SC2086 # the fields of /proc/PID/stat
    s=${s##*) }; set -- $s
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
now() { echo "${EPOCHREALTIME/,/.}"; }
refusals() { # server variant -> client certificates refused so far
  if [ "$1" = nginx ]; then awk -v p="$(port nginx "$2")" '$1 == p' "$WORK/nginx/refused.log" | wc -l
  else curl -s --max-time 5 "http://127.0.0.1:$(tp_port "$(inst "$2")" 2)/metrics" \
    | awk '/^tlspilot_client_auth_refusals_total/ {n += $NF} END {print n + 0}'
  fi
}
declare -A CPU=() RATE=()
run_hs() { # server variant rep
  local s=$1 v=$2 r=$3 out=$WORK/raw/$1-$2-$3 p c0 c1 t0 t1 n i f0 f1 args
  p=${PID[nginx]}; [ "$s" = tlspilot ] && p=${PID[tlspilot-$(inst "$v")]}
  args=$(client_args "$v"); f0=$(refusals "$s" "$v")
  c0=$(usage "$p"); t0=$(now)
  for i in $(seq "$HS_CONNS"); do
    # shellcheck disable=SC2086 # args is words
    client timeout $((DUR + 30)) "$OPENSSL" s_time -new -tls1_3 -connect "127.0.0.1:$(port "$s" "$v")" -www /small.txt -time "$DUR" $args >"$out.$i" 2>&1 &
    CLIENTS+=($!)
  done
  wait "${CLIENTS[@]}"; CLIENTS=()
  c1=$(usage "$p"); t1=$(now)
  n=$(cat "$out".* | awk '/connections in [0-9.]+s;/ {n += $1} END {print n + 0}')
  f1=$(refusals "$s" "$v")
  [ "$n" -gt 0 ] || die "$s ($v): s_time made no connections (see $out.*, KEEP=1)"
  [ "$f1" = "$f0" ] || die "$s ($v): $((f1 - f0)) clients refused during the run: it measured refusals"
  kill -0 "$p" 2>/dev/null || die "$s stopped"
  CPU[$s,$v,$r]=$(awk -v t="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
  RATE[$s,$v,$r]=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  log "   $(printf '%-8s %-8s rep %d: %5s µs server CPU/handshake, %5s handshakes/s, %6d handshakes | load %s' \
    "$s" "$v" "$r" "${CPU[$s,$v,$r]}" "${RATE[$s,$v,$r]}" "$n" "$(cut -d' ' -f1 /proc/loadavg)")"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "== $(date -u '+%F %H:%M UTC'), $(nproc) cores, load average $LOAD_START"
log "   nginx $nginx_v ($("$NGINX" -V 2>&1 | grep -o 'built with OpenSSL [0-9.a-z]*' | cut -d' ' -f3-)), tlspilot $(cd "$REPO" && git describe --always --dirty 2>/dev/null) ($("$GO" env GOVERSION)), clients $("$OPENSSL" version | cut -d' ' -f1-2)"
log "== warm-up"
for s in "${SERVERS[@]}"; do for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2046 # client_args is words
  client timeout 20 "$OPENSSL" s_time -new -tls1_3 -connect "127.0.0.1:$(port "$s" "$v")" -www /small.txt -time 1 $(client_args "$v") >/dev/null 2>&1
done; done
log "== runs: ${DUR}s each, $HS_CONNS clients, $REPS repetitions, servers and variants alternating"
for r in $(seq "$REPS"); do
  for v in "${VARIANTS[@]}"; do
    for s in "${SERVERS[@]}"; do run_hs "$s" "$v" "$r"; sleep 1; done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ table
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
cell() { # server variant -> median CPU
  local r l=""; for r in $(seq "$REPS"); do l+="${CPU[$1,$2,$r]} "; done; echo "$l" | median
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%+.0f%%", 100 * (a - b) / b; else print "-" }'; }
declare -A LABEL=([none]="no client certificate" [require]="required, ECDSA P-256 client key, no revocation check"
  [ocsp]="required, ECDSA P-256, OCSP answer cached" [rsa]="required, RSA-2048 client key, no revocation check")
echo
echo "Server CPU per full TLS 1.3 handshake (µs, median of $REPS runs of ${DUR}s, $HS_CONNS \`openssl s_time -new\` clients),"
echo "$(date -u '+%F %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"
echo "load average $LOAD_START at the start, $LOAD_END at the end. Percentages: against the same server's \"no client certificate\"."
echo
printf '| client certificate |'; for s in "${SERVERS[@]}"; do printf ' %s |' "$s"; done; echo
printf '|---|'; for s in "${SERVERS[@]}"; do printf -- '---|'; done; echo
for v in "${VARIANTS[@]}"; do
  printf '| %s |' "${LABEL[$v]}"
  for s in "${SERVERS[@]}"; do
    c=$(cell "$s" "$v")
    if [ "$v" = none ] || [ -z "${CPU[$s,none,1]:-}" ]; then printf ' %s µs |' "$c"; else printf ' %s µs (%s) |' "$c" "$(pct "$c" "$(cell "$s" none)")"; fi
  done
  echo
done
if [ -n "${CPU[nginx,ocsp,1]:-}" ] && [ -n "${CPU[nginx,require,1]:-}" ]; then
  echo
  echo "The revocation check from cache (ocsp against require):$(for s in "${SERVERS[@]}"; do printf ' %s %s;' "$s" "$(pct "$(cell "$s" ocsp)" "$(cell "$s" require)")"; done)"
fi
echo
echo "Every run (µs server CPU per handshake):"
for s in "${SERVERS[@]}"; do for v in "${VARIANTS[@]}"; do
  l=""; for r in $(seq "$REPS"); do l+=" ${CPU[$s,$v,$r]}"; done
  printf '  %-8s %-8s%s\n' "$s" "$v" "$l"
done; done
