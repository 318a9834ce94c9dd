"""Reading sitemaps (sitemaps.org protocol) and the `Sitemap:` lines of robots.txt.

Only `<url><loc>` (pages) and `<sitemap><loc>` (child sitemaps) name documents: image, video
and alternate-language extensions (`image:loc`, `video:content_loc`, `xhtml:link`) live in
other namespaces and are not pages. Sitemaps may be gzip-compressed (`.xml.gz`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin
from xml.etree import ElementTree

# The protocol caps an uncompressed sitemap at 50 MB: more is a decompression bomb.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
NAMESPACES = {"", "http://www.sitemaps.org/schemas/sitemap/0.9"}
NAMESPACES |= {"http://www.google.com/schemas/sitemap/0.84"}
ROBOTS_SITEMAP = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class NotASitemap(ValueError):
    """Bytes that claim to be a sitemap and are not one (broken XML, another root element)."""


@dataclass(frozen=True)
class Sitemap:
    is_index: bool  # a <sitemapindex>: its locations are sitemaps, not pages
    locations: list[str]


def gunzip(data: bytes) -> bytes:
    """`data` decompressed when it is gzip (a `.xml.gz` served as is), else as it came."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(data, MAX_SITEMAP_BYTES)
    except zlib.error as error:
        raise NotASitemap(f"broken gzip ({error})") from error
    if inflater.unconsumed_tail:
        raise NotASitemap(f"over {MAX_SITEMAP_BYTES} bytes uncompressed")
    return plain


def looks_like_sitemap(url: str, data: bytes) -> bool:
    """By its name, its gzip magic or its root element."""
    path = url.split("?", 1)[0].lower()
    if path.endswith((".xml", ".xml.gz")) or data.startswith(b"\x1f\x8b"):
        return True
    head = data[:2000]
    return b"<urlset" in head or b"<sitemapindex" in head


def parse(data: bytes, base_url: str) -> Sitemap:
    """The locations a sitemap lists, relative ones resolved against `base_url`."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise NotASitemap(str(error)) from error
    namespace, _, name = root.tag[1:].rpartition("}") if root.tag[:1] == "{" else ("", "", root.tag)
    if namespace not in NAMESPACES or name not in ("urlset", "sitemapindex"):
        raise NotASitemap(f"root element <{name}> is not <urlset> or <sitemapindex>")
    prefix = f"{{{namespace}}}" if namespace else ""
    entry = "sitemap" if name == "sitemapindex" else "url"
    locations: list[str] = []
    for element in root.findall(prefix + entry):
        loc = element.find(prefix + "loc")  # a direct child: not image:loc inside image:image
        if loc is not None and loc.text and loc.text.strip():
            locations.append(urljoin(base_url, loc.text.strip()))
    return Sitemap(name == "sitemapindex", list(dict.fromkeys(locations)))


def robots_sitemaps(text: str, base_url: str) -> list[str]:
    """The sitemaps a robots.txt names on its `Sitemap:` lines."""
    found = [urljoin(base_url, url) for url in ROBOTS_SITEMAP.findall(text)]
    return list(dict.fromkeys(found))
