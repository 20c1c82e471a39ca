"""Readable token strings for a tokenizer's vocabulary: decoded bytes, word-start flags, specials.

One display convention for the whole product (UI tables, exports, CLI), see `Vocabulary.display`:

- a token that starts a word is shown bare: ``zażółć`` (GPT-2 ``Ġzażółć``, SentencePiece
  ``▁zażółć``, WordPiece ``zażółć``);
- a token that continues a word gets the prefix ``##``: ``##ing`` (GPT-2 ``ing``,
  SentencePiece ``ing``, WordPiece ``##ing``);
- special tokens are shown as they are: ``[CLS]``, ``<|endoftext|>``, ``[unused5]``;
  embedding rows beyond the tokenizer as ``<pad:ID>``;
- whitespace inside a token is made visible: space ``␣``, newline ``↵``, tab ``⇥``, other
  invisible characters as ``\\xNN`` / ``\\uNNNN``; tokens made only of whitespace are shown bare;
- bytes that are not a complete UTF-8 character (half of ``ż``) are shown as ``<0xC5>``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embspace.errors import EmbspaceError

WORD_CONTINUATION_MARK = "##"
VISIBLE_WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥"}
DISPLAY_CONVENTION = (
    f"Tokens that continue a word are prefixed with {WORD_CONTINUATION_MARK!r}; tokens that start "
    "a word are shown bare; special tokens as they are. Whitespace is made visible: "
    "space ␣, newline ↵, tab ⇥. Incomplete UTF-8 bytes are shown as <0xNN>."
)

# Any one of these in a model directory is a tokenizer transformers can load without repository code.
TOKENIZER_VOCAB_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)

# Tokenizer families (Vocabulary.scheme).
BYTE_LEVEL = "byte_level"  # GPT-2, RoBERTa, GPT-NeoX, OPT, Llama 3, Qwen: "Ġ" is a leading space
METASPACE = "metaspace"  # SentencePiece (Llama 2, T5, XLM-R): "▁" marks a word start
WORDPIECE = "wordpiece"  # BERT: "##" marks a continuation
PLAIN = "plain"  # no word-boundary marker known: every token counts as a word start

_HEX_ERRORS = "embspace.hexbytes"


def _hex_bytes(error: UnicodeDecodeError) -> tuple[str, int]:
    bad = error.object[error.start : error.end]
    return "".join(f"<0x{b:02X}>" for b in bad), error.end


codecs.register_error(_HEX_ERRORS, _hex_bytes)

# BERT "[unused12]", Gemma "<unused12>", Llama 3 "<|reserved_special_token_5|>", T5 "<extra_id_3>":
# placeholders that were never trained as text.
_PLACEHOLDER = re.compile(r"\[unused\d+\]|<unused\d+>|<\|reserved_special_token_\d+\|>|<extra_id_\d+>|<\|extra_\d+\|>")
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (byte-level BPE vocabularies are written in it)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def _byte_decoder_table() -> dict[int, str]:
    """str.translate table: byte-level character -> one latin-1 character per byte.

    Characters below 256 that the GPT-2 alphabet moved elsewhere (space, controls) can still
    appear literally in added tokens; they map to their own UTF-8 bytes.
    """
    table = {ord(char): chr(byte) for byte, char in _bytes_to_unicode().items()}
    for code in range(256):
        if code not in table:
            table[code] = chr(code).encode("utf-8").decode("latin-1")
    return table


_BYTE_DECODER = _byte_decoder_table()
_SEPARATOR = "\uffff"  # a noncharacter: in no byte alphabet, left alone by _BYTE_DECODER


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Readable forms of every embedding row's token, ids 0 .. size-1.

    raw[i]: the tokenizer's own token string ("" for rows beyond the tokenizer).
    text[i]: readable text without the word marker, bytes decoded ("Ġzażółć" -> "zażółć").
    starts_word: bool [V], True where the token begins a word (or is special / whitespace only).
    is_special: bool [V], special tokens, unused placeholders and rows beyond the tokenizer.
    normalized[i]: casefolded text stripped of surrounding whitespace, for identity matching.
    is_byte_fragment: bool [V], the token holds bytes that are not a whole UTF-8 character.
    scheme: the tokenizer family, one of BYTE_LEVEL, METASPACE, WORDPIECE, PLAIN.
    The arrays are made read-only.
    """

    size: int
    raw: tuple[str, ...]
    text: tuple[str, ...]
    starts_word: np.ndarray
    is_special: np.ndarray
    normalized: tuple[str, ...]
    is_byte_fragment: np.ndarray
    scheme: str

    def __post_init__(self) -> None:
        for name in ("raw", "text", "normalized", "starts_word", "is_special", "is_byte_fragment"):
            if len(getattr(self, name)) != self.size:
                raise ValueError(f"Vocabulary.{name} has {len(getattr(self, name))} entries, expected {self.size}")
        for name in ("starts_word", "is_special", "is_byte_fragment"):
            getattr(self, name).flags.writeable = False

    def __len__(self) -> int:
        return self.size

    def display(self, i: int) -> str:
        """The token as people read it: "##" before continuations, whitespace made visible."""
        i = int(i)
        if self.is_special[i]:
            return self.text[i]
        shown = visible_whitespace(self.text[i])
        return shown if self.starts_word[i] else WORD_CONTINUATION_MARK + shown

    def display_many(self, ids: Iterable[int]) -> list[str]:
        return [self.display(i) for i in ids]


def visible_whitespace(text: str) -> str:
    """Space -> "␣", newline -> "↵", tab -> "⇥", other invisible characters -> "\\xNN"/"\\uNNNN"."""
    if text.isprintable() and " " not in text:
        return text
    return "".join(_visible_char(char) for char in text)


def _visible_char(char: str) -> str:
    if char in VISIBLE_WHITESPACE:
        return VISIBLE_WHITESPACE[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def check_tokenizer_files(directory: str | os.PathLike) -> None:
    """Raise EmbspaceError when a model directory has no tokenizer vocabulary file.

    Without one, transformers may still build an empty tokenizer and every token would show as <pad:N>.
    """
    directory = Path(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_VOCAB_FILES):
        raise EmbspaceError(
            f"{directory} has no tokenizer files (one of {', '.join(TOKENIZER_VOCAB_FILES)}), so its tokens "
            "cannot be shown. Copy the tokenizer files of the model it was trained from into that directory."
        )


def build_vocabulary(tokenizer: Any, vocab_size: int) -> Vocabulary:
    """Readable vocabulary for `vocab_size` embedding rows (E's columns, may exceed the tokenizer).

    `tokenizer`: a transformers tokenizer (fast or slow) or a `tokenizers.Tokenizer`. The family
    (byte-level BPE, SentencePiece/Metaspace, WordPiece) is read from the tokenizer's
    pre-tokenizer/decoder/model, or guessed from the vocabulary when those are not available.
    """
    if vocab_size < 0:
        raise ValueError(f"vocab_size must be >= 0, got {vocab_size}")
    backend = _backend(tokenizer)
    id_to_token = _id_to_token(tokenizer, backend)
    added, special_ids = _added_and_special(tokenizer, backend)
    scheme, marker = _detect_scheme(backend, id_to_token.values())
    decode = _DECODERS[scheme]

    tokens = [id_to_token.get(i) for i in range(vocab_size)]
    # Rows with no token (embedding padded beyond the tokenizer, or a hole in its ids) count as special.
    special = {i for i, token in enumerate(tokens) if token is None} | {i for i in special_ids if 0 <= i < vocab_size}
    special.update(i for i, token in enumerate(tokens) if token and token[0] in "[<" and _PLACEHOLDER.fullmatch(token))
    plain_added = {i for i in added if i < vocab_size} - special  # added as text, not in the model's alphabet
    model_ids = [i for i in range(vocab_size) if i not in special and i not in plain_added]

    raw = [token or "" for token in tokens]
    text = [f"<pad:{i}>" if token is None else token for i, token in enumerate(tokens)]
    starts_word = np.ones(vocab_size, dtype=bool)
    is_fragment = np.zeros(vocab_size, dtype=bool)
    if model_ids:
        bodies, starts, fragments = decode([tokens[i] for i in model_ids], marker)
        for i, body in zip(model_ids, bodies, strict=True):
            text[i] = body
        index = np.array(model_ids, dtype=np.int64)
        starts_word[index] = starts
        is_fragment[index] = fragments
    is_special = np.zeros(vocab_size, dtype=bool)
    is_special[np.fromiter(special, dtype=np.int64, count=len(special))] = True

    normalized = tuple(t.strip().casefold() for t in text)
    return Vocabulary(
        size=vocab_size,
        raw=tuple(raw),
        text=tuple(text),
        starts_word=starts_word,
        is_special=is_special,
        normalized=normalized,
        is_byte_fragment=is_fragment,
        scheme=scheme,
    )


# --- decoding model tokens: parallel lists (text, starts_word, is_byte_fragment) ---------------
# Bulk loops over plain lists: a tuple per token would make the garbage collector rescan the heap.

Decoded = tuple[list[str], list[bool], list[bool]]


def _decode_byte_level(tokens: list[str], _marker: str) -> Decoded:
    texts: list[str] = []
    starts: list[bool] = []
    fragments: list[bool] = []
    joined = _SEPARATOR.join(tokens)
    if joined.count(_SEPARATOR) == len(tokens) - 1:  # one translate call instead of one per token
        latins = joined.translate(_BYTE_DECODER).split(_SEPARATOR)
    else:
        latins = [token.translate(_BYTE_DECODER) for token in tokens]
    for latin in latins:
        try:
            data = latin.encode("latin-1")
        except UnicodeEncodeError:  # characters outside the byte alphabet: take them as written
            data = b"".join(c.encode("latin-1") if ord(c) < 256 else c.encode("utf-8") for c in latin)
        marked = data[:1] == b" "
        if marked:
            data = data[1:]
        try:
            body = data.decode("utf-8")
            fragment = False
        except UnicodeDecodeError:
            body = data.decode("utf-8", errors=_HEX_ERRORS)
            fragment = True
        texts.append(body)
        starts.append(marked)
        fragments.append(fragment)
    return _whitespace_shown_bare(texts, starts, fragments)


def _decode_metaspace(tokens: list[str], marker: str) -> Decoded:
    texts: list[str] = []
    starts: list[bool] = []
    fragments: list[bool] = []
    for token in tokens:
        byte = _BYTE_FALLBACK.fullmatch(token) if token[:3] == "<0x" else None
        fragment = False
        if byte:
            value = int(byte.group(1), 16)
            fragment = value >= 0x80
            body = f"<0x{value:02X}>" if fragment else chr(value)
            marked = False
        else:
            marked = token.startswith(marker)
            body = (token[len(marker) :] if marked else token).replace(marker, " ")
        texts.append(body)
        starts.append(marked)
        fragments.append(fragment)
    return _whitespace_shown_bare(texts, starts, fragments)


def _whitespace_shown_bare(texts: list[str], starts: list[bool], fragments: list[bool]) -> Decoded:
    """Whitespace-only tokens keep their word-start marker as a space ("Ġ" -> " ") and count as
    word starts, so they are shown bare: "##␣" would suggest a word piece where there is none.
    Byte fragments are left alone. Updates the lists in place and returns them."""
    for i, body in enumerate(texts):
        if not fragments[i] and not body.strip():
            texts[i] = " " + body if starts[i] else body
            starts[i] = True
    return texts, starts, fragments


def _decode_wordpiece(tokens: list[str], prefix: str) -> Decoded:
    size = len(prefix)
    continuation = [token.startswith(prefix) and len(token) > size for token in tokens]
    texts = [token[size:] if cont else token for token, cont in zip(tokens, continuation, strict=True)]
    return texts, [not cont for cont in continuation], [False] * len(tokens)


def _decode_plain(tokens: list[str], _marker: str) -> Decoded:
    return list(tokens), [True] * len(tokens), [False] * len(tokens)


_DECODERS = {
    BYTE_LEVEL: _decode_byte_level,
    METASPACE: _decode_metaspace,
    WORDPIECE: _decode_wordpiece,
    PLAIN: _decode_plain,
}


# --- reading the tokenizer ---------------------------------------------------------------------


def _backend(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` behind a tokenizer, or None for slow (pure Python) ones."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend
    if hasattr(tokenizer, "get_vocab_size") and hasattr(tokenizer, "pre_tokenizer"):
        return tokenizer  # already a tokenizers.Tokenizer
    return None


def _id_to_token(tokenizer: Any, backend: Any | None) -> dict[int, str]:
    if backend is not None:
        vocab = backend.get_vocab(with_added_tokens=True)
    else:
        vocab = tokenizer.get_vocab()
    return dict(zip(vocab.values(), vocab.keys(), strict=True))


def _added_and_special(tokenizer: Any, backend: Any | None) -> tuple[dict[int, str], set[int]]:
    """Ids of added tokens that are not entries of the model's own vocabulary, and special ids."""
    decoder: Mapping[int, Any] = getattr(tokenizer, "added_tokens_decoder", None) or {}
    if not decoder and backend is not None:
        decoder = backend.get_added_tokens_decoder()
    special = {int(i) for i in getattr(tokenizer, "all_special_ids", ()) if i is not None}
    added: dict[int, str] = {}
    model = getattr(backend, "model", None)
    for i, token in decoder.items():
        content = getattr(token, "content", str(token))
        if getattr(token, "special", False):
            special.add(int(i))
        if model is None or model.token_to_id(content) != int(i):
            added[int(i)] = content
    return added, special


def _component_state(component: Any) -> dict:
    if component is None:
        return {}
    try:
        return json.loads(component.__getstate__())
    except (AttributeError, TypeError, ValueError):
        return {}


def _walk(node: Any) -> Iterable[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _detect_scheme(backend: Any | None, tokens: Iterable[str]) -> tuple[str, str]:
    """(scheme, marker): the marker is the Metaspace replacement or the WordPiece prefix."""
    if backend is not None:
        model = backend.model
        model_type = type(model).__name__
        parts = [
            _component_state(backend.pre_tokenizer),
            _component_state(backend.decoder),
            _component_state(backend.normalizer),
        ]
        nodes = [node for part in parts for node in _walk(part)]
        types = {node.get("type") for node in nodes}
        if model_type == "WordPiece":
            return WORDPIECE, model.continuing_subword_prefix or WORD_CONTINUATION_MARK
        if "WordPiece" in types:
            prefix = next(n.get("prefix") for n in nodes if n.get("type") == "WordPiece")
            return WORDPIECE, prefix or WORD_CONTINUATION_MARK
        if "ByteLevel" in types:
            return BYTE_LEVEL, ""
        for node in nodes:
            if node.get("type") == "Metaspace":
                return METASPACE, node.get("replacement") or "▁"
        # Llama-2 style tokenizer.json: normalizer Replace(" " -> "▁"), decoder Replace("▁" -> " ")
        if any(n.get("type") == "Replace" and "▁" in json.dumps(n, ensure_ascii=False) for n in nodes):
            return METASPACE, "▁"
        if getattr(model, "byte_fallback", False):
            return METASPACE, "▁"
        prefix = getattr(model, "continuing_subword_prefix", None)
        if prefix:
            return WORDPIECE, prefix
    return _guess_scheme(tokens)


def _guess_scheme(tokens: Iterable[str]) -> tuple[str, str]:
    """Family from the vocabulary itself, for tokenizers whose pipeline cannot be read."""
    counts = {BYTE_LEVEL: 0, METASPACE: 0, WORDPIECE: 0}
    total = 0
    for token in tokens:
        total += 1
        if token.startswith("Ġ"):
            counts[BYTE_LEVEL] += 1
        elif token.startswith("▁"):
            counts[METASPACE] += 1
        elif token.startswith(WORD_CONTINUATION_MARK) and len(token) > 2:
            counts[WORDPIECE] += 1
    scheme, count = max(counts.items(), key=lambda item: item[1])
    if total == 0 or count < max(1, total // 100):
        return PLAIN, ""
    marker = {BYTE_LEVEL: "", METASPACE: "▁", WORDPIECE: WORD_CONTINUATION_MARK}[scheme]
    return scheme, marker
