#!/usr/bin/env bash
# Resolve Maven packages with Spark's own Ivy resolver, exactly as `spark-submit --packages` and
# delta's configure_spark_with_delta_pip do at run time (transitive dependencies included, each download
# checked against the .sha1/.md5 Maven Central publishes), then copy the jars Spark does not already ship
# into DEST under their Maven names (ARTIFACT-VERSION.jar, as in $SPARK_HOME/jars) and write their SHA-256
# sums beside DEST for audit.
#
# usage: resolve-jars.sh GROUP:ARTIFACT:VERSION[,...] DEST
set -euo pipefail

packages="$1"
dest="$2"
ivy_dir="$(mktemp -d)"
noop_app="$(mktemp --suffix=.py)"

# A Python app that does nothing: spark-submit resolves --packages before it starts the app.
"${SPARK_HOME}/bin/spark-submit" --master 'local[1]' \
  --conf "spark.jars.ivy=${ivy_dir}" --packages "${packages}" "${noop_app}"

mkdir -p "${dest}"
for jar in "${ivy_dir}"/jars/*.jar; do
  name="$(basename "${jar}" .jar)"       # Ivy names jars GROUP_ARTIFACT-VERSION
  artifact="${name#*_}"
  artifact="$(sed -E 's/-[0-9][^_]*$//' <<<"${artifact}")"
  if compgen -G "${SPARK_HOME}/jars/${artifact}-[0-9]*.jar" >/dev/null; then
    echo "skip ${name}: Spark already ships ${artifact}"
    continue
  fi
  cp "${jar}" "${dest}/${name#*_}.jar"
done

# Fail early when an expected jar is missing (an artifact renamed upstream, a resolution that fell back).
for required in delta-spark_ delta-storage- hadoop-aws-; do
  compgen -G "${dest}/${required}*.jar" >/dev/null || { echo "missing ${required}* in ${dest}" >&2; exit 1; }
done
(cd "${dest}" && sha256sum -- *.jar) >"${dest}.sha256"
cat "${dest}.sha256"
rm -rf "${ivy_dir}" "${noop_app}"
