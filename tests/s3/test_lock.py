"""Table claims on an object store: S3 conditional writes (If-None-Match) make exactly one racing run win."""

import pytest

from tests.pipeline.test_lock import race
from vidscore.pipeline.lock import TableLock, TableLocked


def test_s3_claims_use_conditional_writes(s3) -> None:
    bucket = s3.bucket()
    assert len(race(f"s3://{bucket}/table", s3.url)) == 1
    with pytest.raises(TableLocked):
        TableLock(f"s3://{bucket}/table", "20260101T000001-zzzzzz", endpoint_url=s3.url).acquire()
