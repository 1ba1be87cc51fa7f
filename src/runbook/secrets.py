"""Keep secrets out of everything the tool writes: text, JSON, Markdown, journal, plan, stderr.

Three layers, all here:

* which values are secrets: environment variables named like one (`DB_PASS_WORD`,
  `SECRET_KEY_BASE`, `JWT_SIGNING_KEY`...) and values shaped like one wherever they sit
  (URL userinfo, DSN keys, `password=` queries, long high-entropy strings);
* the environment in an API call (`RuntimeEnvironmentVariables`) is masked as a whole, value by
  value, except what a check shows as evidence: of the URLs the checks follow, the scheme, host,
  port and path; their userinfo and query never;
* free text (log lines, probe bodies, error messages) is scrubbed of every secret in its raw,
  URL-encoded and URL-decoded forms, of URL userinfo and query values, and of `name=value`
  pairs whose name is a secret's; and terminal control characters are made visible, so that
  nothing read from AWS or the app can move the cursor, retitle or clear the terminal.

Every output path goes through a Scrubber. It runs in linear time: no pattern here can
backtrack over its input (anchored, possessive, bounded), so hostile input costs what its
length costs.
"""

from __future__ import annotations

import math
import re
import sys
import traceback
from collections import Counter
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"
ENV_KEY = "RuntimeEnvironmentVariables"
# Not secret, and the health-check check shows it as evidence (image port vs PORT).
PLAIN_ENV = frozenset({"PORT"})

# A name is a secret's when a secret word is its last meaningful part: `DB_PASS_WORD`,
# `SECRET_KEY_BASE`, `JWT_SIGNING_KEY`, `REDIS_AUTH`; not `TOKEN_URL`, `AUTH_PROVIDER`,
# `AWS_ACCESS_KEY_ID` or `PASSWORD_FILE`, which name where or what a secret is, not the secret.
_SECRET_WORDS = frozenset({
    "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "TOKENS", "KEY", "KEYS",
    "APIKEY", "CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "PRIVATE", "SALT", "PEPPER", "SIGNATURE", "SIG",
    "COOKIE", "SESSION", "DSN", "CERT", "PEM",
})
# Compound upper-case words (`DBPASSWORD`, `AUTHTOKEN`) end with one of these.
_SECRET_ENDINGS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIALS")
# What may follow the secret word and still be the secret itself: KEY_BASE, PASS_WORD, TOKEN_2.
_VALUE_WORDS = frozenset({"BASE", "WORD", "PHRASE", "VALUE", "KEY", "KEYS", "B64", "BASE64", "HEX", "RAW", "STRING",
                          "STR", "DATA", "HASH", "PRIMARY", "SECONDARY", "OLD", "NEW", "PREVIOUS", "CURRENT", "NEXT"})
_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Values never masked in free text even when a secret's: masking every "true" or "8000" printed
# would make the report lie, and none of them is a credential worth the name.
_TRIVIAL = re.compile(r"(?i)(?:true|false|yes|no|on|off|none|null|[0-9]{1,5})")
_MIN_SECRET = 3

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-]++")
_HEX_KEY = re.compile(r"[0-9a-f]{32,}+|[0-9A-F]{32,}+")

# Terminal control: C0 (but tab), DEL, C1 (CSI U+009B among them), and bidirectional overrides that
# make text read otherwise than it is. Newlines too: a log line must not print a line of its own.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BLOCK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# A URL is found by its "://" (a search for the scheme would retry at every letter) and ends here.
_URL_END = re.compile(r"[\s\"'<>`\\]")
# name=value, name: value, "name": "value". The lookbehind starts a name only where a word starts
# and the possessive, bounded name cannot backtrack: linear in the text.
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z0-9_.\-]{1,64}+)(?P<sep>[\"']?\s{0,4}+[=:]\s{0,4}+[\"']?)(?P<value>[^\s\"'&,;<>{}()\[\]]++)"
)


def is_secret_name(name: str) -> bool:
    parts = [p.upper() for p in _NAME_PARTS.findall(name)]
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if part in _SECRET_WORDS or (len(part) > 6 and part.endswith(_SECRET_ENDINGS)):
            return all(p in _VALUE_WORDS or p.isdigit() for p in parts[index + 1:])
    return False


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def is_credential_shaped(value: str) -> bool:
    """A long random-looking token: an API key, a signing key, a base64 secret."""
    if len(value) < 20 or not _TOKEN_CHARS.fullmatch(value):
        return False
    if _HEX_KEY.fullmatch(value):
        return True
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return classes == 3 and _entropy(value) >= 3.5


# -- URLs -------------------------------------------------------------------------
def _url_spans(text: str):
    """(after "://", end) of each scheme://… URL in the text, in one left-to-right pass."""
    position = 0
    while (found := text.find("://", position)) != -1:
        end_match = _URL_END.search(text, found + 3)
        end = end_match.start() if end_match else len(text)
        yield found + 3, end
        position = max(end, found + 3)


def _split_url(text: str, rest: int, end: int) -> tuple[int, int]:
    """(userinfo end, authority end) within text[rest:end], the part after "://".

    The userinfo runs to the last "@" before the path: a password may hold "/" or "@"
    unencoded (SQLAlchemy reads it so), and a later "@" in the query is not the userinfo's.
    """
    first_at = text.find("@", rest, end)
    slash = text.find("/", rest, first_at) if first_at != -1 else -1
    if slash != -1 and text.find(":", rest, slash) == -1:
        first_at = -1  # "host/path/@name": the "@" is the path's, there is no userinfo
    if first_at == -1:
        at = -1
        after = rest
    else:
        path = min((i for i in (text.find(c, first_at, end) for c in "/?#") if i != -1), default=end)
        at = text.rfind("@", rest, path)
        after = at + 1
    authority_end = min((i for i in (text.find(c, after, end) for c in "/?#") if i != -1), default=end)
    return at, authority_end


def redact_url(url: str) -> str:
    """Scheme, host, port and path of a URL; its userinfo and query values masked."""
    return _redact_urls(url)


def _redact_query(query: str) -> str:
    if not query:
        return query
    out = []
    for piece in re.split(r"([?&#;])", query):
        if "=" in piece:
            name, _, _ = piece.partition("=")
            out.append(f"{name}={MASK}")
        elif piece and piece not in "?&#;":
            out.append(MASK)
        else:
            out.append(piece)
    return "".join(out)


def _redact_urls(text: str) -> str:
    if "://" not in text:
        return text
    out, last = [], 0
    for rest, end in _url_spans(text):
        at, authority_end = _split_url(text, rest, end)
        body_start = at + 1 if at != -1 else rest
        query = min((i for i in (text.find(c, authority_end, end) for c in "?#") if i != -1), default=end)
        out += [text[last:rest], f"{MASK}@" if at != -1 else "", text[body_start:query], _redact_query(text[query:end])]
        last = end
    out.append(text[last:])
    return "".join(out)


def _url_secrets(value: str) -> set[str]:
    """The credentials inside the URLs of a value: passwords, DSN keys, secret query values."""
    found: set[str] = set()
    for rest, end in _url_spans(value):
        at, authority_end = _split_url(value, rest, end)
        if at != -1:
            user, colon, password = value[rest:at].partition(":")
            if colon and password:
                found.add(password)
            elif is_credential_shaped(unquote(user)) or len(user) >= 16:
                found.add(user)  # a DSN key: https://<key>@o0.ingest.sentry.io/1
        query = min((i for i in (value.find(c, authority_end, end) for c in "?#") if i != -1), default=end)
        for piece in re.split(r"[?&#;]", value[query:end]):
            name, eq, item = piece.partition("=")
            if eq and item and (is_secret_name(unquote_plus(name)) or is_credential_shaped(unquote_plus(item))):
                found.add(item)
    return found


def secrets_in_value(name: str, value: str) -> set[str]:
    found = set()
    if is_secret_name(name) or is_credential_shaped(value):
        found.add(value)
    found |= _url_secrets(value)
    for match in _PAIR.finditer(value):  # libpq's "host=… password=…"
        if is_secret_name(match["name"]):
            found.add(match["value"])
    return found


def secrets_in_env(env: dict[str, str]) -> set[str]:
    """Values that must never be printed, found by their name or by their shape."""
    found: set[str] = set()
    for name, value in env.items():
        if isinstance(value, str) and value:
            found |= secrets_in_value(str(name), value)
    return {s for s in found if len(s) >= _MIN_SECRET and not _TRIVIAL.fullmatch(s)}


def forms(secret: str) -> set[str]:
    """How a secret may be spelled in text: raw, URL-encoded, URL-decoded."""
    spelled = set()
    for plain in {secret, unquote(secret), unquote_plus(secret)}:
        spelled |= {plain, quote(plain, safe=""), quote(plain), quote_plus(plain)}
    return {s for s in spelled if len(s) >= _MIN_SECRET}


def sanitize(text: str, *, multiline: bool = False) -> str:
    """Terminal control characters as visible escapes (\\x1b, \\n): they print, they do not act."""
    pattern = _CONTROL_BLOCK if multiline else _CONTROL
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


# Every secret any scrubber of this process was told of: for the last-resort paths that have no
# engine at hand (the one-line error, a --debug traceback).
_SEEN: set[str] = set()


class Scrubber:
    def __init__(self, secrets: Iterable[str] = (), shown_env: Iterable[str] = ()):
        self.secrets = sorted(set(secrets), key=len, reverse=True)
        # Environment variables whose values are evidence: the URLs the checks follow.
        self.shown_env = frozenset(shown_env)
        self._forms = sorted({f for s in self.secrets for f in forms(s)}, key=len, reverse=True)
        _SEEN.update(self.secrets)

    def extended(self, secrets: Iterable[str] = (), shown_env: Iterable[str] = ()) -> "Scrubber":
        """This scrubber plus more: secrets once seen stay masked for the rest of the run."""
        return Scrubber({*self.secrets, *secrets}, {*self.shown_env, *shown_env})

    def text(self, value: str, *, multiline: bool = False) -> str:
        # Known secrets first, whole: a pair or URL masked first could leave a secret's tail
        # ("PASSPHRASE=correct horse battery staple" masked up to the first space).
        for form in self._forms:
            if form in value:
                value = value.replace(form, MASK)
        value = _redact_urls(value)
        if "=" in value or ":" in value:
            value = _PAIR.sub(self._pair, value)
        return sanitize(value, multiline=multiline)

    @staticmethod
    def _pair(match: re.Match[str]) -> str:
        if match["value"] == MASK or not is_secret_name(match["name"]):
            return match.group()
        return f"{match['name']}{match['sep']}{MASK}"

    def env(self, env: dict[str, Any]) -> dict[str, Any]:
        """An environment as a call shows it: every value masked but the evidence."""
        shown = {}
        for name, value in env.items():
            key = sanitize(name) if isinstance(name, str) else name
            if isinstance(value, str) and name in self.shown_env and "://" in value:
                shown[key] = self.text(value)  # userinfo and query values masked, like any URL in text
            elif isinstance(value, str) and name in PLAIN_ENV and value.isdigit():
                shown[key] = value
            else:
                shown[key] = MASK
        return shown

    def data(self, value: Any) -> Any:
        """A JSON-shaped copy with every string scrubbed and every environment masked."""
        return self._walk(value, keep_types=False)

    def view(self, value: Any) -> Any:
        """A copy of anything the engine reports (results, changes, strings) safe to show."""
        return self._walk(value, keep_types=True)

    def call(self, call: Any) -> Any:
        """An ApiCall safe to show (and to turn into its CLI twin); the real one keeps its values."""
        return replace(call, params=self.data(dict(call.params)))

    def _walk(self, value: Any, keep_types: bool) -> Any:
        if isinstance(value, Enum):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                (sanitize(k) if isinstance(k, str) else k): (self.env(v) if k == ENV_KEY and isinstance(v, Mapping) else self._walk(v, keep_types))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [self._walk(v, keep_types) for v in value]
            return type(value)(items) if keep_types and isinstance(value, tuple) else items
        if keep_types and is_dataclass(value) and not isinstance(value, type):
            if hasattr(value, "operation") and hasattr(value, "params"):  # an ApiCall
                return self.call(value)
            return replace(value, **{f.name: self._walk(getattr(value, f.name), keep_types) for f in fields(value) if f.init})
        return value


def everything_seen() -> Scrubber:
    return Scrubber(_SEEN)


def scrub_line(text: str) -> str:
    """A message printed outside any report (the one-line error): scrubbed of every secret seen."""
    return everything_seen().text(text)


def install_excepthook() -> None:
    """A traceback (--debug, or a bug) is scrubbed like any other output."""

    def hook(kind, exc, tb) -> None:
        sys.stderr.write(everything_seen().text("".join(traceback.format_exception(kind, exc, tb)), multiline=True))

    sys.excepthook = hook


class ScrubbingReporter:
    """Wraps the engine's Reporter: whatever it is shown (summaries, outcomes, waits, notes,
    proposed calls) is scrubbed first, whatever methods the reporter has."""

    def __init__(self, reporter: Any, scrubber: Callable[[], Scrubber]):
        self._reporter, self._scrubber = reporter, scrubber

    @property
    def wrapped(self) -> Any:
        return self._reporter

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._reporter, name)
        if not callable(target):
            return target

        def scrubbed(*args: Any, **kwargs: Any) -> Any:
            scrub = self._scrubber().view
            return target(*(scrub(a) for a in args), **{k: scrub(v) for k, v in kwargs.items()})

        return scrubbed
