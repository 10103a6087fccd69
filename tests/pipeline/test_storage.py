"""Storage helpers: nothing secret survives in printable locations or messages."""

from pipeline.storage import join, redact, redact_text, storage_options


def test_redact_drops_credentials_and_query() -> None:
    assert redact("s3://bucket/k.mp4") == "s3://bucket/k.mp4"
    assert (
        redact("https://user:pw@host:9000/b/k.mp4?X-Amz-Signature=abc&X-Amz-Credential=AK")
        == "https://host:9000/b/k.mp4"
    )
    assert redact("/local/path.mp4") == "/local/path.mp4"


def test_redact_text() -> None:
    text = "GET https://u:secret@h/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA failed"
    out = redact_text(text)
    assert "secret" not in out and "deadbeef" not in out and "AKIA" not in out and "https://h/k" in out


def test_join_and_endpoint(monkeypatch) -> None:
    assert join("s3://b/dir/", "v/a.mp4") == "s3://b/dir/v/a.mp4"
    assert join("/data", "s3://other/x.mp4") == "s3://other/x.mp4"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert storage_options("s3://b/x") == {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}
    assert storage_options("s3://b/x", "http://minio:9000") == {"client_kwargs": {"endpoint_url": "http://minio:9000"}}
    assert storage_options("/local") == {}
