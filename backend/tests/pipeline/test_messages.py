import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from pulseboard.pipeline.messages import MalformedMessage, decode
from tests.pipeline.helpers import batch, event_item, message

DIGEST = hashlib.sha256(b"salt\0project\0203.0.113.7").digest()


def test_an_ip_hash_comes_as_hex_and_is_read_as_its_bytes() -> None:
    now = datetime.now(UTC)
    read = batch(uuid.uuid4(), uuid.uuid4(), [event_item(now, ip_hash=DIGEST.hex())])
    assert read.items[0]["ip_hash"] == DIGEST


def test_an_ip_hash_that_is_not_hex_makes_the_message_unreadable() -> None:
    now = datetime.now(UTC)
    payload = message(uuid.uuid4(), uuid.uuid4(), [event_item(now, ip_hash="not hex")])
    with pytest.raises(MalformedMessage):
        decode(payload)
