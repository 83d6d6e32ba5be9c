"""Pages of records that travel to stdout as one unit instead of one message object each.

The Airbyte CDK turns every record into a message object, counts it, serialises it through a
generic dataclass serialiser and prints it: about 25 microseconds per record, several times
what reading and flattening the record costs. An events backfill has tens of millions of
records, so this connector hands whole pages from its streams to its own entrypoint
(`source_klaviyo.entrypoint`), which counts them and writes them as ready-made JSON lines.

The contract is negotiated, not assumed: a source emits `RecordPage`s only after
`KlaviyoEntrypoint` switched `emit_record_pages` on. Any other caller (the CDK's own entrypoint,
its test helpers, PyAirbyte in-process) gets ordinary per-record messages, with the same
content: records never carry null fields, since the CDK's serialiser drops them too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from source_klaviyo.jsonapi import encode_json


@dataclass(frozen=True)
class RecordPage:
    """Records of one stream, in order, to be written as consecutive RECORD lines.

    `type` is deliberately not an Airbyte message type, so the CDK's stream loop passes a page
    through untouched instead of treating it as one record.
    """

    stream: str
    records: Sequence[Mapping[str, Any]]
    type: ClassVar[None] = None

    def to_lines(self) -> str:
        """Serialise every record as an Airbyte RECORD message, one per line (no final newline).

        Null fields are left out, exactly as the CDK's serialiser leaves them out.
        """
        emitted_at = int(time.time() * 1000)
        head = b'{"type":"RECORD","record":{"stream":' + encode_json(self.stream) + b',"data":'
        tail = b',"emitted_at":' + str(emitted_at).encode() + b"}}"
        encode = encode_json
        lines = [
            head
            + encode({name: value for name, value in record.items() if value is not None})
            + tail
            for record in self.records
        ]
        return b"\n".join(lines).decode()
