"""Ingest from S3: moto's standalone server on loopback holds the fixture corpus; the result must equal a local
ingest of the same files, and the credentials must appear in no log, run record or intent file."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from pivot_spark.config import load_config
from pivot_spark.io.fs import list_files, location
from pivot_spark.lake import Lake
from pivot_spark.pipeline.ingest import ingest

pytestmark = [pytest.mark.spark, pytest.mark.s3]

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
SECRET = "s3cr3t-never-printed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_corpus():
    """An S3 endpoint on 127.0.0.1 with the fixture corpus under s3://pivot-test/corpus/."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key=SECRET)
        s3.create_bucket(Bucket="pivot-test")
        for p in sorted(CORPUS.iterdir()):
            s3.upload_file(str(p), "pivot-test", f"corpus/{p.name}")
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET}
    finally:
        server.stop()


def _options(opts: dict[str, str]) -> str:
    return "ingest.storage_options=" + json.dumps(opts)


def test_listing_names_s3_uris(s3_corpus):
    files, _ = list_files(location("s3://pivot-test/corpus", s3_corpus))
    assert [f.uri for f in files] == [f"s3://pivot-test/corpus/{p.name}" for p in sorted(CORPUS.iterdir())]
    assert [f.size for f in files] == [p.stat().st_size for p in sorted(CORPUS.iterdir())]
    with pytest.raises(FileNotFoundError, match="s3://pivot-test/nothing does not exist"):
        list_files(location("s3://pivot-test/nothing", s3_corpus))


def test_s3_ingest_equals_local_ingest(spark, tmp_path, s3_corpus, capfd):
    local = Lake(str(tmp_path / "local"))
    remote = Lake(str(tmp_path / "remote"))
    ingest(load_config("smoke", [f"lake.uri={local.uri}"]), quiet=True)
    capfd.readouterr()
    summary = ingest(load_config("smoke", [f"lake.uri={remote.uri}", "ingest.input=s3://pivot-test/corpus",
                                           _options(s3_corpus)]), quiet=False)
    printed = capfd.readouterr()
    c = summary["counts"]
    assert (c["files"], c["records"], c["documents"], c["duplicates"], c["quarantined"]) == (8, 1178, 1156, 22, 0)
    assert c["skipped_files"]["unknown_format"]["example"] == "s3://pivot-test/corpus/NOTICE.md"

    def docs(lake: Lake):
        return lake.read_arrow("documents").drop_columns(["run_id", "snapshot"]).sort_by("doc_id")

    assert docs(remote).column("doc_id").to_pylist() == docs(local).column("doc_id").to_pylist()
    assert docs(remote).equals(docs(local))

    # the secret key is nowhere: not printed, not in the runs table, not in the intent file
    assert SECRET not in printed.out + printed.err
    assert "AWS_SECRET_ACCESS_KEY" in printed.out + printed.err  # the printed config names it, redacted
    run = remote.read_arrow("runs").to_pylist()[0]
    assert SECRET not in json.dumps(run, default=str)
    assert json.loads(run["config"])["ingest"]["storage_options"]["AWS_SECRET_ACCESS_KEY"] == "***"
    intents = list((Path(remote.uri) / "_runs").glob("*.json"))
    assert intents and all(SECRET not in p.read_text() for p in intents)
    assert '"s3://pivot-test/corpus/ddtp.jsonl.gz"' in intents[0].read_text()  # the listing is the identity
