#!/bin/sh
# Rehearse the demo alerting pipeline by hand, without firedrill's scenario support: PostgreSQL,
# billing, Prometheus, Alertmanager and comms on a network of their own, plus recorder.py on the
# host (bound to that network's gateway) standing in for the SMTP server and every provider.
#   1. kill billing -> alert mails and comms' fan-out; start it -> the all-clear everywhere;
#   2. the same with Twilio Messages answering 500 -> voice calls instead of SMS.
# Prints the time from `docker kill` to each arrival. Images must exist (demo/README.md). Removes
# everything it created (label firedrill.run=manual-demo-test), also on failure.
#
#   GROUP_WAIT  Alertmanager group_wait (default 1s)
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
label=firedrill.run=manual-demo-test
net=firedrill-manual-demo
p=fd-manual
work="$(mktemp -d /tmp/firedrill-alerting.XXXXXX)"
log="$work/received.jsonl"
recorder_pid=
cleanup() {
  [ -n "$recorder_pid" ] && kill "$recorder_pid" 2>/dev/null || true
  ids="$(docker ps -aq --filter "label=$label")"
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  echo "cleaned up (recorder log kept: $log)" >&2
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds (readiness is data).
wait_for() {
  what="$1"; budget="$2"; shift 2
  deadline=$(( $(date +%s) + budget ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}
# count FILTER: how many recorded lines after time $since match the python expression FILTER on r.
count() {
  python3 - "$log" "$since" "$1" <<'PY'
import json, sys
path, since, expr = sys.argv[1], float(sys.argv[2]), sys.argv[3]
n = 0
try:
    for line in open(path):
        r = json.loads(line)
        if r["t"] >= since and eval(expr):
            n += 1
except FileNotFoundError:
    pass
print(n)
PY
}
at_least() { [ "$(count "$1")" -ge "$2" ]; }
host_port() { docker port "$1" "$2" | head -n1 | sed 's/.*://'; }

docker network create --label "$label" "$net" >/dev/null
gateway="$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$net")"
python3 "$here/recorder.py" --bind "$gateway" --log "$log" --fail-sms "$work/fail-sms" \
  >"$work/recorder.out" 2>&1 &
recorder_pid=$!
wait_for "the recorder" 10 grep -q listening "$work/recorder.out"

run() { docker run -d --label "$label" --network "$net" "$@" >/dev/null; }
run --name $p-db --network-alias db firedrill-demo/postgres:15
wait_for "postgres" 60 docker exec $p-db pg_isready -h 127.0.0.1 -U postgres
run --name $p-billing --network-alias billing -p 127.0.0.1::8080 \
  -e DATABASE_URL=postgres://postgres@db:5432/billing firedrill-demo/billing:1.0
providers="http://$gateway:8025"
run --name $p-comms --network-alias comms -p 127.0.0.1::8080 \
  -e CUSTOMERS='acme:+15550001:+15550101;globex:+15550002:+15550102' \
  -e TWILIO_URL="$providers" -e TWILIO_ACCOUNT=AC0001 -e TWILIO_TOKEN=token -e TWILIO_FROM=+15559999 \
  -e SINCH_URL="$providers" -e SINCH_PROJECT=demo -e STATUSPAGE_URL="$providers" \
  -e STATUSPAGE_PAGE_ID=page1 -e SLACK_URL="$providers/services/T0/B0/X" \
  -e PAGERDUTY_URL="$providers" -e PAGERDUTY_ROUTING_KEY=R0UTING firedrill-demo/comms:1.0
run --name $p-alertmanager --network-alias alertmanager -p 127.0.0.1::9093 \
  -e SMTP_ADDR="$gateway:2525" -e COMMS_URL=http://comms:8080/alert \
  -e CUSTOMER_EMAILS=ops@acme.example,it@globex.example -e GROUP_WAIT="${GROUP_WAIT:-1s}" \
  firedrill-demo/alertmanager:0.25
run --name $p-prometheus --network-alias prometheus -p 127.0.0.1::9090 firedrill-demo/prometheus:2

billing_port=$(host_port $p-billing 8080)
comms_port=$(host_port $p-comms 8080)
am_port=$(host_port $p-alertmanager 9093)
prom_port=$(host_port $p-prometheus 9090)
wait_for "billing /health" 30 curl -fsS "http://127.0.0.1:$billing_port/health"
wait_for "comms /health" 30 curl -fsS "http://127.0.0.1:$comms_port/health"
wait_for "alertmanager /-/ready" 30 curl -fsS "http://127.0.0.1:$am_port/-/ready"
wait_for "prometheus /-/ready" 30 curl -fsS "http://127.0.0.1:$prom_port/-/ready"
wait_for "billing scraped up" 30 sh -c \
  "curl -fsS 'http://127.0.0.1:$prom_port/api/v1/query?query=up%7Bjob%3D%22billing%22%7D%3D%3D1' | grep -q billing"
echo "stack ready (gateway $gateway)" >&2

# Per outage and per resolve: 2 mails, and from comms 2x sms (or sms+voice), 2x fax, statuspage,
# slack, pagerduty.
mails='r["kind"]=="smtp"'
comms='r["kind"]=="http"'
report() {  # report PHASE START: arrival offsets (s) from START, per channel
  python3 - "$log" "$2" "$1" <<'PY'
import json, sys
path, start, phase = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rows = [json.loads(l) for l in open(path)]
rows = [r for r in rows if r["t"] >= start]
def channel(r):
    if r["kind"] == "smtp": return "email " + ",".join(r["to"])
    p = r["path"]
    for end, name in [("Messages.json", "sms"), ("Calls.json", "voice"), ("/faxes", "fax"),
                      ("/v2/enqueue", "pagerduty"), ("/services/", "slack")]:
        if end in p: return name
    return "statuspage " + r["method"]
for r in rows:
    detail = r.get("subject") or r["body"][:110].replace("\n", " ")
    print(f"{phase}: +{r['t'] - start:6.3f}s {channel(r):32} {detail}")
mail = [r["t"] - start for r in rows if r["kind"] == "smtp"]
http = [r["t"] - start for r in rows if r["kind"] == "http"]
span = lambda ts: f"+{min(ts):.3f}s .. +{max(ts):.3f}s" if ts else "none"
print(f"{phase}: emails {span(mail)}, comms requests {span(http)}")
PY
}

outage() {  # outage NAME EXPECTED_COMMS_REQUESTS
  since=$(now)
  docker kill $p-billing >/dev/null
  wait_for "$1: alert mails" 120 at_least "$mails" 2
  wait_for "$1: comms fan-out" 120 at_least "$comms" "$2"
  report "$1 fired" "$since"
  down_until=$(now)
  since=$down_until
  docker start $p-billing >/dev/null
  wait_for "$1: resolved mails" 120 at_least "$mails and 'RESOLVED' in r['subject']" 2
  wait_for "$1: comms all-clear" 120 at_least "$comms" "$2"
  report "$1 resolved" "$since"
}

# A maintenance notice: 2 SMS, Slack, a scheduled Statuspage maintenance; bad input is refused.
since=$(now)
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  -d '{"service":"billing","starts_at":"2030-01-05T22:00:00Z","ends_at":"2030-01-05T23:00:00Z","message":"Upgrade to 2.0."}' \
  "http://127.0.0.1:$comms_port/maintenance")
[ "$status" = 202 ] || { echo "POST /maintenance answered $status" >&2; exit 1; }
wait_for "maintenance notices" 30 at_least "$comms" 4
report "maintenance" "$since"
bad=$(curl -s -w ' %{http_code}' -H 'content-type: application/json' -d '{"service":' \
  "http://127.0.0.1:$comms_port/maintenance")
echo "maintenance with a truncated body: $bad" >&2

outage "outage" 7
touch "$work/fail-sms"
outage "sms-down" 9
since=0
echo "voice calls placed: $(count 'r["kind"]=="http" and r["path"].endswith("Calls.json")')" >&2
