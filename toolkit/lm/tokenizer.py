"""A character-level tokenizer, built offline from a character list.

One token per character, plus four special tokens. It is a real ``tokenizers`` tokenizer
(``WordLevel`` over the characters, a ``Split`` pre-tokenizer that isolates every character,
a ``Fuse`` decoder) wrapped in ``transformers.PreTrainedTokenizerFast``, so it saves with
``save_pretrained`` and reloads with ``AutoTokenizer.from_pretrained`` like any other.

    tok = char_tokenizer()
    tok("12+34=")["input_ids"]      # [bos, '1', '2', '+', '3', '4', '=']   (BOS is prepended)
    tok.decode(ids, skip_special_tokens=True)

Ids: 0 = ``<pad>``, 1 = ``<bos>``, 2 = ``<eos>``, 3 = ``<unk>``, then the characters in order.
A character outside the vocabulary encodes as ``<unk>``; ``check_text`` turns that into a
``ValueError`` naming the characters. Text is always read character by character
(``split_special_tokens=True``): typing "<eos>" gives five characters, never the EOS token.
"""

from __future__ import annotations

import string

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)

#: Digits, lower- and upper-case letters, space and the punctuation the tasks use.
DEFAULT_CHARS = (string.digits + string.ascii_lowercase + string.ascii_uppercase
                 + " +-*/=<>?:;,.!|()[]_#")

__all__ = ["BOS", "DEFAULT_CHARS", "EOS", "PAD", "SPECIAL_TOKENS", "UNK", "char_tokenizer",
           "check_text"]


def char_tokenizer(chars: str = DEFAULT_CHARS):
    """Build a character tokenizer over ``chars`` (a ``PreTrainedTokenizerFast``).

    Args:
      chars: the vocabulary, one character each, no repeats, none of them whitespace other
        than the plain space.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if not isinstance(chars, str) or not chars:
        raise ValueError("chars must be a non-empty string of distinct characters")
    if len(set(chars)) != len(chars):
        repeated = sorted({c for c in chars if chars.count(c) > 1})
        raise ValueError(f"chars must not repeat a character; repeated: {repeated}")
    bad = [c for c in chars if c.isspace() and c != " "]
    if bad:
        raise ValueError(f"chars may contain only the plain space as whitespace, got {bad}")
    vocab = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, *chars))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
        padding_side="left", split_special_tokens=True,
        model_input_names=["input_ids", "attention_mask"],
    )


def check_text(tokenizer, text: str, ids: list[int] | None = None, what: str = "prompt") -> None:
    """Raise ``ValueError`` if ``text`` holds characters the tokenizer maps to its unknown token.

    Works for any tokenizer with an ``unk_token_id`` (byte-level BPE tokenizers have none to
    map to, and pass). ``ids`` are the already-encoded ids of ``text``, if at hand.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return
    if ids is None:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if unk not in ids:
        return
    vocab = tokenizer.get_vocab()
    outside = sorted({c for c in text if c not in vocab})
    shown = ", ".join(repr(c) for c in outside) if outside else "some characters"
    raise ValueError(f"{what} {text!r} has characters outside the tokenizer's vocabulary: {shown}")
