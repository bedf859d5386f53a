"""Filesystems behind input URIs, through ``pyarrow.fs``: local paths, ``file://``, ``s3://``, ``gs://``,
``hdfs://``, ``abfs://``/``abfss://``/``az://``; any other scheme through fsspec (wrapped as a pyarrow filesystem).

Credentials come from ``storage_options`` (the same keys delta-rs takes: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``,
``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``, ...; case-insensitive) or, where a key is absent,
from the environment (each filesystem's own credential chain: AWS variables and profiles, Google application
default credentials, Azure's default credential). :func:`redact_options` and :func:`redact_uri` are what may be
printed or stored; the options themselves travel only inside Spark task closures.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from pyarrow import fs as pafs

# A key holding one of these is a secret: never printed, stored in the runs table or derived into a run id.
SECRET_MARKERS = ("SECRET", "KEY", "TOKEN", "PASSWORD", "SAS", "CREDENTIAL", "SIGNATURE", "PRIVATE")
REDACTED = "***"
OBJECT_STORE_SCHEMES = {"s3", "s3a", "s3n", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "az", "adl"}


def is_secret(key: str) -> bool:
    up = key.upper()
    return any(m in up for m in SECRET_MARKERS)


def redact_options(options: Mapping[str, str] | None) -> dict[str, str]:
    return {k: (REDACTED if is_secret(k) else v) for k, v in (options or {}).items()}


def redact_uri(uri: str) -> str:
    """``uri`` without a password in its authority (``s3://key:secret@bucket``) or secret query parameters."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{REDACTED}@{host}"
    query = "&".join(q if not is_secret(q.split("=", 1)[0]) else f"{q.split('=', 1)[0]}={REDACTED}"
                     for q in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _truthy(value: str | None) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def normalize_options(options: Mapping[str, str] | None) -> dict[str, str]:
    """Upper-case keys (delta-rs/object_store accept ``aws_region`` and ``AWS_REGION`` alike); values as str."""
    return {str(k).upper(): str(v) for k, v in (options or {}).items() if v is not None}


def _first(opts: Mapping[str, str], *keys: str, env: bool = False) -> str | None:
    for k in keys:
        if opts.get(k):
            return opts[k]
    if env:
        for k in keys:
            if os.environ.get(k):
                return os.environ[k]
    return None


def _endpoint(url: str, allow_http: bool) -> tuple[str, str]:
    """(host[:port][/path], scheme) of an endpoint URL such as ``http://127.0.0.1:9000``."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    scheme = parts.scheme or ("http" if allow_http else "https")
    return parts.netloc + parts.path.rstrip("/"), scheme


@dataclass(frozen=True)
class Location:
    """A filesystem and a root path in it, with what it takes to turn a filesystem path back into a URI."""

    fs: pafs.FileSystem
    root: str
    scheme: str = ""  # "" for local paths (URIs stay plain paths, as they always were)
    authority: str = ""  # hdfs namenode, Azure account host

    def uri(self, path: str) -> str:
        if not self.scheme:
            return path
        if self.scheme in ("hdfs", "viewfs"):
            return f"{self.scheme}://{self.authority}{path if path.startswith('/') else '/' + path}"
        if self.scheme in ("abfs", "abfss") and self.authority:
            container, _, rest = path.partition("/")
            return f"{self.scheme}://{container}@{self.authority}/{rest}"
        return f"{self.scheme}://{path.lstrip('/')}"


def _s3(bucket: str, opts: Mapping[str, str]) -> pafs.FileSystem:
    kw: dict[str, object] = {}
    access = _first(opts, "AWS_ACCESS_KEY_ID")
    secret = _first(opts, "AWS_SECRET_ACCESS_KEY")
    if access and secret:
        kw.update(access_key=access, secret_key=secret,
                  session_token=_first(opts, "AWS_SESSION_TOKEN", "AWS_TOKEN"))
    if _truthy(_first(opts, "AWS_SKIP_SIGNATURE", "AWS_NO_SIGN_REQUEST")):
        kw["anonymous"] = True
    endpoint = _first(opts, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT", env=True)
    if endpoint:
        kw["endpoint_override"], kw["scheme"] = _endpoint(
            endpoint, _truthy(_first(opts, "AWS_ALLOW_HTTP", env=True)))
    if _truthy(_first(opts, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST")):
        kw["force_virtual_addressing"] = True
    region = _first(opts, "AWS_REGION", "AWS_DEFAULT_REGION", env=True)
    if not region and not endpoint and bucket:
        region = pafs.resolve_s3_region(bucket)  # what S3FileSystem.from_uri does
    if region:
        kw["region"] = region
    return pafs.S3FileSystem(**kw)  # type: ignore[arg-type]


def _gcs(opts: Mapping[str, str]) -> pafs.FileSystem:
    kw: dict[str, object] = {}
    if _truthy(_first(opts, "GOOGLE_SKIP_SIGNATURE", "GOOGLE_ANONYMOUS")):
        kw["anonymous"] = True
    endpoint = _first(opts, "GOOGLE_ENDPOINT_URL", "GCS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST")
    if endpoint:
        kw["endpoint_override"], kw["scheme"] = _endpoint(endpoint, True)
    project = _first(opts, "GOOGLE_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")
    if project:
        kw["project_id"] = project
    return pafs.GcsFileSystem(**kw)  # type: ignore[arg-type]


def _azure(account: str | None, opts: Mapping[str, str]) -> pafs.FileSystem:
    account = account or _first(opts, "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT", env=True)
    if not account:
        raise ValueError("an Azure URI needs the storage account: abfs://container@ACCOUNT.dfs.core.windows.net/"
                         "path, or AZURE_STORAGE_ACCOUNT_NAME in the storage options or the environment")
    kw: dict[str, object] = {"account_name": account}
    key = _first(opts, "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_KEY")
    sas = _first(opts, "AZURE_STORAGE_SAS_KEY", "AZURE_STORAGE_SAS_TOKEN")
    if key:
        kw["account_key"] = key
    elif sas:
        kw["sas_token"] = sas
    client_id = _first(opts, "AZURE_CLIENT_ID", "AZURE_STORAGE_CLIENT_ID")
    client_secret = _first(opts, "AZURE_CLIENT_SECRET", "AZURE_STORAGE_CLIENT_SECRET")
    tenant = _first(opts, "AZURE_TENANT_ID", "AZURE_STORAGE_TENANT_ID")
    if client_id:
        kw["client_id"] = client_id
    if client_secret and tenant:
        kw.update(client_secret=client_secret, tenant_id=tenant)
    endpoint = _first(opts, "AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT_URL")
    if not endpoint and _truthy(_first(opts, "AZURE_STORAGE_USE_EMULATOR")):
        endpoint = "http://127.0.0.1:10000"
    if endpoint:
        authority, scheme = _endpoint(endpoint, True)
        kw.update(blob_storage_authority=authority, dfs_storage_authority=authority, blob_storage_scheme=scheme,
                  dfs_storage_scheme=scheme)
    return pafs.AzureFileSystem(**kw)  # type: ignore[arg-type]


def _hdfs(host: str, port: int | None, opts: Mapping[str, str]) -> pafs.FileSystem:
    kw: dict[str, object] = {"host": host or "default", "port": port or 0}
    user = _first(opts, "HDFS_USER", "HADOOP_USER_NAME")
    ticket = _first(opts, "HDFS_KERB_TICKET", "KRB5CCNAME")
    if user:
        kw["user"] = user
    if ticket:
        kw["kerb_ticket"] = ticket
    return pafs.HadoopFileSystem(**kw)  # type: ignore[arg-type]


def _fsspec(uri: str, scheme: str, options: Mapping[str, str] | None) -> tuple[pafs.FileSystem, str]:
    import fsspec

    fs = fsspec.filesystem(scheme, **{k.lower(): v for k, v in (options or {}).items()})
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs._strip_protocol(uri)


def location(uri: str, storage_options: Mapping[str, str] | None = None) -> Location:
    """The filesystem and root path of ``uri``; credentials from ``storage_options`` or the environment."""
    opts = normalize_options(storage_options)
    if "://" not in uri:
        return Location(pafs.LocalFileSystem(), os.path.realpath(os.path.abspath(uri)))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return Location(pafs.LocalFileSystem(), os.path.realpath(unquote(parts.path)))
    netloc = parts.netloc
    if scheme not in ("abfs", "abfss", "az", "adl") and ":" in netloc.rpartition("@")[0]:
        raise ValueError(f"{redact_uri(uri)}: credentials belong in the storage options or the environment, "
                         "not in the URI")
    path = unquote(parts.path).rstrip("/")
    if scheme in ("s3", "s3a", "s3n"):
        return Location(_s3(netloc, opts), f"{netloc}{path}", "s3")
    if scheme in ("gs", "gcs"):
        return Location(_gcs(opts), f"{netloc}{path}", "gs")
    if scheme in ("abfs", "abfss", "az", "adl"):
        container, _, host = parts.netloc.partition("@")
        account = host.split(".", 1)[0] if host else None
        return Location(_azure(account, opts), f"{container}{path}", scheme, host)
    if scheme in ("hdfs", "viewfs"):
        return Location(_hdfs(parts.hostname or "", parts.port, opts), path or "/", scheme, parts.netloc)
    fs, root = _fsspec(uri, scheme, storage_options)
    return Location(fs, root.rstrip("/"), scheme)


@dataclass(frozen=True)
class ListedFile:
    path: str  # in the filesystem
    uri: str  # what the run identity, quarantine rows and fallback document URIs name
    size: int
    mtime_ns: int
    relative: str  # below the input root ("" for a single-file input)


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """True when any component of ``relative`` matches one of the shell ``patterns`` (hidden files, ``_SUCCESS``,
    unfinished ``*.partial`` folders, ...)."""
    return any(fnmatch.fnmatchcase(part, pat) for part in relative.split("/") if part for pat in patterns)


def list_files(loc: Location, *, exclude: Sequence[str] = ()) -> tuple[list[ListedFile], list[ListedFile]]:
    """(files, excluded files) under ``loc.root`` (or ``loc.root`` itself when it is a file), sorted by path.

    One recursive :class:`pyarrow.fs.FileSelector` listing: object stores answer it with paged list requests
    (about 1,000 objects each on S3), which carry every object's size and modification time, so there is no
    per-file stat call and a listing of 100,000 files takes a hundred requests, not minutes.
    """
    info = loc.fs.get_file_info(loc.root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"ingest input {redact_uri(loc.uri(loc.root))} does not exist: pass --input URI "
                                "(a file or a folder: a path, file://, s3://, gs://, hdfs://, abfs://)")
    if info.type == pafs.FileType.File:
        infos, base = [info], None
    else:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.root, recursive=True))
        base = loc.root.rstrip("/") + "/"
    files: list[ListedFile] = []
    skipped: list[ListedFile] = []
    for i in sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path):
        rel = i.path[len(base):] if base and i.path.startswith(base) else ("" if base is None else i.path)
        f = ListedFile(i.path, loc.uri(i.path), int(i.size or 0), int(i.mtime_ns or 0), rel)
        (skipped if rel and excluded(rel, exclude) else files).append(f)
    return files, skipped
