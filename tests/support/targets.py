"""Webhook URLs the SSRF guard judges by the IPv4 address they embed."""

from __future__ import annotations

# IPv6 forms that carry an IPv4 address a translator may connect to, judged by that address, and
# ranges refused whatever they carry: (url, what the refusal says).
EMBEDDING_URLS = [
    ("http://[64:ff9b::a00:1]/", "(NAT64) embeds 10.0.0.1"),
    ("http://[64:ff9b::7f00:1]:8080/", "(NAT64) embeds 127.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]/", "embeds 169.254.169.254: 169.254.169.254 is a cloud metadata"),
    ("http://[64:ff9b:1::808:808]/", "local-use NAT64"),
    ("http://[64:ff9b:1:ffff::a00:1]/", "local-use NAT64"),
    ("http://[::10.0.0.1]/", "(IPv4-compatible) embeds 10.0.0.1"),
    ("http://[::127.0.0.1]/", "(IPv4-compatible) embeds 127.0.0.1"),
    ("http://[::ffff:0:10.0.0.1]/", "(SIIT) embeds 10.0.0.1"),
    ("http://[::ffff:0:127.0.0.1]/", "(SIIT) embeds 127.0.0.1"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[feff:1:2::3]/", "site-local"),
    ("http://[2002:a00:1::1]/", "(6to4) embeds 10.0.0.1"),
    ("http://[2002:7f00:1::]/", "(6to4) embeds 127.0.0.1"),
    ("http://[2002:c0a8:101::]/", "(6to4) embeds 192.168.1.1"),
    ("http://[2002:c058:6301::]/", "embeds 192.88.99.1: 192.88.99.1 is a 6to4 relay anycast"),
    ("http://192.88.99.1/", "6to4 relay anycast"),
]


# The same forms carrying a public IPv4 address: judged by it, so allowed.
PUBLIC_EMBEDDING_URLS = [
    "http://[64:ff9b::808:808]/",
    "http://[2002:808:808::1]/",
    "http://[::ffff:0:808:808]/",
    "http://[::8.8.8.8]/",
]
