#!/bin/sh
# Renders Alertmanager's configuration from the environment, then execs Alertmanager.
#
#   SMTP_ADDR        host:port of the SMTP server customers' mail goes through (no TLS, no auth);
#                    unset: no email
#   CUSTOMER_EMAILS  comma-separated addresses; one email_config (so one mail) per customer
#   ALERT_FROM       the mails' From (default alerts@billing.example)
#   COMMS_URL        the comms webhook, e.g. http://comms:8080/alert; unset: no webhook
#   GROUP_WAIT       route group_wait (default 1s): how long a new group waits for more alerts
#   GROUP_INTERVAL   route group_interval (default 1s): how soon a changed group (a resolve) is sent
#   REPEAT_INTERVAL  route repeat_interval (default 1h)
#   RESOLVE_TIMEOUT  global resolve_timeout (default 10s)
#   ROUTE_RECEIVER   the receiver the route sends to (default customers); any other name adds
#                    that receiver with nothing configured: a route broken on purpose, so alerts
#                    reach nobody (rehearsing the `alert` check's `routed` hop failing)
#
# Every notification is sent resolved too (`send_resolved: true`). The rendered file is printed
# to stderr, so a run's logs show exactly what this Alertmanager was told.
set -eu

fail() {
  echo "alertmanager-entrypoint: $*" >&2
  exit 2
}

# Values go into single-quoted YAML scalars: refuse what would break out of one.
ROUTE_RECEIVER="${ROUTE_RECEIVER:-customers}"
echo "$ROUTE_RECEIVER" | grep -Eq '^[A-Za-z0-9_-]+$' ||
  fail "ROUTE_RECEIVER must be a name of letters, digits, - and _ (got '$ROUTE_RECEIVER')"
for name in SMTP_ADDR CUSTOMER_EMAILS ALERT_FROM COMMS_URL GROUP_WAIT GROUP_INTERVAL \
  REPEAT_INTERVAL RESOLVE_TIMEOUT; do
  eval "value=\${$name:-}"
  case "$value" in
    *"'"* | *'
'*) fail "$name must not contain quotes or newlines: $value" ;;
  esac
done
for name in GROUP_WAIT GROUP_INTERVAL REPEAT_INTERVAL RESOLVE_TIMEOUT; do
  eval "value=\${$name:-}"
  echo "$value" | grep -Eq '^([0-9]+(ms|s|m|h|d|w|y))+$' ||
    fail "$name must be a duration such as 1s, 500ms or 1h (got '$value')"
done

config=/tmp/alertmanager.yml
{
  cat <<YAML
global:
  resolve_timeout: '$RESOLVE_TIMEOUT'
templates:
  - /etc/firedrill/notify.tmpl
route:
  receiver: '$ROUTE_RECEIVER'
  group_by: [alertname]
  group_wait: '$GROUP_WAIT'
  group_interval: '$GROUP_INTERVAL'
  repeat_interval: '$REPEAT_INTERVAL'
receivers:
YAML
  if [ "$ROUTE_RECEIVER" != customers ]; then
    echo "alertmanager-entrypoint: the route sends to '$ROUTE_RECEIVER', which notifies nobody" >&2
    echo "  - name: '$ROUTE_RECEIVER'"
  fi
  echo "  - name: customers"
  if [ -n "${SMTP_ADDR:-}" ]; then
    case "$SMTP_ADDR" in
      *:[0-9]*) ;;
      *) fail "SMTP_ADDR must be host:port (got '$SMTP_ADDR')" ;;
    esac
    [ -n "${CUSTOMER_EMAILS:-}" ] || fail "SMTP_ADDR is set but CUSTOMER_EMAILS is empty"
    echo "    email_configs:"
    old_ifs="$IFS"
    IFS=,
    for address in $CUSTOMER_EMAILS; do
      address="$(echo "$address" | tr -d ' ')"
      [ -n "$address" ] || continue
      case "$address" in
        ?*@?*) ;;
        *) fail "CUSTOMER_EMAILS: '$address' is not an email address" ;;
      esac
      cat <<YAML
      - to: '$address'
        from: '$ALERT_FROM'
        smarthost: '$SMTP_ADDR'
        hello: alertmanager
        require_tls: false
        send_resolved: true
        headers:
          Subject: '{{ template "firedrill.subject" . }}'
        text: '{{ template "firedrill.text" . }}'
YAML
    done
    IFS="$old_ifs"
  else
    echo "alertmanager-entrypoint: SMTP_ADDR is not set: no email notifications" >&2
  fi
  if [ -n "${COMMS_URL:-}" ]; then
    cat <<YAML
    webhook_configs:
      - url: '$COMMS_URL'
        send_resolved: true
YAML
  else
    echo "alertmanager-entrypoint: COMMS_URL is not set: no webhook notifications" >&2
  fi
} >"$config"

echo "alertmanager-entrypoint: rendered $config:" >&2
cat "$config" >&2
exec /usr/bin/prometheus-alertmanager \
  --config.file="$config" \
  --storage.path=/tmp/alertmanager \
  --web.listen-address=:9093 \
  --cluster.listen-address=
