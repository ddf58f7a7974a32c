"""Tiny S3 XML writer and reader. S3 bodies are small and flat; a string builder is enough
and avoids building element trees for every listing entry. Request XML is read with
defusedxml: a body is the network's, so a DTD or an entity declaration is refused outright
(stdlib expat only bounds entity expansion)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape

import defusedxml
import defusedxml.ElementTree

from lightningstor.objects.names import NOT_XML_RE
from lightningstor_server.s3.errors import MalformedXML

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
# What XML 1.0 cannot carry at all, not even as a character reference (NOT_XML_RE): no stored
# key holds any of it (names.py refuses them); request text echoed back (a prefix, a marker,
# an error's resource) may, and is shown with U+FFFD in its place so that every document
# parses.


def element(name: str, value: str | int | bool | None) -> str:
    """``<name>value</name>`` with the text escaped; ``None`` renders nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    # \r would come back as \n after any XML parser's line-end normalization.
    text = escape(NOT_XML_RE.sub("\ufffd", str(value)), {"\r": "&#13;"})
    return f"<{name}>{text}</{name}>"


# The element S3 names each checksum algorithm's value with, in every document.
CHECKSUM_ELEMENTS = {
    "ChecksumCRC32": "crc32",
    "ChecksumCRC32C": "crc32c",
    "ChecksumCRC64NVME": "crc64nvme",
    "ChecksumSHA1": "sha1",
    "ChecksumSHA256": "sha256",
}
_ELEMENT_OF = {algorithm: name for name, algorithm in CHECKSUM_ELEMENTS.items()}


def checksum_elements(checksums: Mapping[str, str]) -> list[str]:
    """``<ChecksumCRC32>...</ChecksumCRC32>`` and the like, for ``checksums`` by algorithm."""
    return [element(_ELEMENT_OF[a], v) for a, v in checksums.items() if a in _ELEMENT_OF]


def group(name: str, children: Iterable[str]) -> str:
    return f"<{name}>{''.join(children)}</{name}>"


def document(root: str, children: Iterable[str], *, namespace: bool = True) -> bytes:
    attrs = f' xmlns="{S3_NAMESPACE}"' if namespace else ""
    return f"{XML_DECLARATION}<{root}{attrs}>{''.join(children)}</{root}>".encode()


def parse_request(body: bytes, root: str | None = None) -> ET.Element:
    """A request body's XML root (named ``root``, namespace aside, when given); MalformedXML
    for anything else: not well-formed, a DTD, an entity declaration, another root."""
    try:
        parsed = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError):
        raise MalformedXML() from None
    if root is not None and local_name(parsed.tag) != root:
        raise MalformedXML()
    return parsed


def local_name(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``: S3 accepts request XML with or without its namespace."""
    return tag.rpartition("}")[2]


def fields_of(element: ET.Element) -> dict[str, ET.Element]:
    """Child elements by local name; MalformedXML for one given twice."""
    found: dict[str, ET.Element] = {}
    for child in element:
        name = local_name(child.tag)
        if name in found:
            raise MalformedXML()
        found[name] = child
    return found


def text_of(element: ET.Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()
