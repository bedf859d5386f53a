"""What may be printed or stored of settings that can hold secrets: Spark settings, storage options, command
lines.

A setting is secret when its key says so (``SECRET``, ``KEY``, ``TOKEN``, ``PASSWORD``, ... as in
:data:`pivot_spark.io.fs.SECRET_MARKERS`), except settings known to hold none: key stores' and trust stores'
paths and types, keytab paths, key lengths and algorithms, on/off switches (``...enabled``) and Kubernetes
references to Secrets (``...secretKeyRef...``, ``...secrets...``: a Secret's name and key or a mount path, not its
value). Credentials written into URIs (``s3://key:secret@bucket``, ``https://user:pw@host``, secret query
parameters) are removed from any value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pivot_spark.io.fs import REDACTED, is_secret

# Last key components that name no secret although they contain a marker (spark.ssl.keyStore, spark.kerberos.keytab,
# spark.network.crypto.keyLength, spark.io.encryption.keySizeBits, spark.security.credentials.hive.enabled, ...).
_NOT_SECRET_LAST = {"keystore", "keystoretype", "truststore", "truststoretype", "keytab", "keylength",
                    "keysizebits", "keyfactoryalgorithm", "keyfactoryiterations", "algorithm", "enabled"}
# Key components under which values are references to Kubernetes Secrets, not secrets.
_NOT_SECRET_PARTS = {"secretkeyref", "secrets"}
_URI_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]*@")  # user:password@, not container@account
_QUERY_PARAM = re.compile(r"([?&;])([^=&;\s#]+)=([^&;\s#]*)")


def is_secret_setting(key: str) -> bool:
    """True when a setting's value must not be shown (see the module's rule)."""
    parts = key.lower().split(".")
    if _NOT_SECRET_PARTS & set(parts) or parts[-1] in _NOT_SECRET_LAST:
        return False
    return is_secret(key)


def redact_text(text: str) -> str:
    """``text`` without credentials in the URIs it holds (user info, secret query parameters)."""
    text = _URI_CREDENTIALS.sub(f"{REDACTED}@", text)
    return _QUERY_PARAM.sub(lambda m: f"{m[1]}{m[2]}={REDACTED}" if is_secret(m[2]) else m[0], text)


def redact_setting(key: str, value: str) -> str:
    return REDACTED if is_secret_setting(key) else redact_text(value)


def redact_settings(settings: Mapping[str, str]) -> dict[str, str]:
    return {k: redact_setting(k, v) for k, v in settings.items()}
