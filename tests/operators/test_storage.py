"""URL identity and scrubbing: identities keep what names a video; outputs keep nothing secret (deny by default)."""

import pytest

from vidscore.operators.read import normalize, video_id_for
from vidscore.operators.storage import join, storage_options
from vidscore.operators.urls import identity, redact, redact_text

SECRETS = ["TOKENSENTINEL1", "KEYSENTINEL2", "PWSENTINEL3", "GCSSIGSENTINEL4", "AZSIGSENTINEL5", "UNKNOWNSENTINEL6"]
LEAKY = [
    "https://TOKENSENTINEL1@host.example/x.mp4",
    "https://user:PWSENTINEL3@host.example/x.mp4",
    "https://host.example/x.mp4?api_key=KEYSENTINEL2&password=PWSENTINEL3",
    "https://storage.googleapis.com/b/x.mp4?X-Goog-Algorithm=GOOG4&X-Goog-Signature=GCSSIGSENTINEL4",
    "https://acct.blob.core.windows.net/c/x.mp4?sv=2022-11-02&se=2030&sp=r&sig=AZSIGSENTINEL5",
    "https://host.example/x.mp4?id=7&mystery=UNKNOWNSENTINEL6",
    "https://host.example/x.mp4#access_token=TOKENSENTINEL1",
    "s3://KEYSENTINEL2:PWSENTINEL3@bucket/k.mp4",
]


@pytest.mark.parametrize("url", LEAKY)
def test_no_secret_survives_redaction(url: str) -> None:
    for text in (redact(url), redact_text(f"GET {url} failed: 403"), redact_text(f"('{url}', 'x')")):
        assert not any(s in text for s in SECRETS), text
        assert "host.example" in text or "googleapis" in text or "windows.net" in text or "bucket/k.mp4" in text


def test_what_may_stay() -> None:
    assert redact("https://host/download?id=1&format=mp4") == "https://host/download?id=1&format=mp4"
    assert redact("https://host/x.mp4?X-Amz-Signature=s&X-Amz-Credential=AK") == "https://host/x.mp4"
    assert redact("https://host/x.mp4?foo=bar") == "https://host/x.mp4?foo=REDACTED"
    assert redact("s3://bucket/gen x/hash#1.mp4") == "s3://bucket/gen x/hash#1.mp4"
    assert redact("/local/path#1.mp4") == "/local/path#1.mp4"
    assert redact_text("password=hunter2 and token: abc") == "password=REDACTED and token: REDACTED"


def test_identity_keeps_what_names_the_video() -> None:
    assert identity("s3://bucket/gen x/hash#1.mp4") != identity("s3://bucket/gen x/hash#2.mp4")
    assert identity("s3://bucket/a?b.mp4") == "s3://bucket/a?b.mp4"
    assert identity("https://h/download?id=1") != identity("https://h/download?id=2")
    signed = "https://h/k.mp4?X-Amz-Signature={}&X-Amz-Expires=3600&X-Amz-Credential=AK"
    assert identity(signed.format("one")) == identity(signed.format("two")) == "https://h/k.mp4"
    assert identity("https://u:p@h/k.mp4?sig=1&sv=2&id=3") == "https://h/k.mp4?id=3"


def test_manifest_ids_follow_identity() -> None:
    import pyarrow as pa

    uris = ["s3://b/gen x/hash#1.mp4", "s3://b/gen x/hash#2.mp4", "https://h/dl?id=1", "https://h/dl?id=2"]
    table = normalize(pa.table({"uri": uris}), "/")
    ids = table.column("video_id").to_pylist()
    assert len(set(ids)) == 4 and ids[0] == video_id_for("s3://b/gen x/hash#1.mp4")


def test_join_and_endpoint(monkeypatch) -> None:
    assert join("s3://b/dir/", "v/a.mp4") == "s3://b/dir/v/a.mp4"
    assert join("/data", "s3://other/x.mp4") == "s3://other/x.mp4"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert storage_options("s3://b/x") == {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}
    assert storage_options("s3://b/x", "http://minio:9000") == {"client_kwargs": {"endpoint_url": "http://minio:9000"}}
    assert storage_options("/local") == {}
