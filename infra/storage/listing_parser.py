"""A response parser that reads a listing's objects at the floor.

botocore parses every response with one generic, model-driven walk: for each `<Contents>` of a
ListObjectsV2 page it builds a name-to-node map and visits all nine members of the `Object`
shape, about 25 µs a key. A listing is almost all `<Contents>`, and those hold five plain
fields (Key, LastModified, ETag, Size, StorageClass), so `ListingParser` reads such an item
straight from its XML children. An item with anything else in it (an owner, checksums, a
restore status) goes the generic way, so the result is always what botocore would return.
Dates go through the session's timestamp parser (`timestamps.parse_timestamp`).
"""

from __future__ import annotations

from typing import Any

from botocore.parsers import ResponseParserFactory, RestXMLParser

_PLAIN = frozenset({"Key", "ETag", "StorageClass"})


class ListingParser(RestXMLParser):
    """botocore's REST-XML parser with a direct path for a listing's plain objects."""

    def _handle_structure(self, shape: Any, node: Any) -> Any:
        if shape.name != "Object" or isinstance(node, list):
            return super()._handle_structure(shape, node)
        parsed: dict[str, Any] = {}
        for child in node:
            name = child.tag.rpartition("}")[2]
            text = child.text or ""
            if name in _PLAIN:
                parsed[name] = text
            elif name == "Size":
                parsed[name] = int(text)
            elif name == "LastModified":
                parsed[name] = self._timestamp_parser(text)
            else:
                return super()._handle_structure(shape, node)
        return parsed


class ListingParserFactory(ResponseParserFactory):
    """botocore's parser factory, handing out `ListingParser` for REST-XML (S3)."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return ListingParser(**self._defaults)
        return super().create_parser(protocol_name)
