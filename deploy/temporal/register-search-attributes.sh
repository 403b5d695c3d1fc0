#!/bin/sh
# One-shot job (service temporal-admin-tools): registers the custom search attributes of
# models.settings.SEARCH_ATTRIBUTES in the namespace, then waits until the server lists them.
# Idempotent: attributes that already exist are left alone.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
attributes="CallState=Keyword SpaceId=Keyword CallDirection=Keyword PhoneNumber=Keyword SmsThreadState=Keyword CampaignId=Keyword"

listed() {
  temporal operator search-attribute list --address "$address" --namespace "$namespace"
}

tries=0
until listed >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal is not answering at $address (namespace $namespace)" >&2
    exit 1
  fi
  sleep 2
done

for pair in $attributes; do
  name="${pair%%=*}"
  type="${pair#*=}"
  if listed | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --address "$address" --namespace "$namespace" \
      --name "$name" --type "$type"
    echo "search attribute $name ($type) registered"
  fi
done

tries=0
for pair in $attributes; do
  name="${pair%%=*}"
  until listed | grep -qw "$name"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      echo "search attribute $name is still not listed" >&2
      exit 1
    fi
    sleep 2
  done
done
echo "search attributes ready in namespace $namespace"
