"""Vocabulary: decoded text, word-start flags, specials and the one display convention."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest
from tokenizer_factory import (
    GPT2_ALPHABET,
    POLISH_ENGLISH_TEXT,
    byte_level_raw,
    byte_level_tokenizer,
    metaspace_tokenizer,
    minilm_tokenizer,
    plain_vocabulary,
    wordpiece_tokenizer,
)
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from embspace.vocab.tokens import (
    BYTE_LEVEL,
    DISPLAY_CONVENTION,
    METASPACE,
    PLAIN,
    WORD_CONTINUATION_MARK,
    WORDPIECE,
    Vocabulary,
    build_vocabulary,
    visible_whitespace,
)

GPT2_CHAR_TO_BYTE = {char: bytes([b]) for b, char in GPT2_ALPHABET.items()}


def vocabulary_fixture(make_tokenizer, vocab_size: int | None = None):
    """A module-scoped fixture named after the variable it is assigned to: (tokenizer, its Vocabulary
    of vocab_size entries, default len(tokenizer))."""

    @pytest.fixture(scope="module")
    def tokenizer_and_vocabulary():
        tokenizer = make_tokenizer()
        return tokenizer, build_vocabulary(tokenizer, vocab_size or len(tokenizer))

    return tokenizer_and_vocabulary


byte_level = vocabulary_fixture(byte_level_tokenizer)
wordpiece = vocabulary_fixture(wordpiece_tokenizer)
metaspace = vocabulary_fixture(metaspace_tokenizer)
minilm = vocabulary_fixture(minilm_tokenizer, 30522)


def token_id(tokenizer, raw: str) -> int:
    """Id of a raw vocabulary entry; fails the test if the tiny tokenizer did not learn it."""
    vocab = tokenizer.get_vocab()
    assert raw in vocab, f"{raw!r} is not in the test tokenizer's vocabulary"
    return vocab[raw]


def byte_level_reference(raw: str) -> bytes:
    """A byte-level entry's bytes, via GPT-2's own table (tokenizer_factory.GPT2_ALPHABET)."""
    return b"".join(GPT2_CHAR_TO_BYTE[c] for c in raw)


def byte_level_raw_byte(b: int) -> str:
    """The byte-level alphabet's character for one byte (0xC5 -> "Å")."""
    return GPT2_ALPHABET[b]


# --- byte-level BPE ---------------------------------------------------------------------------


def test_byte_level_polish_word_start_is_decoded(byte_level):
    tokenizer, vocab = byte_level
    assert vocab.scheme == BYTE_LEVEL
    for word in ("zażółć", "Świętokrzyskie", "łódź"):
        i = token_id(tokenizer, byte_level_raw(" " + word))
        assert vocab.raw[i] == byte_level_raw(" " + word)  # "Ġza\u0139\u00bc..." on disk
        assert vocab.text[i] == word
        assert vocab.starts_word[i]
        assert vocab.display(i) == word
        assert vocab.normalized[i] == word.casefold()
        assert not vocab.is_byte_fragment[i]


def test_byte_level_continuation_gets_the_mark(byte_level):
    tokenizer, vocab = byte_level
    i = token_id(tokenizer, byte_level_raw("ł"))
    assert (vocab.text[i], bool(vocab.starts_word[i]), vocab.display(i)) == ("ł", False, "##ł")


def test_byte_level_incomplete_utf8_is_hex_not_mojibake(byte_level):
    tokenizer, vocab = byte_level
    first_byte_of_z_dot = "ż".encode()[0]  # 0xC5
    i = token_id(tokenizer, byte_level_raw_byte(first_byte_of_z_dot))
    assert vocab.text[i] == "<0xC5>"
    assert vocab.display(i) == "##<0xC5>"
    assert vocab.is_byte_fragment[i]
    assert "Å" not in vocab.display(i)


def test_byte_level_every_token_matches_a_reference_decoding(byte_level):
    """Each entry's bytes decode to (space marker +) text, or it is a fragment shown in hex."""
    _, vocab = byte_level
    for i in range(vocab.size):
        if vocab.is_special[i]:
            continue
        data = byte_level_reference(vocab.raw[i])
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            assert vocab.is_byte_fragment[i], vocab.raw[i]
            assert "<0x" in vocab.text[i]
            continue
        assert not vocab.is_byte_fragment[i]
        if decoded.strip() == "":
            assert (vocab.text[i], bool(vocab.starts_word[i])) == (decoded, True)
        elif decoded.startswith(" "):
            assert (vocab.text[i], bool(vocab.starts_word[i])) == (decoded[1:], True)
        else:
            assert (vocab.text[i], bool(vocab.starts_word[i])) == (decoded, False)


def test_byte_level_fragment_after_a_space_keeps_the_word_start():
    bytes_ = {"Ġ" + byte_level_raw_byte(0xC5): 0, "a" + byte_level_raw_byte(0xC5): 1}
    tokenizer = Tokenizer(models.BPE(vocab=bytes_, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    vocab = build_vocabulary(tokenizer, 2)
    assert vocab.display(0) == "<0xC5>"
    assert vocab.display(1) == "##a<0xC5>"
    assert vocab.is_byte_fragment.tolist() == [True, True]


def test_byte_level_whitespace_tokens_are_visible_and_bare(byte_level):
    tokenizer, vocab = byte_level
    expected = {" ": "␣", "\n": "↵", "\t": "⇥"}
    for text, shown in expected.items():
        i = token_id(tokenizer, byte_level_raw(text))
        assert vocab.text[i] == text
        assert vocab.display(i) == shown
        assert vocab.normalized[i] == ""


def test_byte_level_control_byte_shown_escaped(byte_level):
    tokenizer, vocab = byte_level
    i = token_id(tokenizer, byte_level_raw_byte(0x03))
    assert vocab.display(i) == "##\\x03"


def test_byte_level_special_and_padded_rows(byte_level):
    tokenizer, _ = byte_level
    vocab = build_vocabulary(tokenizer, len(tokenizer) + 3)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert vocab.is_special[eos]
    assert vocab.display(eos) == "<|endoftext|>"
    for i in range(len(tokenizer), len(tokenizer) + 3):
        assert (vocab.raw[i], vocab.text[i], vocab.display(i)) == ("", f"<pad:{i}>", f"<pad:{i}>")
        assert vocab.is_special[i]
    assert vocab.size == len(vocab) == len(tokenizer) + 3


def test_vocab_size_smaller_than_the_tokenizer(byte_level):
    tokenizer, full = byte_level
    vocab = build_vocabulary(tokenizer, 50)
    assert vocab.size == 50 and len(vocab.text) == 50 and vocab.starts_word.shape == (50,)
    assert vocab.text == full.text[:50]


# --- WordPiece --------------------------------------------------------------------------------


def test_wordpiece_continuation_and_polish(wordpiece):
    tokenizer, vocab = wordpiece
    assert vocab.scheme == WORDPIECE
    whole = token_id(tokenizer, "Świętokrzyskie")
    assert (vocab.text[whole], bool(vocab.starts_word[whole]), vocab.display(whole)) == (
        "Świętokrzyskie",
        True,
        "Świętokrzyskie",
    )
    piece = token_id(tokenizer, "##ażółć")
    assert (vocab.text[piece], bool(vocab.starts_word[piece]), vocab.display(piece)) == ("ażółć", False, "##ażółć")
    assert vocab.normalized[whole] == "świętokrzyskie"


def test_wordpiece_specials(wordpiece):
    tokenizer, vocab = wordpiece
    for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        i = token_id(tokenizer, token)
        assert vocab.is_special[i]
        assert vocab.display(i) == token
    assert vocab.is_special.sum() == 5


def test_minilm_bert_vocabulary(minilm):
    tokenizer, vocab = minilm
    assert vocab.size == 30522 and vocab.scheme == WORDPIECE
    ing = token_id(tokenizer, "##ing")
    assert (vocab.text[ing], bool(vocab.starts_word[ing]), vocab.display(ing), vocab.normalized[ing]) == (
        "ing",
        False,
        "##ing",
        "ing",
    )
    playing = token_id(tokenizer, "playing")
    assert (vocab.display(playing), bool(vocab.starts_word[playing])) == ("playing", True)
    for token in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[unused5]", "[unused993]"):
        assert vocab.is_special[token_id(tokenizer, token)], token
    assert vocab.display(token_id(tokenizer, "[unused5]")) == "[unused5]"
    assert vocab.is_special.sum() == 5 + 994  # five specials and [unused0] .. [unused993]
    hash_ = token_id(tokenizer, "#")
    assert (vocab.display(hash_), bool(vocab.is_special[hash_])) == ("#", False)


# --- SentencePiece / Metaspace ----------------------------------------------------------------


def test_metaspace_word_start_and_pieces(metaspace):
    tokenizer, vocab = metaspace
    assert vocab.scheme == METASPACE
    for word in ("zażółć", "Świętokrzyskie", "łódź"):
        i = token_id(tokenizer, "▁" + word)
        assert (vocab.text[i], bool(vocab.starts_word[i]), vocab.display(i)) == (word, True, word)
    piece = token_id(tokenizer, "ł")
    assert (vocab.text[piece], vocab.display(piece)) == ("ł", "##ł")
    space = token_id(tokenizer, "▁")
    assert (vocab.text[space], vocab.display(space)) == (" ", "␣")


def test_metaspace_byte_fallback_tokens(metaspace):
    tokenizer, vocab = metaspace
    high = token_id(tokenizer, "<0xC5>")
    assert (vocab.text[high], vocab.display(high), bool(vocab.is_byte_fragment[high])) == ("<0xC5>", "##<0xC5>", True)
    newline = token_id(tokenizer, "<0x0A>")
    assert (vocab.text[newline], vocab.display(newline), bool(vocab.is_byte_fragment[newline])) == ("\n", "↵", False)
    letter = token_id(tokenizer, "<0x41>")
    assert (vocab.text[letter], vocab.display(letter)) == ("A", "##A")
    assert not vocab.is_special[high]


def test_metaspace_specials(metaspace):
    tokenizer, vocab = metaspace
    for token in ("<unk>", "<s>", "</s>"):
        assert vocab.is_special[token_id(tokenizer, token)]
    assert vocab.is_special.sum() == 3


def test_llama2_style_pipeline_is_recognised_without_a_metaspace_pretokenizer():
    """Llama-2 tokenizer.json: normalizer Prepend+Replace(" " -> "▁"), no pre-tokenizer."""
    tokenizer = Tokenizer(models.BPE(byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tokenizer.train_from_iterator(POLISH_ENGLISH_TEXT, trainers.BpeTrainer(vocab_size=200, show_progress=False))
    vocab = build_vocabulary(PreTrainedTokenizerFast(tokenizer_object=tokenizer), tokenizer.get_vocab_size())
    assert vocab.scheme == METASPACE
    i = tokenizer.token_to_id("▁kot")
    assert i is not None and vocab.display(i) == "kot"


# --- detection without a readable pipeline -------------------------------------------------------


class SlowLikeTokenizer:
    """Stands in for a pure-Python tokenizer: a vocabulary and special ids, no backend."""

    def __init__(self, vocab: dict[str, int], special_ids=()):
        self._vocab = vocab
        self.all_special_ids = list(special_ids)
        self.added_tokens_decoder = {}

    def get_vocab(self):
        return dict(self._vocab)


@pytest.mark.parametrize(
    ("tokens", "scheme", "display"),
    [
        (["Ġkot", "a", "Ġpies"], BYTE_LEVEL, ["kot", "##a", "pies"]),
        (["▁kot", "a", "▁pies"], METASPACE, ["kot", "##a", "pies"]),
        (["kot", "##a", "pies"], WORDPIECE, ["kot", "##a", "pies"]),
        (["kot", "a", "pies"], PLAIN, ["kot", "a", "pies"]),
    ],
)
def test_scheme_guessed_from_the_vocabulary(tokens, scheme, display):
    vocab = build_vocabulary(SlowLikeTokenizer({t: i for i, t in enumerate(tokens)}), len(tokens))
    assert vocab.scheme == scheme
    assert vocab.display_many(range(len(tokens))) == display


def test_raw_tokenizers_object_is_accepted(wordpiece):
    tokenizer, expected = wordpiece
    vocab = build_vocabulary(tokenizer.backend_tokenizer, len(tokenizer))
    assert vocab.text == expected.text
    assert vocab.is_special.tolist() == expected.is_special.tolist()


def test_scheme_does_not_depend_on_the_model_name(byte_level):
    """A byte-level tokenizer saved under a BERT-ish name is still byte-level."""
    tokenizer, _ = byte_level
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer, name_or_path="bert-base-uncased")
    assert build_vocabulary(tokenizer, len(tokenizer)).scheme == BYTE_LEVEL


# --- the display convention and the dataclass ----------------------------------------------------


def test_display_convention():
    vocab = plain_vocabulary(
        ["kot", "ing", "a b", "x\ty\nz", "[CLS]", "<a b>"],
        [True, False, True, False, True, True],
        [False, False, False, False, True, True],
    )
    assert vocab.display_many(range(6)) == ["kot", "##ing", "a␣b", "##x⇥y↵z", "[CLS]", "<a b>"]
    assert WORD_CONTINUATION_MARK == "##"
    assert WORD_CONTINUATION_MARK in DISPLAY_CONVENTION and "␣" in DISPLAY_CONVENTION


def test_visible_whitespace_escapes_invisible_characters():
    assert visible_whitespace("zażółć") == "zażółć"
    assert visible_whitespace("a b\tc\nd\r\x00") == "a␣b⇥c↵d\\x0d\\x00"
    assert visible_whitespace("a\u00a0b\u200bc") == "a\\xa0b\\u200bc"


def test_vocabulary_is_frozen(byte_level):
    _, vocab = byte_level
    with pytest.raises(dataclasses.FrozenInstanceError):
        vocab.size = 3
    with pytest.raises(ValueError):
        vocab.starts_word[0] = not vocab.starts_word[0]


def test_vocabulary_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="text"):
        Vocabulary(
            size=2,
            raw=("a", "b"),
            text=("a",),
            starts_word=np.ones(2, bool),
            is_special=np.zeros(2, bool),
            normalized=("a", "b"),
            is_byte_fragment=np.zeros(2, bool),
            scheme=PLAIN,
        )


def test_building_a_152k_vocabulary_takes_under_two_seconds():
    """Qwen-sized byte-level vocabulary (V=152k); CPU time, best of two, so a busy machine does not count."""
    letters = "abcdefghijklmnoprstuwyząćęłńóśźżABC "
    spellings = itertools.chain.from_iterable(itertools.product(letters, repeat=n) for n in range(1, 5))
    words = [byte_level_raw("".join(chars)) for chars in itertools.islice(spellings, 152_000)]
    tokenizer = Tokenizer(models.BPE(vocab={w: i for i, w in enumerate(words)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    timings = []
    for _ in range(2):
        start = time.process_time()
        vocab = build_vocabulary(tokenizer, 152_064)
        timings.append(time.process_time() - start)
    assert vocab.size == 152_064 and vocab.scheme == BYTE_LEVEL
    assert min(timings) < 2.0, timings


def test_added_plain_text_token_is_not_decoded_as_bytes():
    """tokenizer.add_tokens() content is stored as written, not in the byte alphabet."""
    tokenizer = byte_level_tokenizer()
    tokenizer.add_tokens(["Zażółć gęślą"])
    i = tokenizer.convert_tokens_to_ids("Zażółć gęślą")
    vocab = build_vocabulary(tokenizer, len(tokenizer))
    assert (vocab.text[i], vocab.display(i), bool(vocab.is_special[i])) == ("Zażółć gęślą", "Zażółć␣gęślą", False)
