"""Store URLs made safe to print in messages and logs."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

_SECRET_PARAM = re.compile(r"(?i)([?&][^=&#]*(?:password|secret|token|key)[^=&#]*=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` safe to print: the password (and secret-looking query values) become ``***``."""
    scheme, sep, rest = url.partition("://")
    if sep:
        before_query, query_sep, query = rest.partition("?")
        userinfo, at, hosts_and_path = before_query.rpartition("@")
        if at:
            user, colon, _password = userinfo.partition(":")
            rest = f"{user}{':***' if colon else ''}@{hosts_and_path}{query_sep}{query}"
        url = f"{scheme}{sep}{rest}"
    return _SECRET_PARAM.sub(r"\1***", url)
