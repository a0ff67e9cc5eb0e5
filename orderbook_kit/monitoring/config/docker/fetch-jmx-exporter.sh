#!/bin/sh
# Puts Prometheus's JMX exporter (a Java agent) from Maven Central into FOLDER, once, checked
# against Maven Central's SHA-1 - for the compose file's Kafka container, whose image has no
# exporter. It never fails: without the agent Kafka starts without metrics and says so, so an
# offline `docker compose up` still gets a broker.
#   JMX_EXPORTER_VERSION=1.0.1 sh fetch-jmx-exporter.sh FOLDER
set -u
version="${JMX_EXPORTER_VERSION:?set JMX_EXPORTER_VERSION}"
folder="${1:?usage: fetch-jmx-exporter.sh FOLDER}"
repository="${MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}"
name="jmx_prometheus_javaagent-$version.jar"
url="$repository/io/prometheus/jmx/jmx_prometheus_javaagent/$version/$name"

if [ -s "$folder/$name" ]; then
  echo "JMX exporter $version: already in $folder"
  exit 0
fi
# Downloaded beside the final name and moved into place whole: Kafka never sees half a jar.
partial="$folder/.$name.partial"
if curl -fsSL --retry 3 --max-time 120 -o "$partial" "$url" \
  && expected="$(curl -fsSL --retry 3 --max-time 30 "$url.sha1" | cut -c1-40)" \
  && [ "$(sha1sum "$partial" | cut -c1-40)" = "$expected" ] \
  && mv "$partial" "$folder/$name"; then
  echo "JMX exporter $version: downloaded into $folder"
else
  rm -f "$partial"
  echo "warning: could not download or verify $url; Kafka starts without metrics." >&2
fi
exit 0
