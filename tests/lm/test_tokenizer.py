"""The character tokenizer: one token per character, BOS prepended, save/reload round trip."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.lm.tokenizer import BOS, DEFAULT_CHARS, EOS, PAD, UNK, char_tokenizer, check_text


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def test_special_tokens_and_ids(tok):
    assert (tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token) == (PAD, BOS, EOS, UNK)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == 4 + len(DEFAULT_CHARS)


def test_one_token_per_character_and_bos(tok):
    ids = tok("12+34=")["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert len(ids) == 1 + 6
    assert tok.convert_ids_to_tokens(ids[1:]) == list("12+34=")
    assert tok("a b", add_special_tokens=False)["input_ids"] == [
        tok.convert_tokens_to_ids(c) for c in "a b"]


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=DEFAULT_CHARS, max_size=30))
def test_round_trip(text):
    tok = _TOK
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    assert tok.decode([tok.bos_token_id, *ids, tok.eos_token_id], skip_special_tokens=True) == text


_TOK = char_tokenizer()


def test_save_and_autotokenizer_reload(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    text = "rev:abc= sort:321= m7:10-99= Hello!"
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id) == (0, 1, 2)
    assert again.get_vocab() == tok.get_vocab()


def test_unknown_characters_are_named(tok):
    check_text(tok, "12+3=")  # fine
    with pytest.raises(ValueError, match=r"outside the tokenizer's vocabulary: '\$', '€'"):
        check_text(tok, "1$+€=")
    assert tok.unk_token_id in tok("€")["input_ids"]


def test_custom_vocab_and_bad_vocab():
    small = char_tokenizer("01+=")
    assert len(small) == 8 and small.decode(small("10+1=")["input_ids"][1:]) == "10+1="
    with pytest.raises(ValueError, match="repeated"):
        char_tokenizer("0011")
    with pytest.raises(ValueError, match="non-empty"):
        char_tokenizer("")
    with pytest.raises(ValueError, match="whitespace"):
        char_tokenizer("ab\n")


def test_special_token_text_is_just_characters(tok):
    ids = tok("<eos>", add_special_tokens=False)["input_ids"]
    assert ids == [tok.convert_tokens_to_ids(c) for c in "<eos>"]
    assert tok.eos_token_id not in ids
