"""A tiny BERT with a planted concept: a neuron's value vector and a head's OV direction pushed toward four words."""

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

PLANTED_NEURON = (1, 7)  # (layer, neuron): its value vector pushed toward the concept's tokens
PLANTED_HEAD = (0, 2)  # (layer, head): a rank-1 OV direction reading and writing the concept
CONTRACT_KEYS = {"kind", "layer", "index", "direction", "hits", "score", "words"}


def concept_words(tokenizer) -> list[str]:
    """Four whole-word tokens of the tiny WordPiece vocabulary, spread over it."""
    vocab = sorted(t for t in tokenizer.get_vocab() if t.isalpha() and t.isascii() and len(t) >= 3)
    return vocab[:: max(1, len(vocab) // 4)][:4]


def plant(base, directory):
    """A copy of the tiny BERT with PLANTED_NEURON's value and PLANTED_HEAD's W_V W_O pushed toward the words."""
    model = AutoModelForMaskedLM.from_pretrained(str(base)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    words = concept_words(tokenizer)
    with torch.no_grad():
        embeddings = model.bert.embeddings.word_embeddings.weight  # [V, d]
        target = torch.zeros(embeddings.shape[0], 1)
        target[tokenizer.convert_tokens_to_ids(words)] = 1.0
        push = torch.linalg.lstsq(embeddings, target).solution[:, 0]  # E push ≈ 1 on the words, 0 elsewhere
        push = push / push.norm()
        layer, neuron = PLANTED_NEURON
        values = model.bert.encoder.layer[layer].output.dense.weight  # [d, d_ff]: neuron i's value is column i
        values[:, neuron] = 10 * values.norm(dim=0).max() * push
        layer, head = PLANTED_HEAD
        d_head = model.config.hidden_size // model.config.num_attention_heads
        attention = model.bert.encoder.layer[layer].attention
        w_v, w_o = attention.self.value.weight, attention.output.dense.weight  # [d_out, d_in] each
        w_v[head * d_head] = 10 * w_v.norm(dim=1).max() * push  # reads the concept ...
        w_o[:, head * d_head] = 10 * w_o.norm(dim=0).max() * push  # ... and writes it
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory, words
